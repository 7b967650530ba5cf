"""cases: partial index on (deadline_at, id) of running cases, for the ticker's newest
overdue cases (a backward scan that stops at its LIMIT)

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# the running statuses of 0006's time (datasource.schema.RUNNING_STATUSES then)
RUNNING_SQL = "status IN ('filed', 'dispatched', 'handled', 'verified', 'rework')"


def upgrade() -> None:
    op.create_index("ix_cases_running_deadline", "cases", ["deadline_at", "id"],
                    postgresql_where=sa.text(RUNNING_SQL), sqlite_where=sa.text(RUNNING_SQL))


def downgrade() -> None:
    op.drop_index("ix_cases_running_deadline", table_name="cases")
