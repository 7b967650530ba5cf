"""Parking facilities and their occupancy readings (郑好停)."""
from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import Connection, select

from datasource.importer import errors as E
from datasource.importer.errors import RowReject
from datasource.importer.fields import INT32, Field, coordinates, district, external_id
from datasource.importer.kinds.base import KindSpec, counts, fill, resolve_district
from datasource.importer.lookups import Reference
from datasource.importer.rowparse import Rec
from datasource.importer.store import Target, upsert
from datasource.schema import FACILITY_KINDS, PROGRAMMES, OccupancyReading, ParkingFacility

FACILITY_FIELDS = (
    external_id("the facility's id in the city's system; occupancy rows refer to it",
                "facility_id", "facility"),
    Field("name", "text", "facility name", required=True, max_len=128, aliases=("facility_name",)),
    district(),
    Field("kind", "choice", "on_street, off_street, shared or non_motor (路内/路外/共享/非机动车 "
          "are understood)", required=True, choices=FACILITY_KINDS, aliases=("facility_kind", "type")),
    Field("capacity", "int", "number of spaces", required=True, low=0, high=INT32,
          aliases=("spaces", "total_spaces")),
    Field("programme", "choice", "added, revitalised or shared (新增/盘活/共享)", choices=PROGRAMMES),
    Field("demo_site", "bool", "a demonstration site (示范点)"),
    Field("since", "date", "date it opened or joined the programme"),
    *coordinates(),
)

FACILITIES = Target(ParkingFacility.__table__, insert_defaults={
    "programme": None, "demo_site": False, "since": None, "lat": None, "lon": None})


def finish_facility(rec: Rec, ref: Reference) -> None:
    resolve_district(rec, ref)
    fill(rec.values, demo_site=False)


def store_facilities(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    return counts(upsert(conn, FACILITIES, [r.values for r in recs], now))


OCCUPANCY_FIELDS = (
    Field("facility", "id", "the facility's external id", required=True, max_len=64,
          aliases=("facility_id", "facility_external_id", "external_id")),
    Field("observed_at", "time", "when the count was taken", required=True,
          aliases=("time", "timestamp", "observed")),
    Field("occupied", "int", "occupied spaces, stored as read: a count below 0 or above the "
          "facility's capacity is kept, counted, and clamped to [0, capacity] in the KPIs",
          required=True, low=-INT32, high=INT32, aliases=("occupancy", "count")),
    # the facility itself, for a city whose readings are its only export (see docs/import.md)
    Field("facility_name", "text", "facility name: with the columns below, creates or updates "
          "the facility (default for a new one: its id)", max_len=128),
    Field("capacity", "int", "the facility's number of spaces", low=0, high=INT32,
          aliases=("spaces", "total_spaces")),
    district("the facility's district: code, name, short or English name; when empty, found "
             "from lat/lon"),
    Field("facility_kind", "choice", "the facility's kind: on_street, off_street, shared or "
          "non_motor (a new facility needs one: a column, or defaults.facility_kind:)",
          choices=FACILITY_KINDS, vocab="kind", aliases=("kind",)),
    *coordinates(),
)
# the facility's columns a reading may carry: field of the reading -> column of the facility
FACILITY_OF_READING = {"facility_name": "name", "capacity": "capacity", "district_code": "district_code",
                       "facility_kind": "kind", "lat": "lat", "lon": "lon"}
NEW_FACILITY_NEEDS = ("district_code", "kind", "capacity")

# A reading is identified by its facility and time: re-importing it is a no-op, a new
# count for the same moment replaces the old one (received_at then moves).
READINGS = Target(OccupancyReading.__table__, key=("facility_id", "observed_at"), touch="received_at")
FACILITIES_OF_READINGS = Target(ParkingFacility.__table__, required_on_insert=("name", *NEW_FACILITY_NEEDS),
                                insert_defaults=FACILITIES.insert_defaults)


def finish_reading(rec: Rec, ref: Reference) -> None:
    """The facility's own columns go aside (rec.extra["facility"]): an empty cell says
    nothing about the facility. A count out of range is kept as read."""
    v = rec.values
    facility = rec.extra["facility"] = {"external_id": v.get("facility")}
    for src, dst in FACILITY_OF_READING.items():
        value = v.get(src) if src == "district_code" else v.pop(src, None)
        if value is not None:
            facility[dst] = value
    if "district_code" in facility or rec.located:
        facility["district_code"] = resolve_district(rec, ref, required=False)
    v.pop("district_code", None)
    if facility.get("district_code") is None:
        facility.pop("district_code", None)


def _facilities(conn: Connection, external_ids) -> dict:
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}
    return {f.external_id: f for f in conn.execute(
        select(ParkingFacility.id, ParkingFacility.external_id, ParkingFacility.capacity)
        .where(ParkingFacility.external_id.in_(wanted)))}


