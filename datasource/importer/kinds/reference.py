"""Reference data: districts, boundaries, streets, grids, case categories, departments
and case sources, loaded like every other kind (mappings, rejects, upserts).

Each is matched to the store by its code. Loading again updates what changed (a
rename is an update), inserts what is new, and the summary names the entries the store
has that the files did not mention: they are kept, never dropped behind the user's back
(cases refer to them). Only the columns a file carries are written.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Connection, Table, func, insert, select, update

from datasource.geo import _rings, centroid
from datasource.importer import errors as E
from datasource.importer.errors import RowReject
from datasource.importer.fields import Field, district
from datasource.importer.kinds.base import KindSpec, Rejects, resolve_district
from datasource.importer.lookups import Reference
from datasource.importer.rowparse import Rec
from datasource.schema import CaseCategory, CaseSource, Department, District, Grid, Street

CHUNK = 2000  # keys per SELECT
LISTED = 10  # entries named in a summary line


# --- shared pieces ----------------------------------------------------------------
def _code(doc: str, max_len: int, *aliases: str, required: bool = True) -> Field:
    return Field("code", "id", doc, required=required, aliases=aliases, max_len=max_len)


def _names(what: str, en_len: int | None = 128) -> tuple[Field, ...]:
    out = [Field("name", "text", f"the {what}'s name in every language, for name_zh / name_en when "
                 "the file has no such column or the cell is empty", max_len=64),
           Field("name_zh", "text", "Chinese name (default: the other name)", max_len=64, aliases=("名称",))]
    if en_len:
        out.append(Field("name_en", "text", "English name (default: the other name)", max_len=en_len))
    return tuple(out)


def _settle_names(v: dict, cols: tuple[str, ...]) -> None:
    """`name` fills the name columns the file lacks; an empty name cell takes the other
    name; a name column left empty with nothing to take is not written (stays as stored)."""
    name = v.pop("name", None)
    given = [v[c] for c in cols if v.get(c)]
    fallback = name or (given[0] if given else None)
    for c in cols:
        if c not in v:
            if name:
                v[c] = name
        elif not v[c]:
            if fallback:
                v[c] = fallback
            else:
                del v[c]


def _code_from_name(v: dict, limit: int, what: str) -> None:
    """No code: the name is the code (cut to `limit` with a digest of the whole name when
    longer), so that a list of names, such as a column of the cases export, loads as is."""
    if v.get("code"):
        return
    name = v.get("name_en") or v.get("name_zh")
    if not name:
        raise RowReject("code", E.MISSING_VALUE, f"a {what} needs a code or a name")
    v["code"] = name if len(name) <= limit else \
        name[:limit - 7].rstrip() + "~" + hashlib.sha1(name.encode()).hexdigest()[:6]


def _has_name(v: dict, cols: tuple[str, ...]) -> bool:
    return any(v.get(c) for c in cols)


def _fill_names(v: dict, cols: tuple[str, ...]) -> None:
    """A new row: every name column from the others."""
    first = next(v[c] for c in cols if v.get(c))
    for c in cols:
        if not v.get(c):
            v[c] = first


@dataclass(frozen=True)
class RefTable:
    table: Table
    key: str = "code"
    serial: bool = False  # an integer `id` the importer gives new rows (max + 1)


def stored_rows(conn: Connection, rt: RefTable, keys) -> dict:
    t, keys, out = rt.table, list(keys), {}
    for i in range(0, len(keys), CHUNK):
        out.update((r._mapping[rt.key], r) for r in conn.execute(select(t).where(t.c[rt.key].in_(keys[i:i + CHUNK]))))
    return out


def upsert_rows(conn: Connection, rt: RefTable, rows: list[dict], fill: Callable[[dict], None],
                order: Callable[[list[dict]], list[dict]] = lambda rows: rows,
                stored: dict | None = None) -> Counter:
    """Insert the new rows (completed by `fill`, in `order`), update the changed columns of
    the others; unchanged rows are not written."""
    t = rt.table
    stored = stored if stored is not None else stored_rows(conn, rt, [r[rt.key] for r in rows])
    counts, new = Counter(inserted=0, updated=0, unchanged=0), []
    for r in rows:
        old = stored.get(r[rt.key])
        if old is None:
            new.append(r)
            continue
        changed = {c: v for c, v in r.items() if c != rt.key and old._mapping[c] != v}
        if changed:
            conn.execute(update(t).where(t.c[rt.key] == r[rt.key]).values(**changed))
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    if new:
        if rt.serial:
            next_id = (conn.execute(select(func.max(t.c.id))).scalar() or 0) + 1
            for i, r in enumerate(new):
                r.setdefault("id", next_id + i)
        for r in new:
            fill(r)
        new = order(new)
        columns = sorted({c for r in new for c in r})
        conn.execute(insert(t), [{c: r.get(c) for c in columns} for r in new])
        counts["inserted"] += len(new)
    return counts


def _store_keys(conn: Connection, rt: RefTable, keys) -> set:
    return set(stored_rows(conn, rt, keys))


def _new_without_name(conn: Connection, rt: RefTable, recs: list[Rec], cols: tuple[str, ...], what: str) -> Rejects:
    """New entries need a name (the store's name columns are NOT NULL)."""
    known = _store_keys(conn, rt, {r.values[rt.key] for r in recs})
    named = {r.values[rt.key] for r in recs if _has_name(r.values, cols)}
    return [(r, RowReject("name", E.MISSING_VALUE, f"a new {what} needs a name ({', '.join(('name',) + cols)})"))
            for r in recs if r.values[rt.key] not in known and r.values[rt.key] not in named]


def _not_in_files(conn: Connection, table: Table, seen: set, what: str, label) -> list[str]:
    rows = conn.execute(select(table).order_by(table.c.code)).all()
    missing = [r for r in rows if r._mapping["code"] not in seen]
    if not missing or not seen:
        return []
    shown = ", ".join(label(r) for r in missing[:LISTED]) + (", ..." if len(missing) > LISTED else "")
    return [f"  {len(missing):,} {what} in the store are not in the file (kept): {shown}"]


def _parents_first(rows: list[dict], key: str, parent: str) -> list[dict]:
    """Rows whose parent is among the rows come after it (a self-referencing foreign key
    is checked row by row)."""
    pending, done, out = list(rows), set(), []
    codes = {r[key] for r in rows}
    while pending:
        ready = [r for r in pending if r.get(parent) not in codes or r[parent] in done or r[parent] == r[key]]
        if not ready:  # a cycle: the foreign key will say so
            ready = pending
        out += ready
        done |= {r[key] for r in ready}
        pending = [r for r in pending if r[key] not in done]
    return out


def _parent_rejects(conn: Connection, rt: RefTable, recs: list[Rec], field: str, reason: str, what: str,
                    wanted_of=lambda v: v.get("parent")) -> Rejects:
    """Rows whose parent is neither in the store nor among the batch's rows."""
    wanted = {wanted_of(r.values) for r in recs} - {None}
    if not wanted:
        return []
    have = _store_keys(conn, rt, wanted) | {r.values[rt.key] for r in recs}
    out = []
    for r in recs:
        p = wanted_of(r.values)
        if p is not None and p not in have:
            out.append((r, RowReject(field, reason, f"{what} {p!r} is neither in the store nor in the file")))
        elif p is not None and p == r.values[rt.key]:
            out.append((r, RowReject(field, reason, f"{what} {p!r} is the row itself")))
    return out


# --- districts ----------------------------------------------------------------------
DISTRICTS = RefTable(District.__table__)
DISTRICT_NAMES = ("name_zh", "name_en")

DISTRICT_FIELDS = (
    _code("the district's code (e.g. 410105, or 3 for a council district); the upsert key", 12,
          "district_code", "adcode", "id"),
    *_names("district"),
    Field("short_zh", "text", "short Chinese name shown on the wall (default: name_zh)", max_len=32,
          aliases=("short_name", "简称")),
    Field("kind", "choice", "district or zone (a development zone; 区/开发区 are understood); default district",
          choices=("district", "zone"), vocab="district_kind", aliases=("district_kind",)),
    Field("sort_order", "int", "position on the screens (default: after the districts already there, "
          "in file order)", low=-2 ** 31, high=2 ** 31 - 1, aliases=("order",)),
    Field("center_lon", "float", "longitude of the label or marker (default: the boundary's centre)",
          low=-180, high=180, aliases=("lon", "lng", "longitude")),
    Field("center_lat", "float", "latitude of the label or marker", low=-90, high=90, aliases=("lat", "latitude")),
)


def finish_district(rec: Rec, ref: Reference) -> None:
    v = rec.values
    _settle_names(v, DISTRICT_NAMES)
    if "short_zh" in v and not v["short_zh"]:
        if v.get("name_zh"):
            v["short_zh"] = v["name_zh"]
        else:
            del v["short_zh"]


def prepare_districts(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    return _new_without_name(conn, DISTRICTS, recs, DISTRICT_NAMES, "district"), Counter()


def store_districts(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    start = conn.execute(select(func.max(District.sort_order))).scalar() or 0
    position = iter(range(start + 1, start + 1 + len(recs)))

    def fill(v):
        _fill_names(v, DISTRICT_NAMES)
        v.setdefault("short_zh", v["name_zh"])
        v.setdefault("kind", "district")
        if v.get("kind") is None:
            v["kind"] = "district"
        if v.get("sort_order") is None:
            v["sort_order"] = next(position)
        for c in ("center_lon", "center_lat", "geometry"):
            v.setdefault(c, None)

    rows = [dict(r.values) for r in recs]
    for r in rows:  # an empty kind or order cell on an update leaves the stored one
        for c in ("kind", "sort_order"):
            if c in r and r[c] is None:
                del r[c]
    return upsert_rows(conn, DISTRICTS, rows, fill)


def report_districts(conn: Connection, seen: set) -> list[str]:
    return _not_in_files(conn, District.__table__, seen, "districts", lambda r: f"{r.code} {r.name_zh}")


def _key_code(rec: Rec):
    return rec.values["code"]


DISTRICTS_SPEC = KindSpec("districts", "districts (区) and development zones", DISTRICT_FIELDS, finish_district,
                          store_districts, prepare=prepare_districts, key=_key_code, needs_districts=False,
                          report=report_districts)


# --- boundaries (GeoJSON) -----------------------------------------------------------------
BOUNDARY_FIELDS = (
    Field("district_code", "ref", "the feature property that names its district, by code or name "
          "(name the property under `columns:`)", required=True,
          aliases=("district", "adcode", "code", "district_name", "name")),
    Field("geometry", "text", "the feature's geometry: a Polygon or MultiPolygon (filled in by the reader)",
          required=True),
    Field("centroid", "text", "a property holding the label point as [lon, lat] (DataV's `centroid`)"),
    Field("center_lon", "float", "longitude of the label point", low=-180, high=180),
    Field("center_lat", "float", "latitude of the label point", low=-90, high=90),
)


def _point(text: str) -> tuple[float, float]:
    try:
        lon, lat = (float(x) for x in json.loads(text))
    except (ValueError, TypeError):
        raise RowReject("centroid", E.INVALID_VALUE, f"{text[:40]!r} is not a point [lon, lat]") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise RowReject("centroid", E.INVALID_VALUE, f"{text[:40]!r} is not a point [lon, lat]")
    return lon, lat


def finish_boundary(rec: Rec, ref: Reference) -> None:
    v = rec.values
    raw = v["district_code"]
    try:
        v["district_code"] = ref.district(raw)
    except RowReject as exc:
        raise RowReject("district_code", E.UNKNOWN_DISTRICT,
                        f"the feature's district {raw!r} matches no district of the store by code or name "
                        f"({exc.message.split(': ', 1)[-1]}); load it with --kind districts, or name the "
                        "property that holds the code under `columns: {district_code: ...}`") from None
    try:
        geometry = json.loads(v["geometry"])
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
            raise RowReject("geometry", E.INVALID_VALUE, f"a {kind} geometry; a boundary is a Polygon or MultiPolygon")
        rings = _rings(geometry)
        if not rings or any(r.ndim != 2 or r.shape[0] < 4 or r.shape[1] < 2 for r in rings):
            raise ValueError("a ring needs four or more [lon, lat] points")
    except RowReject:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise RowReject("geometry", E.INVALID_VALUE, f"not a valid polygon: {exc}") from None
    point = v.pop("centroid", None)
    if point:
        v["center_lon"], v["center_lat"] = _point(point)
    rec.extra["centre"] = centroid(geometry)


def _merge(recs: list[Rec]) -> tuple[list[Rec], int]:
    """Features naming the same district are parts of its boundary: one MultiPolygon."""
    groups: dict[str, list[Rec]] = {}
    for r in recs:
        groups.setdefault(r.values["district_code"], []).append(r)
    out = []
    for parts in groups.values():
        first = parts[0]
        if len(parts) > 1:
            polygons = []
            for r in parts:
                g = json.loads(r.values["geometry"])
                polygons += [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
            geometry = {"type": "MultiPolygon", "coordinates": polygons}
            first.values["geometry"] = json.dumps(geometry, separators=(",", ":"))
            first.extra["centre"] = centroid(geometry)
            for r in parts[1:]:  # a label point given by a later part wins
                for c in ("center_lon", "center_lat"):
                    if r.values.get(c) is not None:
                        first.values[c] = r.values[c]
        out.append(first)
    return out, len(recs) - len(out)


def store_boundaries(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    rt = RefTable(District.__table__)
    recs, merged = _merge(recs)
    stored = stored_rows(conn, rt, [r.values["district_code"] for r in recs])
    rows = []
    for r in recs:
        v = {"code": r.values["district_code"], "geometry": r.values["geometry"]}
        for c in ("center_lon", "center_lat"):
            if r.values.get(c) is not None:
                v[c] = r.values[c]
        old = stored[v["code"]]
        if "center_lon" not in v and (old.center_lon is None or old.center_lat is None):
            v["center_lon"], v["center_lat"] = r.extra["centre"]
        rows.append(v)
    return upsert_rows(conn, rt, rows, lambda v: None, stored=stored) + Counter(merged=merged)


def _listed(rows) -> str:
    return ", ".join(f"{r.code} {r.name_zh}" for r in rows[:LISTED]) + (", ..." if len(rows) > LISTED else "")


def report_boundaries(conn: Connection, seen: set) -> list[str]:
    rows = conn.execute(select(District.code, District.name_zh, District.geometry)
                        .order_by(District.sort_order, District.code)).all()
    named = {code for code, _line in seen}
    none = [r for r in rows if r.geometry is None]
    kept = [r for r in rows if r.geometry is not None and r.code not in named]
    out = []
    if kept and named:
        out.append(f"  {len(kept):,} districts are not in the file and keep their stored boundary: {_listed(kept)}")
    if none:
        out.append(f"  {len(none):,} districts have no boundary (drawn without a shape): {_listed(none)}")
    else:
        out.append("  every district of the store has a boundary")
    return out


BOUNDARIES_SPEC = KindSpec("boundaries", "district boundaries from a GeoJSON FeatureCollection", BOUNDARY_FIELDS,
                           finish_boundary, store_boundaries,
                           # one row per feature: features of the same district are merged, not superseded
                           key=lambda rec: (rec.values["district_code"], rec.row.line),
                           formats=("geojson",), report=report_boundaries)


# --- streets ------------------------------------------------------------------------
STREETS = RefTable(Street.__table__, serial=True)
STREET_NAMES = ("name_zh", "name_en")

STREET_FIELDS = (
    _code("the street's code, unique in the city; the upsert key. Without one a street is known by "
          "its district and name (a new name is then a new street)", 32, "street_code", required=False),
    district("the street's district: code or name (required)"),
    *(f if f.name != "name_zh" else Field("name_zh", "text", "Chinese name (default: the other name)",
                                          max_len=64, aliases=("street", "street_name", "街道", "名称"))
      for f in _names("street")),
)


def finish_street(rec: Rec, ref: Reference) -> None:
    v = rec.values
    resolve_district(rec, ref)
    _settle_names(v, STREET_NAMES)
    if not v.get("code"):
        name = v.get("name_zh") or v.get("name_en")
        if not name:
            raise RowReject("code", E.MISSING_VALUE, "a street needs a code or a name")
        code = f"{v['district_code']}-{name}"
        if len(code) > 32:
            code = f"{v['district_code']}-{hashlib.sha1(name.encode()).hexdigest()[:12]}"
        v["code"] = code


def prepare_streets(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    return _new_without_name(conn, STREETS, recs, STREET_NAMES, "street"), Counter()


def store_streets(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    def fill(v):
        v["name_zh"] = v.get("name_zh") or v.get("name_en")
        v.setdefault("name_en", None)

    return upsert_rows(conn, STREETS, [dict(r.values) for r in recs], fill)


def report_streets(conn: Connection, seen: set) -> list[str]:
    return _not_in_files(conn, Street.__table__, seen, "streets", lambda r: f"{r.code} {r.name_zh}")


STREETS_SPEC = KindSpec("streets", "streets (街道 / 乡镇) of the districts", STREET_FIELDS, finish_street,
                        store_streets, prepare=prepare_streets, key=_key_code, report=report_streets)


# --- grids --------------------------------------------------------------------------
GRIDS = RefTable(Grid.__table__, serial=True)

GRID_FIELDS = (
    _code("the grid's code, unique in the city; the upsert key", 40, "grid_code", "grid"),
    Field("name", "text", "the grid's name", max_len=128, aliases=("name_zh", "grid_name", "名称")),
    district("the grid's district: code or name (required)"),
    Field("street", "ref", "the grid's street: code or name within the district (required for a new grid)",
          aliases=("street_name", "street_code", "街道")),
    Field("parent", "ref", "code of the level-1 grid a level-2 grid belongs to", aliases=("parent_code",)),
    Field("level", "int", "1 or 2 (default: 2 with a parent, else 1)", low=1, high=2),
    Field("kind", "choice", "ordinary or exclusive (专属网格); default ordinary", choices=("ordinary", "exclusive"),
          vocab="grid_kind", aliases=("grid_kind",)),
    Field("host_unit", "text", "an exclusive grid's host unit (university, market, enterprise...)", max_len=128),
    Field("host_kind", "text", "the host unit's kind", max_len=32),
    Field("center_lon", "float", "longitude of the grid's centre", low=-180, high=180, aliases=("lon", "longitude")),
    Field("center_lat", "float", "latitude of the grid's centre", low=-90, high=90, aliases=("lat", "latitude")),
)


def finish_grid(rec: Rec, ref: Reference) -> None:
    v = rec.values
    district_code = resolve_district(rec, ref)
    if "name" in v:
        name = v.pop("name")
        if name:
            v["name_zh"] = name
    if "street" in v:
        street = v.pop("street")
        if street:
            v["street_id"] = ref.street(district_code, street)
    for c in ("kind", "level"):
        if c in v and v[c] is None:
            del v[c]


def prepare_grids(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    rejects = _parent_rejects(conn, GRIDS, recs, "parent", E.UNKNOWN_GRID, "parent grid")
    known = _store_keys(conn, GRIDS, {r.values["code"] for r in recs})
    for r in recs:
        if r.values["code"] in known:
            continue
        if not r.values.get("name_zh"):
            rejects.append((r, RowReject("name", E.MISSING_VALUE, "a new grid needs a name")))
        elif not r.values.get("street_id"):
            rejects.append((r, RowReject("street", E.MISSING_VALUE, "a new grid needs its street "
                                                                     "(load streets with --kind streets first)")))
    return rejects, Counter()


def store_grids(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    rows = [dict(r.values) for r in recs]
    stored = stored_rows(conn, GRIDS, [r["code"] for r in rows])
    # ids for the new grids now, so that a parent new in this file can be referred to
    next_id = (conn.execute(select(func.max(Grid.id))).scalar() or 0) + 1
    for r in rows:
        if r["code"] not in stored:
            r["id"] = next_id
            next_id += 1
    ids = {code: row.id for code, row in stored.items()} | {r["code"]: r["id"] for r in rows if "id" in r}
    wanted = {r["parent"] for r in rows if r.get("parent")} - set(ids)
    ids |= {code: row.id for code, row in stored_rows(conn, GRIDS, wanted).items()}
    for r in rows:
        if "parent" in r:
            parent = r.pop("parent")
            r["parent_id"] = ids[parent] if parent else None
            r["_parent"] = parent

    def fill(v):
        v.setdefault("parent_id", None)
        if v.get("level") is None:
            v["level"] = 2 if v["parent_id"] else 1
        v.setdefault("kind", "ordinary")
        for c in ("host_unit", "host_kind", "center_lon", "center_lat"):
            v.setdefault(c, None)

    def order(new):
        done = _parents_first([{**r, "_p": r.get("_parent")} for r in new], "code", "_p")
        return [{k: x for k, x in r.items() if k not in ("_p", "_parent")} for r in done]

    for r in rows:
        if r["code"] in stored:
            r.pop("_parent", None)
    return upsert_rows(conn, GRIDS, rows, fill, order, stored=stored)


def report_grids(conn: Connection, seen: set) -> list[str]:
    return _not_in_files(conn, Grid.__table__, seen, "grids", lambda r: f"{r.code} {r.name_zh}")


GRIDS_SPEC = KindSpec("grids", "grids (网格): level 1 and 2, ordinary and exclusive", GRID_FIELDS, finish_grid,
                      store_grids, prepare=prepare_grids, key=_key_code, report=report_grids)


# --- case categories --------------------------------------------------------------------
CATEGORIES = RefTable(CaseCategory.__table__)
CATEGORY_NAMES = ("name_zh", "name_en")

CATEGORY_FIELDS = (
    _code("the category's code (S05-01); the upsert key. Without one, the name is the code (cut to 16 "
          "characters with a digest of the whole name when longer)", 16, "category_code", "category", required=False),
    Field("parent_code", "ref", "code of the top-level category it belongs to (optional; must be in the "
          "store or the file)", aliases=("parent",)),
    Field("kind", "choice", "component (部件) or event (事件); default event", choices=("component", "event"),
          vocab="category_kind", aliases=("category_kind",)),
    *_names("category"),
    Field("time_limit_hours", "float", "handling time limit in hours: gives each case its deadline "
          "(empty: no deadline)", low=0, high=1e6, aliases=("time_limit", "sla_hours")),
    Field("time_limit_days", "float", "the time limit in days, when the file counts in days (x 24 hours)",
          low=0, high=1e5, aliases=("sla_days",)),
    Field("department", "text", "the usual handling department (a department's code is written as its name)",
          max_len=64),
)


def finish_category(rec: Rec, ref: Reference) -> None:
    v = rec.values
    _settle_names(v, CATEGORY_NAMES)
    _code_from_name(v, 16, "category")
    days = v.pop("time_limit_days", None)
    if days is not None:
        if v.get("time_limit_hours") is not None and v["time_limit_hours"] != days * 24:
            raise RowReject("time_limit_days", E.INVALID_VALUE,
                            f"{days:g} days disagrees with time_limit_hours {v['time_limit_hours']:g}")
        v["time_limit_hours"] = days * 24
    if v.get("department"):
        v["department"] = ref.department(v["department"])
    if "kind" in v and v["kind"] is None:
        del v["kind"]


def prepare_categories(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    rejects = _parent_rejects(conn, CATEGORIES, recs, "parent_code", E.UNKNOWN_CATEGORY, "parent category",
                              wanted_of=lambda v: v.get("parent_code"))
    refused = {id(r) for r, _ in rejects}
    rejects += _new_without_name(conn, CATEGORIES, [r for r in recs if id(r) not in refused],
                                 CATEGORY_NAMES, "category")
    return rejects, Counter()


def store_categories(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    def fill(v):
        _fill_names(v, CATEGORY_NAMES)
        v.setdefault("kind", "event")
        for c in ("parent_code", "time_limit_hours", "department"):
            v.setdefault(c, None)

    return upsert_rows(conn, CATEGORIES, [dict(r.values) for r in recs], fill,
                       order=lambda rows: _parents_first(rows, "code", "parent_code"))


def report_categories(conn: Connection, seen: set) -> list[str]:
    return _not_in_files(conn, CaseCategory.__table__, seen, "categories", lambda r: f"{r.code} {r.name_zh}")


CATEGORIES_SPEC = KindSpec("categories", "case categories (案件类别) with their time limits", CATEGORY_FIELDS,
                           finish_category, store_categories, prepare=prepare_categories, key=_key_code,
                           needs_districts=False, report=report_categories)


# --- departments ----------------------------------------------------------------------
DEPARTMENTS = RefTable(Department.__table__)
DEPARTMENT_FIELDS = (_code("the department's code; the upsert key", 32, "department_code", "department"),
                     *_names("department"))


def finish_named(rec: Rec, ref: Reference) -> None:
    _settle_names(rec.values, ("name_zh", "name_en"))


def prepare_departments(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    return _new_without_name(conn, DEPARTMENTS, recs, ("name_zh", "name_en"), "department"), Counter()


def store_departments(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    return upsert_rows(conn, DEPARTMENTS, [dict(r.values) for r in recs],
                       lambda v: _fill_names(v, ("name_zh", "name_en")))


def report_departments(conn: Connection, seen: set) -> list[str]:
    return _not_in_files(conn, Department.__table__, seen, "departments", lambda r: f"{r.code} {r.name_zh}")


DEPARTMENTS_SPEC = KindSpec("departments", "departments that handle cases (optional)", DEPARTMENT_FIELDS,
                            finish_named, store_departments, prepare=prepare_departments, key=_key_code,
                            needs_districts=False, report=report_departments)


# --- case sources ---------------------------------------------------------------------
SOURCES = RefTable(CaseSource.__table__)
SOURCE_FIELDS = (
    _code("the source's code (hotline, phone...); the upsert key. Without one, the name is the code (cut to "
          "16 characters with a digest of the whole name when longer)", 16, "source_code", "source", required=False),
    *_names("source"),
    Field("sort_order", "int", "position in lists (default: after the sources already there)",
          low=-2 ** 31, high=2 ** 31 - 1, aliases=("order",)),
)


def prepare_sources(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    return _new_without_name(conn, SOURCES, recs, ("name_zh", "name_en"), "source"), Counter()


def store_sources(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    start = conn.execute(select(func.max(CaseSource.sort_order))).scalar() or 0
    position = iter(range(start + 1, start + 1 + len(recs)))

    def fill(v):
        _fill_names(v, ("name_zh", "name_en"))
        if v.get("sort_order") is None:
            v["sort_order"] = next(position)

    rows = [dict(r.values) for r in recs]
    for r in rows:
        if "sort_order" in r and r["sort_order"] is None:
            del r["sort_order"]
    return upsert_rows(conn, SOURCES, rows, fill)


def report_sources(conn: Connection, seen: set) -> list[str]:
    return _not_in_files(conn, CaseSource.__table__, seen, "sources", lambda r: f"{r.code} {r.name_zh}")


def finish_source(rec: Rec, ref: Reference) -> None:
    _settle_names(rec.values, ("name_zh", "name_en"))
    _code_from_name(rec.values, 16, "source")


SOURCES_SPEC = KindSpec("sources", "where cases come from (app, hotline, Email...)", SOURCE_FIELDS, finish_source,
                        store_sources, prepare=prepare_sources, key=_key_code, needs_districts=False,
                        report=report_sources)

REFERENCE_SPECS = (DISTRICTS_SPEC, BOUNDARIES_SPEC, STREETS_SPEC, GRIDS_SPEC, CATEGORIES_SPEC, DEPARTMENTS_SPEC,
                   SOURCES_SPEC)
