"""outbound: status callbacks keep our biz_opaque_callback_data (exactly-once reconciliation)

Revision ID: 0003o
Revises: 0003t
Create Date: 2026-12-03 13:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003o"
down_revision: str | None = "0003t"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message_status_events") as batch:
        batch.add_column(sa.Column("callback_data", sa.String(length=64), nullable=True))
        batch.create_index(
            batch.f("ix_message_status_events_callback_data"), ["callback_data"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("message_status_events") as batch:
        batch.drop_index(batch.f("ix_message_status_events_callback_data"))
        batch.drop_column("callback_data")
