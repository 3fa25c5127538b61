"""video segments: long videos redacted in parallel

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "video_segments",
        sa.Column("media_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("start_pts", sa.BigInteger(), nullable=False),
        sa.Column("end_pts", sa.BigInteger(), nullable=True),
        sa.Column("margin_pts", sa.BigInteger(), nullable=False),
        sa.Column("first_frame", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("result_key", sa.String(length=255), nullable=True),
        sa.Column("detections", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("media_id", "attempt", "index"),
    )


def downgrade() -> None:
    op.drop_table("video_segments")
