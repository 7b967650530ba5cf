"""What every kind of import declares, and helpers the kinds share."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from sqlalchemy import Connection

from datasource.importer import errors as E
from datasource.importer.errors import RowReject
from datasource.importer.fields import Field
from datasource.importer.lookups import Reference
from datasource.importer.mapping import Mapping
from datasource.importer.rowparse import Rec


Rejects = list[tuple[Rec, RowReject]]


def _nothing_to_prepare(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    return [], Counter()


@dataclass(frozen=True)
class KindSpec:
    """A kind's rows go: parse (fields) -> finish (per row) -> prepare (per batch, against
    the store) -> last row per key wins -> store (per batch). Prepare and store share one
    transaction; store rejects nothing, so every row that passed prepare is written."""
    name: str
    doc: str
    fields: tuple[Field, ...]
    # per row, after parsing: resolve references, derive fields; raises RowReject
    finish: Callable[[Rec, Reference], None]
    # per batch: write the rows (all valid, distinct keys); returns inserted / updated / ... counts
    store: Callable[[Connection, list[Rec], Reference, dt.datetime], Counter]
    # per batch, before the last-wins step: make sure what the rows refer to exists (creating
    # it from rows that carry it), reject the rows whose references are missing; returns
    # the rejects and counts of what it wrote
    prepare: Callable[[Connection, list[Rec], Reference, dt.datetime],
                      tuple[Rejects, Counter]] = _nothing_to_prepare
    # per batch, read-only, for the rows already rejected for other reasons: the problems
    # prepare would find in them (a facility or enterprise not in the store), so that a
    # rejected row's line lists every problem at once
    check: Callable[[Connection, list[Rec], Reference], Rejects] | None = None
    # rows with the same key in one file: the last one wins
    key: Callable[[Rec], Hashable] = lambda rec: rec.values["external_id"]
    locate: bool = False  # find the district from lat/lon when it is missing
    formats: tuple[str, ...] = ("csv", "jsonl", "json")
    presets: dict[str, Mapping] = field(default_factory=dict)  # per format
    needs_districts: bool = True  # refused on a store without districts
    # after every file: lines for the summary, from the store and the keys the files held
    # (reference kinds: what the store has that the files did not name)
    report: Callable[[Connection, set], list[str]] | None = None

    @property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}


def resolve_district(rec: Rec, ref: Reference, *, fallback: str | None = None,
                     required: bool = True) -> str | None:
    """district_code from the row's value, else `fallback`, else the point-in-polygon result."""
    v = rec.values
    raw = v.get("district_code")
    code = ref.district(raw) if raw else (fallback or rec.located)
    if code is None and required:
        lat, lon = v.get("lat"), v.get("lon")
        if lat is not None and lon is not None:
            raise RowReject("district_code", E.UNKNOWN_DISTRICT,
                            f"no district is given and no district polygon contains lon {lon}, lat {lat}")
        raise RowReject("district_code", E.MISSING_VALUE, "no district, and no lat/lon to find it from")
    if code is not None or "district_code" in v:
        v["district_code"] = code
    return code


def resolve_grid(rec: Rec, ref: Reference, source: str = "grid", target: str = "grid_id") -> str | None:
    """`source` (a grid code) to `target` (grids.id) when the file has the column; returns
    the grid's district."""
    v = rec.values
    if source not in v:
        return None
    code = v.pop(source)
    if not code:
        v[target] = None
        return None
    gid, district = ref.grid(code, source)
    v[target] = gid
    return district


def check_grid_district(rec: Rec, grid_district: str | None, field: str = "grid") -> None:
    district = rec.values.get("district_code")
    if grid_district and district and grid_district != district:
        raise RowReject(field, E.UNKNOWN_GRID,
                        f"the grid is in district {grid_district}, the row says {district}")


def collect(problems: list[RowReject], fn: Callable, *args, **kwargs):
    """fn(*args, **kwargs), or None with its RowReject added to `problems`: a kind's finish
    goes on checking the row after a first problem, so that all of them are reported."""
    try:
        return fn(*args, **kwargs)
    except RowReject as exc:
        problems.append(exc)
        return None


def counts(outcome) -> Counter:
    return Counter(inserted=len(outcome.inserted), updated=len(outcome.updated),
                   unchanged=len(outcome.unchanged))


def fill(values: dict[str, Any], **defaults: Any) -> None:
    """NOT NULL columns the file left empty get their usual value."""
    for k, default in defaults.items():
        if k in values and values[k] is None:
            values[k] = default
