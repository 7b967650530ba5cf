"""index cases.reported_at for the ticker and the reported-per-hour rollup

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_reported_at", "cases", ["reported_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_reported_at", table_name="cases")
