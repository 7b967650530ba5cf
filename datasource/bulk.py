"""Fast bulk writes of DataFrames: COPY on PostgreSQL, one-transaction executemany on SQLite.

Datetime columns must be naive UTC (`datetime64[us]`); they are written as UTC.
Used by the demo seed; the importer goes through ordinary upserts instead because
it has to compare against what is already stored.
"""
from __future__ import annotations

import io
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sqlalchemy import (Connection, Engine, ForeignKeyConstraint, Table, UniqueConstraint,
                        text)
from sqlalchemy.schema import AddConstraint, DropConstraint

# SQLAlchemy's SQLite DateTime storage format: always with microseconds, so that
# text comparison orders correctly.
_SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"


def bulk_insert(conn: Connection, table: Table, df: pd.DataFrame) -> int:
    """Append `df` (columns named as in `table`) inside the caller's transaction."""
    if df.empty:
        return 0
    unknown = set(df.columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name}: no column(s) {sorted(unknown)}")
    df = _integer_columns(table, df)
    if conn.dialect.name == "postgresql":
        _copy_postgres(conn, table, df)
    else:
        _executemany(conn, table, df)
    return len(df)


def _integer_columns(table: Table, df: pd.DataFrame) -> pd.DataFrame:
    """Nullable integer columns arrive as floats (NaN for null); write them as integers."""
    fix = {c: "Int64" for c in df.columns
           if pd.api.types.is_float_dtype(df[c].dtype)
           and table.c[c].type.python_type is int}
    return df.astype(fix) if fix else df


def _copy_postgres(conn: Connection, table: Table, df: pd.DataFrame) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f")
    cols = ", ".join(f'"{c}"' for c in df.columns)
    dbapi = conn.connection.dbapi_connection
    with dbapi.cursor() as cur:
        cur.execute("SET LOCAL TIME ZONE 'UTC'")  # naive timestamps in the CSV are UTC
        with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
            copy.write(buf.getvalue())


def _sqlite_values(series: pd.Series) -> list:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = np.datetime_as_string(series.to_numpy("datetime64[us]"), unit="us")
        values = np.char.replace(values, "T", " ")
        out = values.astype(object)
        out[series.isna().to_numpy()] = None
        return out.tolist()
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("int64").tolist()
    out = series.astype(object)
    return out.where(series.notna(), None).tolist()


def _executemany(conn: Connection, table: Table, df: pd.DataFrame) -> None:
    columns = [_sqlite_values(df[c]) for c in df.columns]
    rows = list(zip(*columns))
    cols = ", ".join(f'"{c}"' for c in df.columns)
    marks = ", ".join("?" for _ in df.columns)
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.executemany(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', rows)
    finally:
        cur.close()


def reset_sequence(conn: Connection, table: Table, column: str = "id") -> None:
    """After explicit ids were copied in, move PostgreSQL's sequence past them."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text(
        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
        f"COALESCE((SELECT MAX({column}) FROM \"{table.name}\"), 0) + 1, false)"))


@contextmanager
def deferred_indexes(engine: Engine, tables: list[Table]):
    """Load first, index after: drop secondary indexes (and, on PostgreSQL, unique and
    foreign-key constraints) of `tables`, and build them again on the way out.

    Only for loading into empty tables: the constraints are checked when they come back,
    so a bad load fails then instead of going unnoticed.
    """
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        for t in tables:
            for idx in t.indexes:
                idx.drop(conn, checkfirst=True)
            if pg:
                for c in t.constraints:
                    if isinstance(c, (ForeignKeyConstraint, UniqueConstraint)):
                        conn.execute(DropConstraint(c, if_exists=True))
    try:
        yield
    finally:
        with engine.begin() as conn:
            for t in tables:
                for idx in t.indexes:
                    idx.create(conn, checkfirst=True)
                if pg:
                    existing = {r[0] for r in conn.execute(text(
                        "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)"),
                        {"t": t.name})}
                    for c in t.constraints:
                        if isinstance(c, (UniqueConstraint, ForeignKeyConstraint)) and c.name not in existing:
                            conn.execute(AddConstraint(c))
