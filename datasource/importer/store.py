"""Batch upsert by natural key, the same on SQLite and PostgreSQL.

For a batch: one SELECT fetches the stored rows with the batch's keys, the records
are split into new / changed / unchanged in Python, the new ones go in with one bulk
insert (COPY on PostgreSQL, executemany on SQLite) and the changed ones with one
executemany UPDATE per set of changed columns. Unchanged rows are not written at all, so their `updated_at` stays
put and the dashboard (which polls on it) sees no change.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, any_, bindparam, exc, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row


@dataclass(frozen=True)
class Target:
    table: Table
    key: tuple[str, ...] = ("external_id",)
    touch: str | None = "updated_at"  # set to "now" on insert and on every real change
    insert_defaults: dict[str, Any] = field(default_factory=dict)
    required_on_insert: tuple[str, ...] = ()  # a new row without these cannot be created

    def key_of(self, values: dict) -> Any:
        if len(self.key) == 1:
            return values[self.key[0]]
        return tuple(values[k] for k in self.key)


@dataclass
class Outcome:
    inserted: list[tuple[dict, int]] = field(default_factory=list)  # record, new id
    updated: list[tuple[dict, Row]] = field(default_factory=list)   # record, row as it was
    unchanged: list[tuple[dict, Row]] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)               # new but incomplete


FETCH_CHUNK = 5000  # keys per SELECT: well inside SQLite's and PostgreSQL's parameter limits


def fetch(conn: Connection, target: Target, keys: list, columns) -> dict[Any, Row]:
    """Stored rows (id, key and `columns`) whose key is among `keys`, by key."""
    t = target.table
    cols = [t.c.id] + [t.c[k] for k in target.key] + [t.c[c] for c in columns if c not in target.key]
    out = {}
    pg = conn.dialect.name == "postgresql"
    for i in range(0, len(keys), FETCH_CHUNK):
        chunk = keys[i:i + FETCH_CHUNK]
        if len(target.key) == 1 and pg:
            # one array parameter instead of thousands: far cheaper for the driver to bind
            col = t.c[target.key[0]]
            cond = col == any_(bindparam("keys", chunk, type_=ARRAY(col.type)))
        elif len(target.key) == 1:
            cond = t.c[target.key[0]].in_(chunk)
        else:
            cond = tuple_(*(t.c[k] for k in target.key)).in_(chunk)
        out.update((target.key_of(r._mapping), r) for r in conn.execute(select(*cols).where(cond)))
    return out


def bulk_insert(conn: Connection, table: Table, rows: list[dict]) -> None:
    """Append rows (all with the same keys) in the caller's transaction.

    Straight to the driver, values converted by the columns' own bind processors (so
    UTC handling is the schema's): SQLAlchemy's per-row parameter handling costs more
    than the database here. PostgreSQL: COPY (a multi-row INSERT spends most of its
    time in the driver parsing a huge statement). SQLite: executemany, a loop in C.
    """
    if not rows:
        return
    cols = list(rows[0])
    # dialect_impl: SQLite's own DATETIME text format, exactly as SQLAlchemy writes it
    binds = [table.c[c].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for c in cols]
    values = [[b(row[c]) if b else row[c] for c, b in zip(cols, binds)] for row in rows]
    quoted = ", ".join(f'"{c}"' for c in cols)
    dbapi = conn.connection.dbapi_connection
    error = conn.dialect.loaded_dbapi.Error
    if conn.dialect.name == "postgresql":
        sql = f'COPY "{table.name}" ({quoted}) FROM STDIN'
    else:
        sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" * len(cols))})'
    try:
        with contextlib.closing(dbapi.cursor()) as cur:
            if conn.dialect.name == "postgresql":
                with cur.copy(sql) as copy:
                    for row in values:
                        copy.write_row(row)
            else:
                cur.executemany(sql, values)
    except error as err:
        # the same exception classes a statement run through SQLAlchemy would raise
        raise exc.DBAPIError.instance(sql, None, err, error) from None


def _changed(rec: dict, stored) -> tuple[str, ...]:
    return tuple(c for c, value in rec.items() if value != stored[c])


def upsert(conn: Connection, target: Target, records: list[dict], now: dt.datetime,
           ids: bool = False) -> Outcome:
    """Insert new records, update changed ones; `records` must have distinct keys.
    With `ids`, `Outcome.inserted` carries the new rows' ids (one more SELECT)."""
    out = Outcome()
    if not records:
        return out
    t = target.table
    columns = sorted({c for r in records for c in r} - {"id", target.touch})
    stored = fetch(conn, target, [target.key_of(r) for r in records], columns)
    new = []
    groups: dict[tuple[str, ...], list[tuple[dict, Row]]] = {}
    for rec in records:
        old = stored.get(target.key_of(rec))
        if old is None:
            if any(rec.get(c) is None and target.insert_defaults.get(c) is None
                   for c in target.required_on_insert):
                out.refused.append(rec)
            else:
                new.append(rec)
        elif changed := _changed(rec, old._mapping):
            out.updated.append((rec, old))
            # only the changed columns are set: fewer index entries to rewrite
            groups.setdefault(tuple(sorted(changed)), []).append((rec, old))
        else:
            out.unchanged.append((rec, old))
    if new:
        cols = sorted({c for r in new for c in r} | set(target.insert_defaults))
        rows = [{c: r.get(c, target.insert_defaults.get(c)) for c in cols} for r in new]
        if target.touch:
            for r in rows:
                r[target.touch] = now
        bulk_insert(conn, t, rows)
        if ids:
            made = fetch(conn, target, [target.key_of(r) for r in new], [])
            out.inserted = [(r, made[target.key_of(r)].id) for r in new]
        else:
            out.inserted = [(r, None) for r in new]
    for cols, items in groups.items():  # one executemany per set of changed columns
        cols = cols + ((target.touch,) if target.touch else ())
        stmt = update(t).where(t.c.id == bindparam("b_id")).values(
            {c: bindparam(f"b_{c}", type_=t.c[c].type) for c in cols})
        conn.execute(stmt, [{"b_id": old.id,
                             **{f"b_{c}": now if c == target.touch else rec[c] for c in cols}}
                            for rec, old in items])
    return out
