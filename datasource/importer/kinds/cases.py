"""Cases (案件): fields, derivations (status, deadline, department), lifecycle events."""
from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import Connection, insert, select

from datasource.importer import errors as E
from datasource.importer.errors import RowReject
from datasource.importer.fields import Field, coordinates, district, external_id
from datasource.importer.kinds.base import (KindSpec, check_grid_district, counts, fill,
                                            resolve_district, resolve_grid)
from datasource.importer.lookups import CategoryInfo, Reference
from datasource.importer.mapping import Mapping
from datasource.importer.rowparse import Rec
from datasource.importer.store import Target, bulk_insert, upsert
from datasource.schema import CASE_STATUSES, Case, CaseCategory, CaseEvent, CaseSource

ACTOR = "import"
# the happy path and the column that records when a case reached each step
LIFECYCLE = (("reported", "reported_at"), ("filed", "filed_at"), ("dispatched", "dispatched_at"),
             ("handled", "handled_at"), ("verified", "verified_at"), ("closed", "closed_at"))
STEP_COLUMN = dict(LIFECYCLE)


def _time(name: str, doc: str, *aliases: str, required: bool = False) -> Field:
    return Field(name, "time", doc, required=required, aliases=aliases)


FIELDS = (
    external_id("the case number in the city's system; the upsert key", "case_id", "case_no"),
    Field("source", "ref", "where the case came from: a source's code or zh/en name (--kind sources; "
          "the demo's 郑好拍, 12345, 巡查... are understood). Without a source column: the default "
          "source `other`", aliases=("origin", "channel")),
    Field("category_code", "ref", "category code (S05-01) or zh/en name (占道经营). Without a category "
          "column: the default category `other`", aliases=("category", "category_id")),
    Field("category_name", "ref", "category name, tried when category_code is empty or unknown"),
    district(),
    Field("street", "ref", "street code or name within the district (optional)", aliases=("street_name",)),
    Field("grid", "ref", "grid code (optional); gives the district when that is missing",
          aliases=("grid_code",)),
    *coordinates(),
    Field("address", "text", "address", max_len=256),
    Field("summary", "text", "description of the problem", aliases=("description",)),
    Field("department", "text", "handling department (default: the category's; a code of the departments "
          "table is written as the department's name)", max_len=64),
    Field("status", "choice", "lifecycle status; derived from the lifecycle times when empty "
          "(上报/立案/派遣/处置/核查/结案/返工/挂账/作废 are understood)", choices=CASE_STATUSES),
    _time("status_at", "when the case reached its status: fills that status's time column "
          "(e.g. closed_at for closed) when it is empty"),
    _time("reported_at", "when the case was reported (上报)", "created_at", "reported", required=True),
    _time("filed_at", "立案 time"),
    _time("dispatched_at", "派遣 time"),
    _time("handled_at", "处置 time"),
    _time("verified_at", "核查 time"),
    _time("closed_at", "结案 time"),
    _time("deadline_at", "deadline; default filed_at (or reported_at) + the category's time limit, "
          "twice the limit when extended",
          "deadline", "due_at"),
    Field("rework_count", "int", "times the case was sent back for rework", low=0, high=32767),
    Field("extended", "bool", "deadline extended (延期)"),
    Field("voided", "bool", "voided (作废); status voided implies it"),
)

TARGET = Target(Case.__table__, insert_defaults={
    "street_id": None, "grid_id": None, "lat": None, "lon": None, "address": None, "summary": None,
    "department": None, "filed_at": None, "dispatched_at": None, "handled_at": None,
    "verified_at": None, "closed_at": None, "deadline_at": None,
    "rework_count": 0, "extended": False, "voided": False})


# A city without categories or sources: cases go to these (created on first use)
DEFAULT_CATEGORY = {"code": "other", "parent_code": None, "kind": "event", "name_zh": "其他", "name_en": "Other",
                    "time_limit_hours": None, "department": None}
DEFAULT_SOURCE = {"code": "other", "name_zh": "其他", "name_en": "Other", "sort_order": 999}


