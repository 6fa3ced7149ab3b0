"""sweep cursors: how far a background sweep over an append-only table has looked

Revision ID: 0010s
Revises: 0009p
Create Date: 2026-12-05 10:00:00

The status sweep (connectx/messages/status_sweep.py) applies status callbacks that were recorded
but not applied (a process that died between its commit and its look after it); its row here
holds the last ``message_status_events`` id it went through. No row is written here: the first
sweep starts from the newest callback of its time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010s"
down_revision: str | None = "0009p"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sweep_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sweep_cursors")),
    )


def downgrade() -> None:
    op.drop_table("sweep_cursors")
