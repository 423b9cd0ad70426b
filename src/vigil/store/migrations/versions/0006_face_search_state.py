"""face searches' state and error, for searches queued for `vigil worker --role faces`

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every search made before queueing existed ran to the end inside its request: "done".
    with op.batch_alter_table("face_search", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="done")
        )
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("face_search", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.drop_column("state")
