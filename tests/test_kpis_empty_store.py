"""A new deployment starts with an empty store: every section must work on it, and the
incremental cases must pick up the first cases that arrive."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from dashboard.kpis.cases import compute_cases
from dashboard.kpis.sections import make_sections
from dashboard.poller import to_json_data
from datasource import schema

TZ = ZoneInfo("Asia/Shanghai")


def test_every_section_on_an_empty_store_then_the_first_case(reference_engine):
    now = dt.datetime.now(dt.timezone.utc)
    sections = make_sections()
    for name, fn in sections.items():
        assert fn(reference_engine, now, TZ) is not None, name
    first = to_json_data(sections["cases"](reference_engine, now, TZ))
    assert first["open"]["total"] == 0
    with reference_engine.begin() as conn:
        conn.execute(insert(schema.Case), [dict(
            external_id="FIRST-1", source="hotline", category_code="S01-01", district_code="410105",
            status="filed", reported_at=now, filed_at=now, updated_at=now)])
    later = now + dt.timedelta(seconds=5)
    incremental = to_json_data(sections["cases"](reference_engine, later, TZ))
    assert incremental["open"]["total"] == 1
    assert incremental == to_json_data(compute_cases(reference_engine, later, TZ))
