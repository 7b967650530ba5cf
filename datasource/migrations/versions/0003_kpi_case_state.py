"""kpi_case_state and kpi_meta: the poller's incremental KPI state; an index on
(status, deadline_at) for overdue counts, which replaces the one on deadline_at alone;
an index on enterprise_problems.resolved_at for "problems resolved in the period"

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_cases_deadline_at", table_name="cases")
    op.create_index("ix_enterprise_problems_resolved_at", "enterprise_problems", ["resolved_at"])
    op.create_index("ix_cases_status_deadline", "cases", ["status", "deadline_at"])
    op.create_table(
        "kpi_case_state",
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False,
                  nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("category_code", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deadline_hour", sa.String(13)),
        sa.Column("reported_hour", sa.String(13)),
        sa.Column("closed_hour", sa.String(13)),
        sa.Column("filed_hour", sa.String(13)),
        sa.Column("closed", sa.SmallInteger(), nullable=False),
        sa.Column("closed_on_time", sa.SmallInteger(), nullable=False),
        sa.Column("handled", sa.SmallInteger(), nullable=False),
        sa.Column("handled_on_time", sa.SmallInteger(), nullable=False),
        sa.Column("reworked", sa.SmallInteger(), nullable=False),
        sa.Column("extended", sa.SmallInteger(), nullable=False),
        sa.Column("handle_seconds", sa.Float(), nullable=False),
        sa.Column("close_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_kpi_case_state")),
    )
    op.create_table(
        "kpi_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_kpi_meta")),
    )


def downgrade() -> None:
    op.drop_index("ix_enterprise_problems_resolved_at", table_name="enterprise_problems")
    op.drop_index("ix_cases_status_deadline", table_name="cases")
    op.create_index("ix_cases_deadline_at", "cases", ["deadline_at"])
    op.drop_table("kpi_meta")
    op.drop_table("kpi_case_state")