def _unknown(ext: str, carried: dict) -> RowReject:
    if len(carried) > 1:
        lacks = [k for k in NEW_FACILITY_NEEDS if carried.get(k) is None]
        keys = ", ".join("defaults.facility_kind:" if k == "kind" else f"columns.{k}:" for k in lacks)
        return RowReject("facility", E.UNKNOWN_FACILITY,
                         f"no facility {ext!r} in the store, and the row cannot create it: it has no "
                         f"{', '.join('facility_kind' if k == 'kind' else k for k in lacks)}",
                         f"give {keys}")
    return RowReject("facility", E.UNKNOWN_FACILITY, f"no facility {ext!r} in the store",
                     "import it with --kind facilities first, or give the readings file the facility's "
                     "columns (facility_name, capacity, district_code, facility_kind)")


def prepare_readings(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    """Create or update the facilities the rows carry (their columns merged in file order,
    a new facility named by its id unless the rows name it), then reject the readings
    whose facility is still unknown."""
    found = _facilities(conn, (r.values["facility"] for r in recs))
    carried: dict[str, dict] = {}
    for rec in recs:
        fac = rec.extra["facility"]
        if len(fac) > 1:
            carried.setdefault(fac["external_id"], {}).update(fac)
    for ext, fac in carried.items():
        if ext not in found:
            fac.setdefault("name", ext)
    out = upsert(conn, FACILITIES_OF_READINGS, list(carried.values()), now)
    if out.inserted or out.updated:
        found = _facilities(conn, (r.values["facility"] for r in recs))
    rejects = []
    for rec in recs:
        ext = rec.values["facility"]
        fac = found.get(ext)
        if fac is None:
            rejects.append((rec, _unknown(ext, carried.get(ext, rec.extra["facility"]))))
        else:
            rec.extra.update(facility_id=fac.id, capacity=fac.capacity)
    return rejects, Counter(facilities_inserted=len(out.inserted), facilities_updated=len(out.updated))


def check_readings(conn: Connection, recs: list[Rec], ref: Reference):
    """For rows rejected for other reasons: a facility that is not in the store and that
    the row could not create."""
    ids = [r.values["facility"] for r in recs if r.values.get("facility")]
    found = _facilities(conn, ids)
    out = []
    for rec in recs:
        ext = rec.values.get("facility")
        carried = rec.extra.get("facility") or {}
        if ext and ext not in found and len(carried) <= 1:
            out.append((rec, _unknown(ext, carried)))
    return out


def store_readings(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    rows = [{"facility_id": r.extra["facility_id"], "observed_at": r.values["observed_at"],
             "occupied": r.values["occupied"]} for r in recs]
    capacity = {r.extra["facility_id"]: r.extra["capacity"] for r in recs}
    out = upsert(conn, READINGS, rows, now)
    written = [rec for rec, _ in out.inserted] + [rec for rec, _ in out.updated]
    return counts(out) + Counter(above_capacity=sum(r["occupied"] > capacity[r["facility_id"]] for r in written),
                                 below_zero=sum(r["occupied"] < 0 for r in written))


FACILITY_SPEC = KindSpec("facilities", "parking facilities", FACILITY_FIELDS, finish_facility,
                         store_facilities, locate=True)
OCCUPANCY_SPEC = KindSpec("occupancy", "parking occupancy readings", OCCUPANCY_FIELDS,
                          finish_reading, store_readings, prepare=prepare_readings, check=check_readings,
                          key=lambda rec: (rec.values["facility"], rec.values["observed_at"]), locate=True)
