"""kpi_rollup and kpi_open: the poller's case rollups, persisted with its state so that
a new poller (a leader taking over) reads them instead of aggregating every case

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kpi_rollup",
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("hour", sa.String(13), nullable=False),
        *[sa.Column(c, sa.Integer(), nullable=False) for c in (
            "reported", "closed", "filed", "cohort_closed", "cohort_closed_on_time", "cohort_handled",
            "cohort_handled_on_time", "cohort_reworked", "cohort_extended")],
        sa.Column("cohort_handle_seconds", sa.Float(), nullable=False),
        sa.Column("cohort_close_seconds", sa.Float(), nullable=False),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("district_code", "hour", name=op.f("pk_kpi_rollup")),
    )
    op.create_table(
        "kpi_open",
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("category_code", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("district_code", "category_code", "status", name=op.f("pk_kpi_open")),
    )


def downgrade() -> None:
    op.drop_table("kpi_open")
    op.drop_table("kpi_rollup")
