"""The store's schema: migrations match the models, and behave the same on both backends."""
import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, update

from datasource import schema
from datasource.migrate import current_revision, head_revision

UTC = dt.timezone.utc
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def test_migrations_reach_head_and_match_models(engine):
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                schema.Base.metadata)
    assert diff == []


def test_reference_data_is_loaded_as_data(reference_engine):
    with reference_engine.connect() as conn:
        districts = conn.execute(select(schema.District).order_by(schema.District.sort_order)).all()
        assert [d.code for d in districts] == ["410102", "410103", "410104", "410105", "410108",
                                               "410171", "410172", "410190"]
        with_polygon = {d.code for d in districts if d.geometry}
        assert with_polygon == {"410102", "410103", "410104", "410105", "410108"}
        assert conn.execute(select(schema.Street).where(schema.Street.district_code == "410105")).first()
        limits = conn.execute(select(schema.CaseCategory.time_limit_hours)
                              .where(schema.CaseCategory.parent_code.is_not(None))).scalars().all()
        assert limits and all(h > 0 for h in limits)


def _case(**kw):
    base = dict(external_id="X-1", source="app", category_code="S01-01", district_code="410105",
                status="reported", reported_at=dt.datetime(2026, 11, 26, 0, 30, tzinfo=SHANGHAI))
    base.update(kw)
    return base


def test_timestamps_round_trip_as_utc(reference_engine):
    with reference_engine.begin() as conn:
        conn.execute(insert(schema.Case), [_case()])
    with reference_engine.connect() as conn:
        got = conn.execute(select(schema.Case.reported_at)).scalar_one()
        # 00:30 in Shanghai is 16:30 UTC the day before, whichever backend stored it
        assert got == dt.datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
        assert got.tzinfo is not None
        # comparisons in SQL happen in UTC too
        n = conn.execute(select(schema.Case.id).where(
            schema.Case.reported_at >= dt.datetime(2026, 11, 26, 0, 0, tzinfo=SHANGHAI))).all()
        assert len(n) == 1


def test_naive_datetimes_are_refused(reference_engine):
    with pytest.raises(Exception, match="naive datetime"):
        with reference_engine.begin() as conn:
            conn.execute(insert(schema.Case), [_case(reported_at=dt.datetime(2026, 1, 1))])


def test_updated_at_is_maintained_on_every_change(reference_engine):
    with reference_engine.begin() as conn:
        conn.execute(insert(schema.Case), [_case()])
        first = conn.execute(select(schema.Case.updated_at)).scalar_one()
    with reference_engine.begin() as conn:
        conn.execute(update(schema.Case).values(status="filed"))
        second = conn.execute(select(schema.Case.updated_at)).scalar_one()
    assert first is not None and second > first


def test_external_id_is_unique(reference_engine):
    from sqlalchemy.exc import IntegrityError

    with reference_engine.begin() as conn:
        conn.execute(insert(schema.Case), [_case()])
    with pytest.raises(IntegrityError):
        with reference_engine.begin() as conn:
            conn.execute(insert(schema.Case), [_case()])


def test_kpi_indexes_exist(engine):
    from sqlalchemy import inspect

    names = {ix["name"] for ix in inspect(engine).get_indexes("cases")}
    assert {"ix_cases_updated_at", "ix_cases_status_district", "ix_cases_filed_at",
            "ix_cases_closed_at"} <= names


def test_running_deadline_index_predicate_matches_the_running_statuses():
    """0006 wrote the running statuses into its partial index: if they change, the index
    needs a new migration (the ticker's query spells the same predicate)."""
    import importlib.util

    path = Path(__file__).parent.parent / "datasource" / "migrations" / "versions" / "0006_running_deadline_index.py"
    spec = importlib.util.spec_from_file_location("m0006", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert m.RUNNING_SQL == schema.RUNNING_SQL
