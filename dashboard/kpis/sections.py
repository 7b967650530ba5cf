"""The snapshot's sections: name -> callable(engine, now, tz) -> JSON-able payload.

`make_sections()` builds a fresh set per poller: the "cases" section keeps incremental
state (its rollups and watermark), so each poller needs its own.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dashboard.kpis.cases import compute_cases, compute_ticker
from dashboard.kpis.daystart import DayStart, compute_day_start
from dashboard.kpis.enterprise import compute_enterprise
from dashboard.kpis.enterprise_state import IncrementalEnterprise
from dashboard.kpis.incremental import IncrementalCases
from dashboard.kpis.parking import IncrementalParking, compute_parking
from datasource import queries


def open_cases_section(engine, now: dt.datetime, tz: ZoneInfo) -> list[dict]:
    """Open cases per district, every district included (zeros are values)."""
    return queries.open_cases_by_district(engine)


# stateless full computations (tests and one-off use)
SECTIONS = {
    "open_cases": open_cases_section,
    "cases": compute_cases,
    "ticker": compute_ticker,
    "enterprise": compute_enterprise,
    "parking": compute_parking,
    "day_start": compute_day_start,
}


def make_sections() -> dict:
    """What a poller computes: the KPI sections, cases, enterprise and today's parking
    curve kept incrementally, the stock at 00:00 today once an hour.
    (open_cases is left out: the cases section carries open cases per district.)"""
    return {**{k: v for k, v in SECTIONS.items() if k != "open_cases"},
            "cases": IncrementalCases(), "enterprise": IncrementalEnterprise(),
            "parking": IncrementalParking(), "day_start": DayStart()}
