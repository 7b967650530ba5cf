"""kpi_owner: the poller's lease and fencing token (one row), and kpi_snapshot: the last
snapshot, kept in the store while Redis is unreachable so that every host can serve it

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    owner = op.create_table(
        "kpi_owner",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_owner")),
    )
    op.bulk_insert(owner, [{"id": 1, "token": 0, "holder": "", "expires_at": 0.0}])
    op.create_table(
        "kpi_snapshot",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_snapshot")),
    )


def downgrade() -> None:
    op.drop_table("kpi_snapshot")
    op.drop_table("kpi_owner")
