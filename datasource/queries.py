"""Read queries for the pages. Each returns plain rows; aggregation happens in SQL."""
from __future__ import annotations

from sqlalchemy import Engine, func, select

from datasource.schema import (OPEN_STATUSES, Case, CaseCategory, CaseSource, District, Enterprise,
                               EnterpriseProblem, EnterpriseVisit, ParkingFacility)
from datasource.stages import current_in


def open_cases_by_district(engine: Engine) -> list[dict]:
    """Every district (in display order) with its count of open cases, zero included."""
    counts = (select(Case.district_code, func.count().label("n"))
              .where(current_in(OPEN_STATUSES))
              .group_by(Case.district_code).subquery())
    stmt = (select(District.code, District.name_zh, District.short_zh, District.name_en,
                   func.coalesce(counts.c.n, 0).label("open_cases"))
            .outerjoin(counts, counts.c.district_code == District.code)
            .order_by(District.sort_order, District.code))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def latest_change(engine: Engine):
    """The newest `updated_at` among cases: how fresh the store's case data is."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(Case.updated_at))).scalar_one()


def change_mark(engine: Engine) -> tuple:
    """The newest `updated_at` of cases, visits and problems: one statement of three
    index lookups, read between polls to tell whether the store has moved."""
    stmt = select(*(select(func.max(t.updated_at)).scalar_subquery()
                    for t in (Case, EnterpriseVisit, EnterpriseProblem)))
    with engine.connect() as conn:
        return tuple(conn.execute(stmt).one())


def districts(engine: Engine) -> list[dict]:
    """Every district with its names, centre and GeoJSON geometry text (or None), in display order."""
    stmt = (select(District.code, District.name_zh, District.short_zh, District.name_en,
                   District.kind, District.sort_order, District.center_lon, District.center_lat,
                   District.geometry)
            .order_by(District.sort_order, District.code))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def categories(engine: Engine) -> list[dict]:
    """Case categories (top level and sub-categories) with their names."""
    stmt = select(CaseCategory.code, CaseCategory.parent_code, CaseCategory.kind,
                  CaseCategory.name_zh, CaseCategory.name_en).order_by(CaseCategory.code)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def sources(engine: Engine) -> list[dict]:
    """Case sources (where cases come from) with their names, in display order."""
    stmt = select(CaseSource.code, CaseSource.name_zh, CaseSource.name_en).order_by(CaseSource.sort_order,
                                                                                    CaseSource.code)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def subjects_with_data(engine: Engine) -> tuple[str, ...]:
    """The subjects the store holds any data of: cases, enterprise (enterprises), parking
    (facilities), in that order."""
    out = []
    with engine.connect() as conn:
        for subject, table in (("cases", Case), ("enterprise", Enterprise), ("parking", ParkingFacility)):
            if conn.execute(select(table.id).limit(1)).first() is not None:
                out.append(subject)
    return tuple(out)
