"""Portable SQL expressions whose spelling differs between SQLite and PostgreSQL.

SQLite keeps timestamps as UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (see schema.UTCDateTime);
PostgreSQL as timestamptz. The expressions below return the same values on both.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class utc_hour(FunctionElement):
    """'YYYY-MM-DD HH' of a timestamp in UTC: the bucket every rollup is keyed by."""
    type = String()
    inherit_cache = True
    name = "utc_hour"


@compiles(utc_hour, "sqlite")
def _utc_hour_sqlite(element, compiler, **kw):
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 13)"


@compiles(utc_hour, "postgresql")
def _utc_hour_pg(element, compiler, **kw):
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"


class epoch_seconds(FunctionElement):
    """Seconds since 1970-01-01 UTC, as a float (for durations summed in SQL)."""
    type = Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element, compiler, **kw):
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


class epoch_us(FunctionElement):
    """Microseconds since 1970-01-01 UTC, as an exact integer (for rows the poller keeps
    as numbers: no datetime to build per row)."""
    type = BigInteger()
    inherit_cache = True
    name = "epoch_us"


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element, compiler, **kw):
    col = compiler.process(element.clauses, **kw)  # 'YYYY-MM-DD HH:MM:SS.ffffff', see schema.UTCDateTime
    return f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000 + CAST(substr({col}, 21, 6) AS INTEGER))"


@compiles(epoch_us, "postgresql")
def _epoch_us_pg(element, compiler, **kw):
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000000 AS BIGINT)"


class epoch_now(FunctionElement):
    """The store's clock in epoch seconds: leases are timed by the one clock every host shares."""
    type = Float()
    inherit_cache = True
    name = "epoch_now"


@compiles(epoch_now, "sqlite")
def _epoch_now_sqlite(element, compiler, **kw):
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(epoch_now, "postgresql")
def _epoch_now_pg(element, compiler, **kw):
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


class exact_mean(FunctionElement):
    """a / b for integer sums, as AVG would give it: numeric on PostgreSQL (AVG of integers
    is numeric there), a double on SQLite (AVG is sum / count in doubles there)."""
    inherit_cache = True
    name = "exact_mean"


@compiles(exact_mean, "sqlite")
def _exact_mean_sqlite(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST({a} AS REAL) / {b})"


@compiles(exact_mean, "postgresql")
def _exact_mean_pg(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST({a} AS NUMERIC) / CAST({b} AS NUMERIC))"
