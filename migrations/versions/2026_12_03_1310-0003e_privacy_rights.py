"""privacy rights: processing restrictions, access/portability exports, recipient notices and
endpoints (docs/privacy-rights.md)

Revision ID: 0003e
Revises: 0003cs
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connectx.db.base

revision: str = "0003e"
down_revision: str | None = "0003cs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = connectx.db.base.UTCDateTime(timezone=True)


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "processing_restrictions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("workspace_id", BIG_ID, nullable=True),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("request_id", BIG_ID, nullable=True),
        sa.Column("placed_by", sa.String(length=60), nullable=False),
        sa.Column("placed_at", AT, nullable=False),
        sa.Column("lifted_by", sa.String(length=60), nullable=True),
        sa.Column("lifted_at", AT, nullable=True),
        _workspace_fk("processing_restrictions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_restrictions")),
    )
    with op.batch_alter_table("processing_restrictions") as batch:
        batch.create_index(batch.f("ix_processing_restrictions_subject"), ["subject"], unique=False)
        batch.create_index(
            "uq_processing_restrictions_active_subject",
            ["subject"],
            unique=True,
            sqlite_where=sa.text("lifted_at IS NULL"),
            postgresql_where=sa.text("lifted_at IS NULL"),
        )
    op.create_table(
        "privacy_exports",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("workspace_id", BIG_ID, nullable=True),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("request_id", BIG_ID, nullable=True),
        sa.Column("storage_key", sa.String(length=200), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("link_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("link_expires_at", AT, nullable=True),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("expires_at", AT, nullable=False),
        sa.Column("downloaded_at", AT, nullable=True),
        sa.Column("deleted_at", AT, nullable=True),
        _workspace_fk("privacy_exports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_exports")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_privacy_exports_link_hash")),
    )
    with op.batch_alter_table("privacy_exports") as batch:
        batch.create_index(batch.f("ix_privacy_exports_subject"), ["subject"], unique=False)
    op.create_table(
        "recipient_notices",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("recipient_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", BIG_ID, nullable=True),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("right", sa.String(length=16), nullable=False),
        sa.Column("request_id", BIG_ID, nullable=True),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=True),
        sa.Column("ack_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("sent_at", AT, nullable=True),
        sa.Column("acknowledged_at", AT, nullable=True),
        _workspace_fk("recipient_notices"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_notices")),
        sa.UniqueConstraint("ack_hash", name=op.f("uq_recipient_notices_ack_hash")),
    )
    with op.batch_alter_table("recipient_notices") as batch:
        batch.create_index(batch.f("ix_recipient_notices_subject"), ["subject"], unique=False)
        batch.create_index("ix_recipient_notices_status", ["status", "id"], unique=False)
    op.create_table(
        "recipient_endpoints",
        sa.Column("recipient_id", sa.String(length=40), nullable=False),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("updated_by", sa.String(length=60), nullable=False),
        sa.Column("updated_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("recipient_id", name=op.f("pk_recipient_endpoints")),
    )


def downgrade() -> None:
    op.drop_table("recipient_endpoints")
    with op.batch_alter_table("recipient_notices") as batch:
        batch.drop_index("ix_recipient_notices_status")
        batch.drop_index(batch.f("ix_recipient_notices_subject"))
    op.drop_table("recipient_notices")
    with op.batch_alter_table("privacy_exports") as batch:
        batch.drop_index(batch.f("ix_privacy_exports_subject"))
    op.drop_table("privacy_exports")
    with op.batch_alter_table("processing_restrictions") as batch:
        batch.drop_index("uq_processing_restrictions_active_subject")
        batch.drop_index(batch.f("ix_processing_restrictions_subject"))
    op.drop_table("processing_restrictions")
