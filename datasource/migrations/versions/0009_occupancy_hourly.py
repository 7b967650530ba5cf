"""occupancy_hourly: occupancy readings older than OCCUPANCY_RAW_DAYS, folded per
facility and UTC hour by `python -m dashboard prune` (docs/retention.md)

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

import datasource.schema

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "occupancy_hourly",
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.String(13), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("occupied_sum", sa.BigInteger(), nullable=False),
        sa.Column("occupied_max", sa.Integer(), nullable=False),
        sa.Column("out_of_range", sa.Integer(), nullable=False),
        sa.Column("last_observed_at", datasource.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_occupied", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["parking_facilities.id"],
                                name=op.f("fk_occupancy_hourly_facility_id_parking_facilities")),
        sa.PrimaryKeyConstraint("facility_id", "hour", name=op.f("pk_occupancy_hourly")),
    )
    op.create_index("ix_occupancy_hourly_hour", "occupancy_hourly", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_occupancy_hourly_hour", table_name="occupancy_hourly")
    op.drop_table("occupancy_hourly")
