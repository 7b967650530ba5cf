"""The incident store's schema (SQLAlchemy 2 models).

Alembic migrations in datasource/migrations are the source of truth for the database;
these models must match them (a test compares the two).

All timestamps are stored in UTC: `timestamptz` on PostgreSQL, ISO text in UTC on
SQLite. Python code always gets timezone-aware datetimes back.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (BigInteger, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, SmallInteger, String, Text, TypeDecorator, UniqueConstraint,
                        text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Lifecycle of a case (GB/T 30428): the happy path, then the exception states.
CASE_STATUSES = ("reported", "filed", "dispatched", "handled", "verified", "closed",
                 "rework", "parked", "voided")
OPEN_STATUSES = ("filed", "dispatched", "handled", "verified", "rework", "parked")
RUNNING_STATUSES = tuple(s for s in OPEN_STATUSES if s != "parked")  # the clock runs: can fall overdue
RUNNING_SQL = "status IN (%s)" % ", ".join(f"'{s}'" for s in RUNNING_STATUSES)  # for partial indexes
# the demo city's channels; a city loads its own into case_sources (reference data)
CASE_SOURCES = ("app", "hotline", "patrol", "enterprise", "sensor")
PROBLEM_TYPES = ("hiring", "licence", "tax", "financing", "infrastructure", "safety", "other")
PROBLEM_STATUSES = ("open", "resolved")
FACILITY_KINDS = ("on_street", "off_street", "shared", "non_motor")
PROGRAMMES = ("added", "revitalised", "shared")
GRID_KINDS = ("ordinary", "exclusive")
ROLES = ("admin", "city_leader", "district_leader")  # people; walls use display tokens

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive input is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a time zone")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class District(Base):
    __tablename__ = "districts"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    short_zh: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # district | zone
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    center_lon: Mapped[Optional[float]] = mapped_column(Float)
    center_lat: Mapped[Optional[float]] = mapped_column(Float)
    geometry: Mapped[Optional[str]] = mapped_column(Text)  # GeoJSON geometry, or none


class Street(Base):
    __tablename__ = "streets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), index=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[Optional[str]] = mapped_column(String(128))


class Grid(Base):
    __tablename__ = "grids"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), index=True)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"), index=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("grids.id"))
    level: Mapped[int] = mapped_column(SmallInteger)  # 1 or 2
    kind: Mapped[str] = mapped_column(String(16))  # ordinary | exclusive
    host_unit: Mapped[Optional[str]] = mapped_column(String(128))  # exclusive grids only
    host_kind: Mapped[Optional[str]] = mapped_column(String(32))  # university | market | enterprise ...
    name_zh: Mapped[str] = mapped_column(String(128))
    center_lon: Mapped[Optional[float]] = mapped_column(Float)
    center_lat: Mapped[Optional[float]] = mapped_column(Float)


class CaseCategory(Base):
    __tablename__ = "case_categories"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    parent_code: Mapped[Optional[str]] = mapped_column(ForeignKey("case_categories.code"))
    kind: Mapped[str] = mapped_column(String(16))  # component (部件) | event (事件)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    time_limit_hours: Mapped[Optional[float]] = mapped_column(Float)  # subcategories only
    department: Mapped[Optional[str]] = mapped_column(String(64))  # usual handling department


class CaseSource(Base):
    """Where cases come from (the city app, the hotline, e-mail...): reference data, so that a
    city names its own channels (`python -m dashboard import --kind sources`)."""
    __tablename__ = "case_sources"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Department(Base):
    """Departments that handle cases (optional reference data; `--kind departments`).
    Cases and categories keep the department's name as text; a code in an export is
    written as the department's name."""
    __tablename__ = "departments"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))


class CityProfile(Base):
    """The city profile (one row): its names, its time zone and the subjects it records,
    as loaded by `python -m dashboard city load` (dashboard/profile.py validates it)."""
    __tablename__ = "city_profile"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    body: Mapped[str] = mapped_column(Text)  # the profile as JSON
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    category_code: Mapped[str] = mapped_column(ForeignKey("case_categories.code"))
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"))
    street_id: Mapped[Optional[int]] = mapped_column(ForeignKey("streets.id"))
    grid_id: Mapped[Optional[int]] = mapped_column(ForeignKey("grids.id"))
    lat: Mapped[Optional[float]] = mapped_column(Float)
    lon: Mapped[Optional[float]] = mapped_column(Float)
    address: Mapped[Optional[str]] = mapped_column(String(256))
    summary: Mapped[Optional[str]] = mapped_column(Text)
    department: Mapped[Optional[str]] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    filed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    handled_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    verified_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    deadline_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    rework_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)

    __table_args__ = (
        Index("ix_cases_updated_at", "updated_at"),
        Index("ix_cases_status_district", "status", "district_code"),
        Index("ix_cases_status_reported", "status", "reported_at"),
        Index("ix_cases_district_reported", "district_code", "reported_at"),
        Index("ix_cases_reported_at", "reported_at"),
        Index("ix_cases_filed_at", "filed_at"),
        Index("ix_cases_closed_at", "closed_at"),
        Index("ix_cases_status_deadline", "status", "deadline_at"),
        # the newest deadlines of running cases, read backwards for the ticker: a partial
        # index, so a LIMIT stops after its rows instead of sorting a day of deadlines
        Index("ix_cases_running_deadline", "deadline_at", "id",
              postgresql_where=text(RUNNING_SQL), sqlite_where=text(RUNNING_SQL)),
        Index("ix_cases_grid_id", "grid_id"),
        Index("ix_cases_street_id", "street_id"),
    )


