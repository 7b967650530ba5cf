"""Alembic environment: uses the connection handed in by datasource.migrate, or the URL."""
from alembic import context
from sqlalchemy import create_engine

from datasource.schema import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    # one transaction per migration, so that one may step out of it (an autocommit
    # block for CREATE INDEX CONCURRENTLY, datasource/migrations/helpers.py)
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
