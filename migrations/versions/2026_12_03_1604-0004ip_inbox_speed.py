"""inbox speed: indexes for a page's read markers and labels and for unread counts;
name-token backfill job

Revision ID: 0004ip
Revises: 0004p
Create Date: 2026-12-03 16:04:00

The read markers' (user_id, workspace_id) index becomes (user_id, workspace_id,
conversation_id, read_upto), and labels get (workspace_id, conversation_id, label_id): the
inbox list asks both for "this member's / this workspace's rows of these 30 conversations", which
SQLite (no statistics) answered by reading every row of the member or workspace. Unread counts
read a partial index of the unresolved conversations. See docs/inbox.md, "Performance".

Contacts named before name search existed have no name tokens; when there are any, one
``inbox.backfill_name_tokens`` job is enqueued (it needs the key store to read the names, so the
work is a job, not SQL here).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004ip"
down_revision: str | None = "0004p"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_reads_user")
        batch_op.create_index(
            "ix_conversation_reads_member",
            ["user_id", "workspace_id", "conversation_id", "read_upto"],
            unique=False,
        )
    with op.batch_alter_table("conversation_labels", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_labels_conversation",
            ["workspace_id", "conversation_id", "label_id"],
            unique=False,
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversations_unresolved_inbound",
            ["workspace_id", "last_inbound_at", "assignee_user_id", "status", "id"],
            unique=False,
            sqlite_where=sa.text("status != 'resolved'"),
            postgresql_where=sa.text("status != 'resolved'"),
        )
    bind = op.get_bind()
    unnamed = bind.execute(
        sa.text(
            "SELECT 1 FROM contacts c WHERE c.name_enc IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM contact_name_tokens t WHERE t.contact_id = c.id) LIMIT 1"
        )
    ).first()
    if unnamed is not None:
        now = datetime.now(UTC)
        if bind.dialect.name == "sqlite":
            now = now.replace(tzinfo=None)
        jobs = sa.table(
            "jobs",
            sa.column("name", sa.String),
            sa.column("args", sa.JSON),
            sa.column("status", sa.String),
            sa.column("attempts", sa.Integer),
            sa.column("max_attempts", sa.Integer),
            sa.column("run_after", sa.DateTime(timezone=True)),
            sa.column("created_at", sa.DateTime(timezone=True)),
        )
        op.bulk_insert(
            jobs,
            [
                {
                    "name": "inbox.backfill_name_tokens",
                    "args": {"after": 0},
                    "status": "pending",
                    "attempts": 0,
                    "max_attempts": 8,
                    "run_after": now,
                    "created_at": now,
                }
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_unresolved_inbound")
    with op.batch_alter_table("conversation_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_labels_conversation")
    with op.batch_alter_table("conversation_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_reads_member")
        batch_op.create_index(
            "ix_conversation_reads_user", ["user_id", "workspace_id"], unique=False
        )
