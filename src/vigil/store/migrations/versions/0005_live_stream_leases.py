"""live streams under leases, and live workers' heartbeats

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
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
        "live_stream",
        sa.Column("id", sa.String(length=12), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("redacted_url", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_stream")),
    )
    with op.batch_alter_table("live_stream", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_stream_created_at"), ["created_at"])
        batch_op.create_index(batch_op.f("ix_live_stream_ended_at"), ["ended_at"])
    op.create_table(
        "live_worker",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_worker")),
    )
    with op.batch_alter_table("live_worker", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_worker_heartbeat_at"), ["heartbeat_at"])


def downgrade() -> None:
    op.drop_table("live_worker")
    with op.batch_alter_table("live_stream", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_stream_ended_at"))
        batch_op.drop_index(batch_op.f("ix_live_stream_created_at"))
    op.drop_table("live_stream")
