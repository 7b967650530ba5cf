"""The snapshot's sections: name -> callable(engine, now, tz) -> JSON-able payload."""
from dashboard.kpis.cases import compute_cases, compute_ticker
from dashboard.kpis.enterprise import compute_enterprise
from dashboard.kpis.parking import compute_parking

SECTIONS = {
    "cases": compute_cases,
    "ticker": compute_ticker,
    "enterprise": compute_enterprise,
    "parking": compute_parking,
}
