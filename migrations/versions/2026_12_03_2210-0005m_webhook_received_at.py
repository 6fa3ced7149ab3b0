"""raw webhooks: an index on (received_at, id)

Revision ID: 0005m
Revises: 0004ip
Create Date: 2026-12-03 22:10:00

Which raw bodies of a day are still live is asked once per live day key by every retention run
and every erasure's key job (``raw_webhooks.idle_days``), and an erasure re-seals a day's bodies
page by page: both filter on ``received_at``, which had no index (each probe read the table).
See docs/retention.md, "Raw-webhook day keys".
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005m"
down_revision: str | None = "0004ip"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Built CONCURRENTLY: a plain CREATE INDEX would block intake's inserts (every webhook)
        # for as long as the build reads 14 days of raw events. It cannot run in a transaction.
        with op.get_context().autocommit_block():
            op.create_index(
                "ix_webhook_events_received_at",
                "webhook_events",
                ["received_at", "id"],
                postgresql_concurrently=True,
            )
        return
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_events_received_at", ["received_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_received_at")
