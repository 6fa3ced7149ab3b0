"""webhook_events: the claim walks a partial index of the events still to process

Revision ID: 0011w
Revises: 0010s
Create Date: 2026-12-05 21:00:00

``ix_webhook_events_status_id`` (status, id) held every event ever received. While PostgreSQL's
statistics said few rows were pending it served the claim (``status = 'pending' ORDER BY id``);
during a burst they say most are, and the planner walked the primary key past every processed
row instead: 130-180 ms a claim after ~50,000 processed events in bench/intake.py, growing with
the table. ``ix_webhook_events_pending`` (id) holds only pending rows (processed ones leave it,
so processing's update adds no entry to it) and is the claim's whatever the statistics say. See
docs/whatsapp-inbound.md, "The claim's index".

PostgreSQL builds the new index and drops the old one CONCURRENTLY (outside a transaction):
intake keeps inserting meanwhile. SQLite on a file keeps raw events in their own file, whose
schema ``connectx.db.events_file`` brings up to date (its version 2); an in-memory database
keeps them here and changes them here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from connectx.db import events_file

revision: str = "0011w"
down_revision: str | None = "0010s"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "status = 'pending'"


def _here() -> str | None:
    """The dialect's name, or None when ``webhook_events`` is not in this database (SQLite on a
    file: the events file)."""
    bind = op.get_bind()
    name = bind.dialect.name
    if name == "sqlite" and events_file.file_of(str(bind.engine.url)) is not None:
        return None
    return name


def _drop_if_invalid(index: str) -> None:
    """PostgreSQL: an index a failed ``CREATE INDEX CONCURRENTLY`` left behind is marked
    invalid (never used) but exists, so ``IF NOT EXISTS`` would keep it: dropped first."""
    invalid = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_index "
            "WHERE indexrelid = to_regclass(CAST(:name AS text)) AND NOT indisvalid"
        ),
        {"name": index},
    )
    if invalid.first() is not None:
        op.drop_index(index, table_name="webhook_events", postgresql_concurrently=True)


def _swap_on_postgresql(create: str, columns: list[str], where: str | None, drop: str) -> None:
    """Build ``create`` and drop ``drop``, both CONCURRENTLY (intake keeps inserting)."""
    with op.get_context().autocommit_block():
        _drop_if_invalid(create)
        op.create_index(
            create,
            "webhook_events",
            columns,
            postgresql_where=sa.text(where) if where else None,
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            drop, table_name="webhook_events", postgresql_concurrently=True, if_exists=True
        )


def upgrade() -> None:
    name = _here()
    if name == "postgresql":
        _swap_on_postgresql(
            "ix_webhook_events_pending", ["id"], WHERE, "ix_webhook_events_status_id"
        )
    elif name is not None:
        op.create_index(
            "ix_webhook_events_pending", "webhook_events", ["id"], sqlite_where=sa.text(WHERE)
        )
        op.drop_index("ix_webhook_events_status_id", table_name="webhook_events")


def downgrade() -> None:
    name = _here()
    if name == "postgresql":
        _swap_on_postgresql(
            "ix_webhook_events_status_id", ["status", "id"], None, "ix_webhook_events_pending"
        )
    elif name is not None:
        op.create_index("ix_webhook_events_status_id", "webhook_events", ["status", "id"])
        op.drop_index("ix_webhook_events_pending", table_name="webhook_events")
