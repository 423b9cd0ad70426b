"""author accounts, links between them, pseudonyms, alerts by author

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "author_account",
        sa.Column("id", _ID, nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("author_ref", sa.String(length=256), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("banks", sa.JSON(), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("risk_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("peak_risk", sa.Float(), nullable=False),
        sa.Column("alert_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
            name=op.f("fk_author_account_alert_id_alert"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_author_account")),
        sa.UniqueConstraint("platform", "author_ref", name=op.f("uq_author_account_platform")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("author_account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_author_account_last_seen"), ["last_seen"])
        batch_op.create_index(batch_op.f("ix_author_account_risk"), ["risk"])
    op.create_table(
        "account_link",
        sa.Column("id", _ID, nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("source_ref", sa.String(length=256), nullable=False),
        sa.Column("target_ref", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_link")),
        sa.UniqueConstraint(
            "platform", "source_ref", "target_ref", "kind", name=op.f("uq_account_link_platform")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("account_link", schema=None) as batch_op:
        batch_op.create_index("ix_account_link_target", ["platform", "target_ref"])
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index("ix_alert_author", ["platform", "author_ref"])
    op.create_table(
        "pseudonym",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_pseudonym")),
    )


def downgrade() -> None:
    op.drop_table("pseudonym")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_author")
    with op.batch_alter_table("account_link", schema=None) as batch_op:
        batch_op.drop_index("ix_account_link_target")
    op.drop_table("account_link")
    with op.batch_alter_table("author_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_author_account_risk"))
        batch_op.drop_index(batch_op.f("ix_author_account_last_seen"))
    op.drop_table("author_account")
