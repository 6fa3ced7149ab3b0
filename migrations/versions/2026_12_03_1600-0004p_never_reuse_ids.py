"""SQLite: ids that name people and their requests are never handed out again

Without AUTOINCREMENT, SQLite gives a new row the highest id in use plus one, so a user created
after the newest user was erased got the erased user's id, and with it their consent records,
policy acceptances and audit subject. The tables whose ids subjects, data keys and audit entries
point at are rebuilt with AUTOINCREMENT (batch recreate: copy, drop, rename; migrations/env.py
runs SQLite migrations with foreign keys off, then checks every reference). The counter starts
after the highest id present or still named by the audit log or the consent ledger (ids of rows
deleted before this migration are not handed out again either). PostgreSQL: nothing to do,
sequences never go back.

Revision ID: 0004p
Revises: 0003ic
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004p"
down_revision: str | None = "0003ic"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the prefix of the subject references ("user:12") that name its rows
TABLES = {
    "workspaces": "workspace",
    "users": "user",
    "invitations": "invitation",
    "api_keys": "api_key",
    "meta_apps": "meta_app",
    "channels": "channel",
    "contacts": "contact",
    "data_requests": "dsr",
    "recipient_notices": "recipient_notice",
}
# Where ids of rows deleted before this migration are still named.
REFERENCES = (
    ("audit_events", "subject"),
    ("audit_events", "actor"),
    ("consent_records", "subject"),
    ("consent_records", "actor"),
)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def _highest_named(table: str, prefix: str) -> int:
    """The highest id of ``table`` anything still names: its rows, and the subjects and actors
    of the audit log and the consent ledger (which outlive erased rows)."""
    bind = op.get_bind()
    found = bind.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar_one()  # noqa: S608 (a name from TABLES)
    highest = int(found)
    for ref_table, ref_column in REFERENCES:
        value = bind.execute(
            sa.text(
                f"SELECT max(CAST(substr({ref_column}, :n) AS INTEGER)) FROM {ref_table} "  # noqa: S608 (names from REFERENCES)
                f"WHERE {ref_column} GLOB :pattern"
            ),
            {"n": len(prefix) + 2, "pattern": f"{prefix}:[0-9]*"},
        ).scalar_one()
        highest = max(highest, int(value or 0))
    if table == "workspaces":
        value = bind.exec_driver_sql("SELECT max(workspace_id) FROM audit_events").scalar_one()
        highest = max(highest, int(value or 0))
    return highest


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Ids of rows deleted before now would still be handed out once (the counter starts at the
    # highest id present): start it after the highest id the audit log or the ledger names.
    highest = {table: _highest_named(table, prefix) for table, prefix in TABLES.items()}
    _rebuild(True)
    bind = op.get_bind()
    for table, value in highest.items():
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
        if value:
            bind.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :v)"),
                {"t": table, "v": value},
            )


def downgrade() -> None:
    _rebuild(False)
