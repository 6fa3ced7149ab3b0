"""retention: the append-only tables can be pruned, only through a recorded permit

``ledger_prunes`` records each deliberate removal from ``audit_events`` (the oldest entries, up
to an id; with the hash of the last one, where the chain now starts) and ``consent_records`` (one
subject's records, up to an id). The DELETE triggers of migration 0002e now let a row go only
when such a permit covers it; UPDATE stays refused. ``ledger_prunes`` is append-only itself.

Revision ID: 0003t
Revises: 0003r
Create Date: 2026-12-03 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connectx.db.base

revision: str = "0003t"
down_revision: str | None = "0003r"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LEDGERS = ("consent_records", "audit_events")
# A row may go when a permit for its table reaches its id (and names its subject, if any).
PERMIT = (
    "SELECT 1 FROM ledger_prunes p WHERE p.table_name = {table} AND p.up_to_id >= OLD.id "
    "AND (p.subject IS NULL OR p.subject = OLD.subject)"
)
PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION connectx_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS ({PERMIT.format(table="TG_TABLE_NAME")}) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def _sqlite_delete_trigger(table: str, permit: bool) -> str:
    when = f"WHEN NOT EXISTS ({PERMIT.format(table=repr(table))}) " if permit else ""
    return (
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} {when}"
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE is not allowed'); END"
    )


def upgrade() -> None:
    op.create_table(
        "ledger_prunes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=True),
        sa.Column("up_to_id", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("created_at", connectx.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_prunes")),
    )
    op.create_index(
        "ix_ledger_prunes_permit", "ledger_prunes", ["table_name", "up_to_id", "subject"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in LEDGERS:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION connectx_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_prune_only BEFORE DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION connectx_prune_only()"
            )
        op.execute(
            "CREATE TRIGGER ledger_prunes_append_only BEFORE UPDATE OR DELETE ON ledger_prunes "
            "FOR EACH ROW EXECUTE FUNCTION connectx_append_only()"
        )
    else:
        for table in LEDGERS:
            op.execute(f"DROP TRIGGER {table}_no_delete")
            op.execute(_sqlite_delete_trigger(table, permit=True))
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ledger_prunes_no_{verb.lower()} BEFORE {verb} ON ledger_prunes "
                f"BEGIN SELECT RAISE(ABORT, 'ledger_prunes is append-only: {verb} is not "
                "allowed'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_prunes_append_only ON ledger_prunes")
        for table in LEDGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_prune_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION connectx_append_only()"
            )
        op.execute("DROP FUNCTION IF EXISTS connectx_prune_only()")
    else:
        for table in LEDGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            op.execute(_sqlite_delete_trigger(table, permit=False))
    op.drop_index("ix_ledger_prunes_permit", table_name="ledger_prunes")
    op.drop_table("ledger_prunes")
