"""review before release: review mode, detection-only items, fixed regions, renders, audit

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as accounts:
        accounts.add_column(sa.Column("review_by_default", sa.Boolean(), nullable=False, server_default="0"))
    with op.batch_alter_table("media") as media:
        media.add_column(sa.Column("mode", sa.String(length=10), nullable=False, server_default="redact"))
        media.add_column(sa.Column("review", sa.Boolean(), nullable=False, server_default="0"))
        media.add_column(sa.Column("fixed_regions", sa.JSON(), nullable=True))
        media.add_column(sa.Column("video_plan", sa.JSON(), nullable=True))
        media.add_column(sa.Column("render_requested", sa.Boolean(), nullable=False, server_default="0"))
        media.add_column(sa.Column("renders", sa.Integer(), nullable=False, server_default="0"))
        media.add_column(sa.Column("preview_key", sa.String(length=255), nullable=True))
    op.create_table(
        "media_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("media_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_media_audit_media_at", "media_audit", ["media_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_media_audit_media_at", table_name="media_audit")
    op.drop_table("media_audit")
    with op.batch_alter_table("media") as media:
        for column in ("preview_key", "renders", "render_requested", "video_plan", "fixed_regions", "review", "mode"):
            media.drop_column(column)
    with op.batch_alter_table("accounts") as accounts:
        accounts.drop_column("review_by_default")
