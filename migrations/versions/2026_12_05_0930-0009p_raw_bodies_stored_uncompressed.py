"""PostgreSQL: raw webhook bodies are stored without a compression attempt

Revision ID: 0009p
Revises: 0008p
Create Date: 2026-12-05 09:30:00

``webhook_events.body_enc`` holds sealed (AES-GCM) bodies: ciphertext, which no compressor
shrinks. PostgreSQL's default storage for ``bytea`` (EXTENDED) still tries pglz on every value
over ~2 kB before moving it out of line, and gives up only after the attempt: for a 50-update
delivery (~12 kB) that attempt was most of the server's work of a group commit (bench/intake.py,
batch 50, processing off: 166 -> 57 µs of the server's CPU per POST, 3,995 -> 7,137 POSTs/s in
the same run). EXTERNAL keeps the out-of-line storage and skips the attempt; rows already
stored are left as they are. SQLite has no such setting (and stores raw events in their own
file, connectx.db.events_file).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009p"
down_revision: str | None = "0008p"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhook_events ALTER COLUMN body_enc SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhook_events ALTER COLUMN body_enc SET STORAGE EXTENDED")