def finish(rec: Rec, ref: Reference) -> None:
    """References and derivations; every problem of the row is collected before it is
    rejected (RowReject.of)."""
    v = rec.values
    problems: list[RowReject] = []
    # category: the code first, then the name; no category column at all: the default
    carried = "category_code" in v or "category_name" in v
    code, name = v.pop("category_code", None), v.pop("category_name", None)
    cat, problem = None, None
    for field, value in (("category_code", code), ("category_name", name)):
        if value and cat is None:
            try:
                cat = ref.category(value, field)
            except RowReject as exc:
                problem = problem or exc
    if cat is None and not carried:
        cat = ref.categories.get(DEFAULT_CATEGORY["code"]) or CategoryInfo(DEFAULT_CATEGORY["code"], None, None)
        rec.extra["default_category"] = True
    if cat is None:
        problems.append(problem or RowReject("category_code", E.MISSING_VALUE, "no category"))
    else:
        v["category_code"] = cat.code
    if "source" not in v:
        v["source"] = DEFAULT_SOURCE["code"]
        rec.extra["default_source"] = True
    elif not v["source"]:
        problems.append(RowReject("source", E.MISSING_VALUE, "source is empty"))
    else:
        try:
            v["source"] = ref.source(v["source"])
        except RowReject as exc:
            problems.append(exc)
    if v.get("department"):
        try:
            v["department"] = ref.department(v["department"])
        except RowReject as exc:
            problems.append(exc)

    grid_district = district_code = None
    try:
        grid_district = resolve_grid(rec, ref)
    except RowReject as exc:
        problems.append(exc)
    try:
        district_code = resolve_district(rec, ref, fallback=grid_district)
        check_grid_district(rec, grid_district)
    except RowReject as exc:
        problems.append(exc)
    if "street" in v:
        street = v.pop("street")
        try:
            v["street_id"] = ref.street(district_code, street) if street and district_code else None
        except RowReject as exc:
            problems.append(exc)

    reported = v.get("reported_at")
    status = v.get("status")
    status_at = v.pop("status_at", None)
    if status and status_at and status in STEP_COLUMN and v.get(STEP_COLUMN[status]) is None:
        v[STEP_COLUMN[status]] = status_at
    for _, col in LIFECYCLE[1:] if reported is not None else ():
        at = v.get(col)
        if at is not None and at < reported:
            problems.append(RowReject(col, E.TIME_BEFORE_REPORTED,
                                      f"{col} {at.isoformat()} is before reported_at {reported.isoformat()}"))
    if problems:
        raise RowReject.of(problems)
    if status is None:
        status = "voided" if v.get("voided") else \
            next(s for s, col in reversed(LIFECYCLE) if v.get(col) is not None)
    v["status"] = status
    if status == "voided":
        v["voided"] = True
    fill(v, rework_count=0, extended=False, voided=False)
    if v.get("deadline_at") is None and cat.time_limit_hours:
        # as docs/schema.md defines it: the limit counts from filing, twice when extended
        hours = cat.time_limit_hours * (2 if v.get("extended") else 1)
        v["deadline_at"] = (v.get("filed_at") or reported) + dt.timedelta(hours=hours)
    if not v.get("department") and cat.department:
        v["department"] = cat.department


def _events(case_id: int, rec: dict, old) -> list[dict]:
    """Events for the lifecycle steps that have a time now and had none before."""
    before = old._mapping if old is not None else {}
    out, previous = [], None
    for status, col in LIFECYCLE:
        at = rec[col] if col in rec else before.get(col)
        if at is None:
            continue
        if before.get(col) is None:
            out.append({"case_id": case_id, "from_status": previous, "to_status": status, "at": at,
                        "actor": ACTOR, "note": None})
        previous = status
    return out


def prepare(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    """The default category and source, when rows use them and the store lacks them."""
    made = Counter()
    for what, table, row in (("category", CaseCategory.__table__, DEFAULT_CATEGORY),
                             ("source", CaseSource.__table__, DEFAULT_SOURCE)):
        used = sum(1 for r in recs if r.extra.get(f"default_{what}"))
        if used:
            made[f"default_{what}"] += used
            if conn.execute(select(table.c.code).where(table.c.code == row["code"])).first() is None:
                conn.execute(insert(table), [row])
    return [], made


def store(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    out = upsert(conn, TARGET, [r.values for r in recs], now, ids=True)
    events = [e for rec, case_id in out.inserted for e in _events(case_id, rec, None)]
    events += [e for rec, old in out.updated for e in _events(old.id, rec, old)]
    bulk_insert(conn, CaseEvent.__table__, events)
    return counts(out) + Counter(events=len(events))


# Open311 GeoReport v2 service requests, mapped onto cases. A city's own mapping file
# is laid over this, so it can map its service_code values or give a source (a request
# does not say its channel: without one, cases get the default source `other`).
OPEN311 = Mapping(
    origin="(built-in Open311 preset)",
    columns={"external_id": ("service_request_id",), "category_code": ("service_code",),
             "category_name": ("service_name",), "summary": ("description",),
             "reported_at": ("requested_datetime",), "status_at": ("updated_datetime",),
             "deadline_at": ("expected_datetime",), "address": ("address",), "lat": ("lat",),
             "lon": ("long",), "department": ("agency_responsible",), "status": ("status",)},
    # Open311's "open" says nothing about the step: leave it to the lifecycle times
    values={"status": {"open": "", "closed": "closed", "acknowledged": "filed",
                       "in_progress": "dispatched"}},
)

SPEC = KindSpec("cases", "cases (案件) with their lifecycle", FIELDS, finish, store, prepare=prepare,
                locate=True, formats=("csv", "jsonl", "json", "open311"), presets={"open311": OPEN311})
