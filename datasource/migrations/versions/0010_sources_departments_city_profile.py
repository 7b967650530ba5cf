"""case_sources and departments (reference data a city loads with `python -m dashboard
import --kind sources|departments`) and city_profile (the city's name, time zone and
recorded subjects, loaded with `python -m dashboard city load`)

The sources the store's cases already use are written into case_sources, so that an
existing store's cases keep resolving (the demo's five codes get their names).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

import datasource.schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# the demo city's channels, the closed list before sources became data
KNOWN = {"app": ("郑好拍", "City app", 1), "hotline": ("12345热线", "12345 hotline", 2),
         "patrol": ("网格巡查", "Grid patrol", 3), "enterprise": ("企业网格", "Enterprise grid", 4),
         "sensor": ("物联感知", "Sensor", 5)}


def upgrade() -> None:
    sources = op.create_table(
        "case_sources",
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name_zh", sa.String(64), nullable=False),
        sa.Column("name_en", sa.String(128), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_case_sources")),
    )
    op.create_table(
        "departments",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name_zh", sa.String(64), nullable=False),
        sa.Column("name_en", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_departments")),
    )
    op.create_table(
        "city_profile",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("loaded_at", datasource.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_city_profile")),
    )
    used = [r[0] for r in op.get_bind().execute(sa.text("SELECT DISTINCT source FROM cases"))]
    rows = []
    for i, code in enumerate(sorted(used, key=lambda c: (KNOWN.get(c, ("", "", 99))[2], c))):
        zh, en, _ = KNOWN.get(code, (code, code, 0))
        rows.append({"code": code, "name_zh": zh, "name_en": en, "sort_order": i + 1})
    if rows:
        op.bulk_insert(sources, rows)


def downgrade() -> None:
    op.drop_table("city_profile")
    op.drop_table("departments")
    op.drop_table("case_sources")
