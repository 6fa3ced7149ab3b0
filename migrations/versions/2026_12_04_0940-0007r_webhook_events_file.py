"""SQLite: raw webhook events move to a file of their own (``<stem>-events.db``)

Revision ID: 0007r
Revises: 0006o
Create Date: 2026-12-04 09:40:00

On SQLite intake's group commit and webhook processing shared the data file's one write lock:
a POST waited out the processor's turns. The ``webhook_events`` rows move to the events file
beside the data file (``connectx.db.events_file``: its schema is created there, versioned by
``PRAGMA user_version``, not by Alembic), which every connection to the data file attaches, so
the table keeps its name for everything that reads it. Rows keep their ids; copied with
``INSERT OR IGNORE``, so a run cut short after the copy copies nothing twice when it runs again.
PostgreSQL: nothing changes (one database). See docs/whatsapp-inbound.md, "The events file".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connectx.db.base
from connectx.db import events_file

revision: str = "0007r"
down_revision: str | None = "0006o"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COLUMNS = (
    "id",
    "source",
    "meta_app_id",
    "received_at",
    "body_enc",
    "body_size",
    "status",
    "attempts",
    "progress",
    "items",
    "unrouted",
    "ignored",
    "last_error",
    "processed_at",
    "held_for",
)
PAGE = 5000


def _events_path() -> str | None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    data = events_file.file_of(str(bind.engine.url))
    return events_file.path_for(data) if data is not None else None


def upgrade() -> None:
    target = _events_path()
    if target is None:
        return
    bind = op.get_bind()
    events_file.ensure_schema(target)
    names = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    events = sqlite3.connect(target, timeout=30, isolation_level=None)
    try:
        events.execute("BEGIN IMMEDIATE")
        after = -1
        while True:
            rows = bind.exec_driver_sql(
                f"SELECT {names} FROM main.webhook_events WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608
                (after, PAGE),
            ).all()
            if not rows:
                break
            events.executemany(
                f"INSERT OR IGNORE INTO webhook_events ({names}) VALUES ({marks})",  # noqa: S608
                [tuple(r) for r in rows],
            )
            after = rows[-1][0]
        events.execute("COMMIT")  # the rows are safe in the events file before they leave here
    finally:
        if events.in_transaction:
            events.execute("ROLLBACK")
        events.close()
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_received_at")
        batch_op.drop_index("ix_webhook_events_status_id")
    op.drop_table("webhook_events")


def downgrade() -> None:
    source = _events_path()
    if source is None:
        return
    op.create_table(
        "webhook_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("meta_app_id", BIG_ID, nullable=True),
        sa.Column("received_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=True),
        sa.Column("body_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("unrouted", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("processed_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("held_for", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["meta_app_id"],
            ["meta_apps.id"],
            name=op.f("fk_webhook_events_meta_app_id_meta_apps"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_events_status_id", ["status", "id"], unique=False)
        batch_op.create_index("ix_webhook_events_received_at", ["received_at", "id"], unique=False)
    events_file.ensure_schema(source)
    names = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    events = sqlite3.connect(source, timeout=30)
    try:
        rows = events.execute(f"SELECT {names} FROM webhook_events ORDER BY id").fetchall()  # noqa: S608
    finally:
        events.close()
    bind = op.get_bind()
    known = {r[0] for r in bind.exec_driver_sql("SELECT id FROM meta_apps").all()}
    for start in range(0, len(rows), PAGE):
        bind.exec_driver_sql(
            f"INSERT INTO main.webhook_events ({names}) VALUES ({marks})",  # noqa: S608
            # (the events file has no foreign key: an app deleted since is NULL, as SET NULL did)
            [
                (r[0], r[1], r[2] if r[2] in known else None, *r[3:])
                for r in rows[start : start + PAGE]
            ],
        )
    # The events file is left as it is: the data file's table is the one in use again, and
    # nothing attaches the events file while the data file has a webhook_events of its own.
