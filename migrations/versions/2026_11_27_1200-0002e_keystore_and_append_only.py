"""privacy: keys move to the key store; the consent ledger and audit log become append-only

* ``crypto_keys`` leaves the data database: wrapped keys live in the key store
  (``connectx.privacy.keystore``: its own SQLite file, or the ``keystore`` schema / database on
  PostgreSQL), which data backups never include. The table held no rows before this revision.
* Triggers reject UPDATE and DELETE on ``consent_records`` and ``audit_events``. On SQLite an
  ALTER in batch mode recreates the table and drops its triggers: a later migration that alters
  either table must create them again (tests/privacy/test_consent.py fails otherwise).

Revision ID: 0002e
Revises: 0001
Create Date: 2026-11-27 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connectx.db.base

revision: str = "0002e"
down_revision: str | None = "0002b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("consent_records", "audit_events")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION connectx_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def upgrade() -> None:
    op.drop_table("crypto_keys")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION connectx_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} is not allowed'); "
                    "END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS connectx_append_only()")
    else:
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    op.create_table(
        "crypto_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("master_id", sa.String(length=16), nullable=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crypto_keys")),
        sa.UniqueConstraint(
            "kind",
            "scope",
            "subject",
            "version",
            name=op.f("uq_crypto_keys_kind_scope_subject_version"),
        ),
    )
