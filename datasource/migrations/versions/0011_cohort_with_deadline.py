"""kpi_case_state.with_deadline and kpi_rollup.cohort_with_deadline: the cohort of the
on-time rates (filed cases that have a deadline; docs/kpis.md), and a rebuild of the
poller's state, whose `status` is now the case's stage (datasource/stages.py)

The watermarks are deleted: the next poller to load the state rebuilds it from the
cases (one set-based statement) instead of trusting rows written under the old rules.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

WATERMARKS = ("cases_watermark", "rollups_watermark")


def upgrade() -> None:
    with op.batch_alter_table("kpi_case_state") as batch:
        batch.add_column(sa.Column("with_deadline", sa.SmallInteger(), nullable=False, server_default=sa.text("0")))
    with op.batch_alter_table("kpi_rollup") as batch:
        batch.add_column(sa.Column("cohort_with_deadline", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))
    kpi_meta = sa.table("kpi_meta", sa.column("key", sa.String))
    op.execute(kpi_meta.delete().where(kpi_meta.c.key.in_(WATERMARKS)))


def downgrade() -> None:
    with op.batch_alter_table("kpi_rollup") as batch:
        batch.drop_column("cohort_with_deadline")
    with op.batch_alter_table("kpi_case_state") as batch:
        batch.drop_column("with_deadline")
    kpi_meta = sa.table("kpi_meta", sa.column("key", sa.String))
    op.execute(kpi_meta.delete().where(kpi_meta.c.key.in_(WATERMARKS)))