class CaseEvent(Base):
    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    from_status: Mapped[Optional[str]] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[Optional[str]] = mapped_column(String(64))  # department or person
    note: Mapped[Optional[str]] = mapped_column(Text)

    __table_args__ = (Index("ix_case_events_case_at", "case_id", "at"),)


class Enterprise(Base):
    __tablename__ = "enterprises"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), index=True)
    grid_id: Mapped[Optional[int]] = mapped_column(ForeignKey("grids.id"))
    exclusive_grid_id: Mapped[Optional[int]] = mapped_column(ForeignKey("grids.id"), index=True)
    above_scale: Mapped[bool] = mapped_column(Boolean, default=False)  # 规上企业
    industry: Mapped[Optional[str]] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)


class EnterpriseVisit(Base):
    __tablename__ = "enterprise_visits"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"))
    grid_id: Mapped[Optional[int]] = mapped_column(ForeignKey("grids.id"))
    visited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    liaison: Mapped[Optional[str]] = mapped_column(String(64))
    note: Mapped[Optional[str]] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)

    __table_args__ = (
        Index("ix_enterprise_visits_visited_at", "visited_at"),
        Index("ix_enterprise_visits_updated_at", "updated_at"),
    )


class EnterpriseProblem(Base):
    __tablename__ = "enterprise_problems"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    visit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("enterprise_visits.id"))
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"))
    problem_type: Mapped[str] = mapped_column(String(32))
    summary: Mapped[Optional[str]] = mapped_column(Text)
    department: Mapped[Optional[str]] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # open | resolved
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)

    __table_args__ = (
        Index("ix_enterprise_problems_status_district", "status", "district_code"),
        Index("ix_enterprise_problems_raised_at", "raised_at"),
        Index("ix_enterprise_problems_resolved_at", "resolved_at"),
        Index("ix_enterprise_problems_updated_at", "updated_at"),
    )


class ParkingFacility(Base):
    __tablename__ = "parking_facilities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # on_street | off_street | shared | non_motor
    capacity: Mapped[int] = mapped_column(Integer)
    programme: Mapped[Optional[str]] = mapped_column(String(16))  # added | revitalised | shared
    demo_site: Mapped[bool] = mapped_column(Boolean, default=False)  # 示范点
    since: Mapped[Optional[dt.date]] = mapped_column(Date)
    lat: Mapped[Optional[float]] = mapped_column(Float)
    lon: Mapped[Optional[float]] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)


class OccupancyReading(Base):
    __tablename__ = "occupancy_readings"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("parking_facilities.id"))
    observed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    occupied: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now)

    __table_args__ = (
        UniqueConstraint("facility_id", "observed_at"),
        Index("ix_occupancy_readings_observed_at", "observed_at"),
        Index("ix_occupancy_readings_received_at", "received_at"),
    )


class OccupancyHourly(Base):
    """Occupancy readings older than OCCUPANCY_RAW_DAYS, folded per facility and UTC hour
    (docs/retention.md). A reading is either here or in occupancy_readings, never in
    both: each prune batch moves its readings in one transaction, and the queries add
    the two tables up per facility and hour."""
    __tablename__ = "occupancy_hourly"
    facility_id: Mapped[int] = mapped_column(ForeignKey("parking_facilities.id"), primary_key=True)
    hour: Mapped[str] = mapped_column(String(13), primary_key=True)  # UTC 'YYYY-MM-DD HH'
    readings: Mapped[int] = mapped_column(Integer)
    occupied_sum: Mapped[int] = mapped_column(BigInteger)  # clamped to [0, capacity] when folded
    occupied_max: Mapped[int] = mapped_column(Integer)  # clamped likewise
    out_of_range: Mapped[int] = mapped_column(Integer)  # readings below 0 or above capacity
    last_observed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the hour's newest reading
    last_occupied: Mapped[int] = mapped_column(Integer)  # as read (not clamped)

    __table_args__ = (Index("ix_occupancy_hourly_hour", "hour"),)


