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
    Field("occupied", "int", "occupied spaces; negative or above capacity is rejected",
          required=True, low=-INT32, high=INT32, aliases=("occupancy", "count")),
)

# A reading is identified by its facility and time: re-importing it is a no-op, a new
# count for the same moment replaces the old one (received_at then moves).
READINGS = Target(OccupancyReading.__table__, key=("facility_id", "observed_at"), touch="received_at")


def finish_reading(rec: Rec, ref: Reference) -> None:
    if rec.values["occupied"] < 0:
        raise RowReject("occupied", E.NEGATIVE_OCCUPANCY, f"{rec.values['occupied']} is negative")


def check_readings(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime):
    """The facility must be in the store, and the count within its capacity."""
    rejects = []
    wanted = sorted({r.values["facility"] for r in recs})
    found = {f.external_id: f for f in conn.execute(
        select(ParkingFacility.id, ParkingFacility.external_id, ParkingFacility.capacity)
        .where(ParkingFacility.external_id.in_(wanted)))} if wanted else {}
    for rec in recs:
        v = rec.values
        fac = found.get(v["facility"])
        if fac is None:
            rejects.append((rec, RowReject("facility", E.UNKNOWN_FACILITY,
                                           f"no facility {v['facility']!r} in the store "
                                           "(import it with --kind facilities first)")))
        elif v["occupied"] > fac.capacity:
            rejects.append((rec, RowReject("occupied", E.OVER_CAPACITY,
                                           f"{v['occupied']} occupied but capacity is {fac.capacity}")))
        else:
            rec.extra["facility_id"] = fac.id
    return rejects, Counter()


def store_readings(conn: Connection, recs: list[Rec], ref: Reference, now: dt.datetime) -> Counter:
    rows = [{"facility_id": r.extra["facility_id"], "observed_at": r.values["observed_at"],
             "occupied": r.values["occupied"]} for r in recs]
    return counts(upsert(conn, READINGS, rows, now))


FACILITY_SPEC = KindSpec("facilities", "parking facilities", FACILITY_FIELDS, finish_facility,
                         store_facilities, locate=True)
OCCUPANCY_SPEC = KindSpec("occupancy", "parking occupancy readings", OCCUPANCY_FIELDS,
                          finish_reading, store_readings, prepare=check_readings,
                          key=lambda rec: (rec.values["facility"], rec.values["observed_at"]))
