"""Helpers for migration scripts (`from datasource.migrations.helpers import ...`).

Index builds on tables with data: a plain CREATE INDEX takes a SHARE lock, and every
write to the table (the importer, the city's feed, the poller's state) waits until the
build ends. `create_index_concurrently` builds it with CREATE INDEX CONCURRENTLY on
PostgreSQL, which lets writes go on; see docs/deployment.md ("Upgrades without downtime").
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def _pg_index_valid(name: str) -> bool | None:
    """True / False (left INVALID by a failed concurrent build) / None (no such index)."""
    return op.get_bind().execute(sa.text(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = :name AND pg_table_is_visible(c.oid)"), {"name": name}).scalar()


def create_index_concurrently(name: str, table: str, columns: list, *, unique: bool = False, **kw) -> None:
    """In a migration's upgrade(): build an index without blocking writes.

    PostgreSQL: CREATE INDEX CONCURRENTLY, outside the migration's transaction (it cannot
    run inside one: alembic's autocommit block commits what came before). The build waits
    for transactions already writing the table to end; writes that start meanwhile go on.
    Safe to run again: an index left INVALID by a failed build is dropped and built anew,
    a valid one is kept. Other stores (SQLite: one writer, small): a plain CREATE INDEX.
    `kw` goes to op.create_index (e.g. postgresql_where=...)."""
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(name, table, columns, unique=unique, **kw)
        return
    with op.get_context().autocommit_block():
        valid = _pg_index_valid(name)
        if valid is False:
            drop_index_concurrently(name, table, _in_block=True)
        if valid is not True:
            op.create_index(name, table, columns, unique=unique, postgresql_concurrently=True, **kw)


def drop_index_concurrently(name: str, table: str, *, _in_block: bool = False) -> None:
    """In a migration's downgrade() (or a later upgrade): DROP INDEX CONCURRENTLY on
    PostgreSQL, a plain DROP INDEX elsewhere."""
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(name, table_name=table)
        return
    if _in_block:
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