class KpiCaseState(Base):
    """What each case last contributed to the KPI rollups (written by the poller only).

    Lets a poll subtract a changed case's old contribution and add its new one, so the
    cost of a poll follows what changed, not the size of the history.
    """
    __tablename__ = "kpi_case_state"
    case_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                         autoincrement=False)
    district_code: Mapped[str] = mapped_column(String(12))
    category_code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # the stage now (datasource/stages.py: stage_now)
    deadline_hour: Mapped[Optional[str]] = mapped_column(String(13))  # running open cases only
    reported_hour: Mapped[Optional[str]] = mapped_column(String(13))
    closed_hour: Mapped[Optional[str]] = mapped_column(String(13))
    filed_hour: Mapped[Optional[str]] = mapped_column(String(13))  # null: not filed, or voided
    closed: Mapped[int] = mapped_column(SmallInteger)
    closed_on_time: Mapped[int] = mapped_column(SmallInteger)
    handled: Mapped[int] = mapped_column(SmallInteger)
    handled_on_time: Mapped[int] = mapped_column(SmallInteger)
    reworked: Mapped[int] = mapped_column(SmallInteger)
    extended: Mapped[int] = mapped_column(SmallInteger)
    handle_seconds: Mapped[float] = mapped_column(Float)
    close_seconds: Mapped[float] = mapped_column(Float)
    with_deadline: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))  # filed with a deadline


class KpiRollup(Base):
    """The case rollups per district and UTC hour: the sums of kpi_case_state's
    contributions, written in the same transactions, so that a new poller reads them
    instead of aggregating the state of every case."""
    __tablename__ = "kpi_rollup"
    district_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    hour: Mapped[str] = mapped_column(String(13), primary_key=True)  # UTC 'YYYY-MM-DD HH'
    reported: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    filed: Mapped[int] = mapped_column(Integer)  # the cohort filed this hour (not voided), and below what became of it
    cohort_closed: Mapped[int] = mapped_column(Integer)
    cohort_closed_on_time: Mapped[int] = mapped_column(Integer)
    cohort_handled: Mapped[int] = mapped_column(Integer)
    cohort_handled_on_time: Mapped[int] = mapped_column(Integer)
    cohort_reworked: Mapped[int] = mapped_column(Integer)
    cohort_extended: Mapped[int] = mapped_column(Integer)
    cohort_handle_seconds: Mapped[float] = mapped_column(Float)
    cohort_close_seconds: Mapped[float] = mapped_column(Float)
    cohort_with_deadline: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # the on-time rates' cohort
    due: Mapped[int] = mapped_column(Integer)  # running open cases whose deadline is this hour


class KpiOpen(Base):
    """Open cases per district, category and status, kept like kpi_rollup."""
    __tablename__ = "kpi_open"
    district_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    category_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class KpiMeta(Base):
    """Small key/value facts of the poller: its watermark on cases.updated_at, and the
    watermark the rollups were last written at (equal while they are current)."""
    __tablename__ = "kpi_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class KpiOwner(Base):
    """Who may write the poller's KPI state: one row. `token` grows by one at every change
    of owner (a fencing token); every write of the state checks it in its own transaction,
    so that a former owner can never write again. On PostgreSQL the row is also the
    poller's lease (`holder`, `expires_at` in epoch seconds of the store's clock)."""
    __tablename__ = "kpi_owner"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    token: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)


class KpiSnapshot(Base):
    """The last snapshot (head and body JSON), written by the owner while Redis is
    unreachable, so that the web processes of every host can copy it to their folder."""
    __tablename__ = "kpi_snapshot"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    token: Mapped[int] = mapped_column(BigInteger)
    head: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)


class User(Base):
    """A person who logs in. Only a password hash is kept (argon2id)."""
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(24))  # one of ROLES
    # no foreign key: accounts outlive a demo city's reset; codes are checked on write
    district_code: Mapped[Optional[str]] = mapped_column(String(12))  # district leaders
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now)
    last_login_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    # a session carries the epoch it was made in; bumping it (logout, password, disable,
    # role or district change) ends every session of the user on every worker and host
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class RateLimit(Base):
    """One fixed-window counter of the login rate limits, for deployments without Redis:
    every worker and host that shares the store counts in the same row."""
    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Float)  # Unix time: the window ends
    __table_args__ = (Index("ix_rate_limits_expires_at", "expires_at"),)


class DisplayToken(Base):
    """A wall's revocable access: the URL carries the token, the store only its hash."""
    __tablename__ = "display_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    label: Mapped[str] = mapped_column(String(128))
    district_code: Mapped[Optional[str]] = mapped_column(String(12))  # None: the city (no FK, as users)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now)
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


DATA_TABLES = (KpiRollup.__table__, KpiOpen.__table__, KpiCaseState.__table__, KpiMeta.__table__, OccupancyHourly.__table__, OccupancyReading.__table__, EnterpriseProblem.__table__, EnterpriseVisit.__table__,
               CaseEvent.__table__, Case.__table__, ParkingFacility.__table__,
               Enterprise.__table__, Grid.__table__, Street.__table__, CaseCategory.__table__,
               CaseSource.__table__, Department.__table__, CityProfile.__table__,
               District.__table__)  # children first: the order to empty them in
