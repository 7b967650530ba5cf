"""Enterprise service (助企): enterprises, grid liaisons' visits and the problems collected.

A visits file may carry the enterprise's own columns (name, district, above_scale,
industry): then the enterprise is created or updated from them in the same batch, so
one export of visits is enough to load both.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import Connection, select

from datasource.importer import errors as E
from datasource.importer.errors import RowReject
from datasource.importer.fields import Field, district, external_id
from datasource.importer.kinds.base import (KindSpec, check_grid_district, collect, counts, fill,
                                            resolve_district, resolve_grid)
from datasource.importer.lookups import Reference
from datasource.importer.rowparse import Rec
from datasource.importer.store import Target, upsert
from datasource.schema import (PROBLEM_STATUSES, PROBLEM_TYPES, Enterprise, EnterpriseProblem,
                               EnterpriseVisit)

# -- enterprises --------------------------------------------------------------------
ENTERPRISE_FIELDS = (
    external_id("the enterprise's id (e.g. its unified social credit code)", "enterprise_id",
                "credit_code"),
    Field("name", "text", "enterprise name", required=True, max_len=128, aliases=("enterprise_name",)),
    district("district: code, name, short or English name"),
    Field("grid", "ref", "code of its ordinary grid", aliases=("grid_code",)),
    Field("exclusive_grid", "ref", "code of its exclusive grid (专属网格), if any"),
    Field("above_scale", "bool", "above-scale enterprise (规上企业)", aliases=("规上",)),
    Field("industry", "text", "industry", max_len=64),
)

ENTERPRISES = Target(Enterprise.__table__, required_on_insert=("name", "district_code"),
                     insert_defaults={"grid_id": None, "exclusive_grid_id": None,
                                      "above_scale": False, "industry": None})


def finish_enterprise(rec: Rec, ref: Reference) -> None:
    problems = []
    grid_district = collect(problems, resolve_grid, rec, ref)
    collect(problems, resolve_grid, rec, ref, "exclusive_grid", "exclusive_grid_id")
    if collect(problems, resolve_district, rec, ref, fallback=grid_district):
        collect(problems, check_grid_district, rec, grid_district)
    if problems:
        raise RowReject.of(problems)
    fill(rec.values, above_scale=False)


def store_enterprises(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    return counts(upsert(conn, ENTERPRISES, [r.values for r in recs], now))


def _enterprises(conn: Connection, external_ids) -> dict:
    ids = sorted(set(external_ids))
    if not ids:
        return {}
    return {e.external_id: e for e in conn.execute(
        select(Enterprise.id, Enterprise.external_id, Enterprise.district_code)
        .where(Enterprise.external_id.in_(ids)))}


# -- visits -------------------------------------------------------------------------
ENTERPRISE_OF_VISIT = {"enterprise_name": "name", "above_scale": "above_scale", "industry": "industry"}

VISIT_FIELDS = (
    external_id("the visit's id", "visit_id"),
    Field("enterprise", "id", "the enterprise's external id", required=True, max_len=64,
          aliases=("enterprise_id", "enterprise_external_id", "credit_code")),
    Field("enterprise_name", "text", "enterprise name: creates the enterprise when it is new",
          max_len=128),
    Field("enterprise_district", "ref", "the enterprise's district (default: the visit's)"),
    Field("above_scale", "bool", "the enterprise is above scale (规上)", aliases=("规上",)),
    Field("industry", "text", "the enterprise's industry", max_len=64),
    district("district of the visit (default: the enterprise's)"),
    Field("grid", "ref", "grid code of the visit", aliases=("grid_code",)),
    Field("visited_at", "time", "when the visit took place", required=True, aliases=("visit_time", "time")),
    Field("liaison", "text", "grid liaison who visited", max_len=64),
    Field("note", "text", "notes", aliases=("summary",)),
)

VISITS = Target(EnterpriseVisit.__table__, insert_defaults={"grid_id": None, "liaison": None, "note": None})


def finish_visit(rec: Rec, ref: Reference) -> None:
    v = rec.values
    enterprise = {"external_id": v.pop("enterprise")}
    for src, dst in ENTERPRISE_OF_VISIT.items():
        value = v.pop(src, None)
        if value is not None:  # an empty cell says nothing about the enterprise
            enterprise[dst] = value
    ent_district = v.pop("enterprise_district", None)
    problems = []
    if ent_district:
        code = collect(problems, ref.district, ent_district, "enterprise_district")
        if code:
            enterprise["district_code"] = code
    grid_district = collect(problems, resolve_grid, rec, ref)
    own = collect(problems, resolve_district, rec, ref, fallback=grid_district, required=False)
    collect(problems, check_grid_district, rec, grid_district)
    rec.extra["enterprise"] = enterprise
    if "name" in enterprise and "district_code" not in enterprise and not ent_district:
        if own is None and not problems:
            problems.append(RowReject("enterprise_district", E.MISSING_VALUE,
                                      "a new enterprise needs a district (enterprise_district or district_code)"))
        enterprise["district_code"] = own
    if problems:
        raise RowReject.of(problems)


def prepare_visits(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    """Create or update the enterprises the rows carry (the last row for an enterprise
    wins), then reject the visits whose enterprise is still unknown."""
    carried = {}
    for rec in recs:
        ent = rec.extra["enterprise"]
        if len(ent) > 1:
            carried[ent["external_id"]] = ent
    out = upsert(conn, ENTERPRISES, list(carried.values()), now)
    known = _enterprises(conn, (r.extra["enterprise"]["external_id"] for r in recs))
    rejects = []
    for rec in recs:
        ext = rec.extra["enterprise"]["external_id"]
        if ext in known:
            rec.extra.update(enterprise_id=known[ext].id, district_code=known[ext].district_code)
        else:
            rejects.append((rec, RowReject("enterprise", E.UNKNOWN_ENTERPRISE,
                                           f"no enterprise {ext!r} in the store, and the row has "
                                           "no enterprise_name to create it")))
    return rejects, Counter(enterprises_inserted=len(out.inserted), enterprises_updated=len(out.updated))


def store_visits(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    rows = []
    for rec in recs:
        values = dict(rec.values, enterprise_id=rec.extra["enterprise_id"])
        if values.get("district_code") is None:
            values["district_code"] = rec.extra["district_code"]
        rows.append(values)
    return counts(upsert(conn, VISITS, rows, now))


# -- problems -----------------------------------------------------------------------
PROBLEM_FIELDS = (
    external_id("the problem's id", "problem_id"),
    Field("enterprise", "id", "the enterprise's external id (must be in the store)", required=True,
          max_len=64,
          aliases=("enterprise_id", "enterprise_external_id", "credit_code")),
    Field("visit", "id", "external id of the visit that collected it (optional)", max_len=64,
          aliases=("visit_id", "visit_external_id")),
    district("district (default: the enterprise's)"),
    Field("problem_type", "choice", "hiring, licence, tax, financing, infrastructure, safety or "
          "other (用工/办证/税务/融资/基础设施/安全/其他)", required=True, choices=PROBLEM_TYPES,
          aliases=("type",)),
    Field("summary", "text", "description", aliases=("description",)),
    Field("department", "text", "department it was routed to", max_len=64),
    Field("status", "choice", "open or resolved; derived from resolved_at when empty",
          choices=PROBLEM_STATUSES, vocab="problem_status"),
    Field("raised_at", "time", "when it was raised", required=True, aliases=("created_at",)),
    Field("resolved_at", "time", "when it was resolved"),
)

PROBLEMS = Target(EnterpriseProblem.__table__, insert_defaults={
    "visit_id": None, "summary": None, "department": None, "resolved_at": None})


def finish_problem(rec: Rec, ref: Reference) -> None:
    v = rec.values
    problems = []
    collect(problems, resolve_district, rec, ref, required=False)
    resolved, raised = v.get("resolved_at"), v.get("raised_at")
    if resolved is not None and raised is not None and resolved < raised:
        problems.append(RowReject("resolved_at", E.TIME_BEFORE_REPORTED,
                                  f"resolved_at {resolved.isoformat()} is before raised_at {raised.isoformat()}",
                                  "check that columns.resolved_at: and columns.raised_at: read the right columns"))
    if problems:
        raise RowReject.of(problems)
    if v.get("status") is None:
        v["status"] = "resolved" if resolved is not None else "open"


def check_problems(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    """The enterprise, and the visit when one is named, must be in the store."""
    rejects = []
    known = _enterprises(conn, (r.values["enterprise"] for r in recs))
    visit_ids = sorted({r.values["visit"] for r in recs if r.values.get("visit")})
    visits = dict(conn.execute(select(EnterpriseVisit.external_id, EnterpriseVisit.id)
                               .where(EnterpriseVisit.external_id.in_(visit_ids))).all()) if visit_ids else {}
    for rec in recs:
        v = rec.values
        ent, visit = known.get(v["enterprise"]), v.get("visit")
        if ent is None:
            rejects.append((rec, RowReject("enterprise", E.UNKNOWN_ENTERPRISE,
                                           f"no enterprise {v['enterprise']!r} in the store")))
        elif visit and visit not in visits:
            rejects.append((rec, RowReject("visit", E.UNKNOWN_VISIT, f"no visit {visit!r} in the store")))
        else:
            rec.extra.update(enterprise_id=ent.id, district_code=ent.district_code,
                             visit_id=visits.get(visit))
    return rejects, Counter()


def store_problems(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    rows = []
    for rec in recs:
        values = dict(rec.values, enterprise_id=rec.extra["enterprise_id"])
        del values["enterprise"]
        if "visit" in values:  # the file has the column: an empty cell clears the link
            del values["visit"]
            values["visit_id"] = rec.extra["visit_id"]
        if values.get("district_code") is None:
            values["district_code"] = rec.extra["district_code"]
        rows.append(values)
    return counts(upsert(conn, PROBLEMS, rows, now))


ENTERPRISE_SPEC = KindSpec("enterprises", "enterprises", ENTERPRISE_FIELDS, finish_enterprise,
                           store_enterprises)
VISIT_SPEC = KindSpec("visits", "enterprise visits by grid liaisons (走访)", VISIT_FIELDS,
                      finish_visit, store_visits, prepare=prepare_visits)
PROBLEM_SPEC = KindSpec("problems", "problems collected from enterprises (诉求)", PROBLEM_FIELDS,
                        finish_problem, store_problems, prepare=check_problems)
