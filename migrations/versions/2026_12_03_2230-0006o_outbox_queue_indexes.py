"""outbox: the queue's indexes hold only the rows still to send; NULL keys not indexed

Revision ID: 0006o
Revises: 0005m
Create Date: 2026-12-03 22:30:00

``ix_outbox_due`` (status, channel_id, next_attempt_at, id) held every row ever queued and did
not serve the claim's ``ORDER BY id``: PostgreSQL walked the primary key past every sent row
(110,000 rows read for a claim of 600 in bench/outbound.py's ten-number phase). It becomes two
partial indexes: pending rows by (channel_id, id), what a claim walks in order, and rows being
sent by (channel_id, lease_until), what the in-doubt checks walk. The idempotency key's unique
index and the message_id index skip NULLs (read receipts have no message, keyless sends no
key): a btree holding many equal NULL keys made each entry several times dearer, and every
rewrite of a row (claim, outcome) adds one. Uniqueness is unchanged (NULLs never conflicted).
See docs/outbound.md, "Indexes".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006o"
down_revision: str | None = "0005m"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _where(condition: str) -> dict[str, Any]:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_index("ix_outbox_messages_message_id")
        batch_op.drop_constraint("uq_outbox_messages_workspace_id_idempotency_key", type_="unique")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_pending", ["channel_id", "id"], **_where("status = 'pending'")
        )
        batch_op.create_index(
            "ix_outbox_sending", ["channel_id", "lease_until"], **_where("status = 'sending'")
        )
        batch_op.create_index(
            "uq_outbox_idempotency",
            ["workspace_id", "idempotency_key"],
            unique=True,
            **_where("idempotency_key IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_outbox_message", ["message_id"], **_where("message_id IS NOT NULL")
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message")
        batch_op.drop_index("uq_outbox_idempotency")
        batch_op.drop_index("ix_outbox_sending")
        batch_op.drop_index("ix_outbox_pending")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_outbox_messages_workspace_id_idempotency_key", ["workspace_id", "idempotency_key"]
        )
        batch_op.create_index("ix_outbox_messages_message_id", ["message_id"], unique=False)
        batch_op.create_index(
            "ix_outbox_due", ["status", "channel_id", "next_attempt_at", "id"], unique=False
        )
