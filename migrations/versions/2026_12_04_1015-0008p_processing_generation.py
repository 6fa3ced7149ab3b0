"""processing's cache of slowly changing configuration: a generation bumped by triggers

Revision ID: 0008p
Revises: 0007r
Create Date: 2026-12-04 10:15:00

Every webhook processing transaction read the live channels of its numbers, the suspended
workspaces among theirs and the workspaces' consent keywords: three statements of a fixed part
that, at low rates, is most of processing's cost. Processors now keep them between transactions
and read one value instead, ``config_generations.value`` of ``processing``, which any change to
``channels``, ``workspace_suspensions`` or ``consent_keywords`` replaces with a new random value
(triggers, so no writer can forget it; random rather than counted, so a rolled-back change or a
restored backup never brings back a value a cache has seen). See docs/whatsapp-inbound.md,
"The fixed part, cached".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008p"
down_revision: str | None = "0007r"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = ("channels", "workspace_suspensions", "consent_keywords")


# Built from the constants above only: no input reaches these statements.
PG_FUNCTION = (
    "CREATE FUNCTION cx_new_processing_generation() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE config_generations SET value = (random() * 9.2e18)::bigint "
    "WHERE name = 'processing'; RETURN NULL; END $$"
)
SQLITE_BUMP = "UPDATE config_generations SET value = random() WHERE name = 'processing';"


def upgrade() -> None:
    op.create_table(
        "config_generations",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_config_generations")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO config_generations (name, value) "
            "VALUES ('processing', (random() * 9.2e18)::bigint)"
        )
        op.execute(PG_FUNCTION)
        for table in WATCHED:
            op.execute(
                " ".join(
                    (
                        f"CREATE TRIGGER cx_{table}_generation",
                        "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON",
                        table,
                        "FOR EACH STATEMENT EXECUTE FUNCTION cx_new_processing_generation()",
                    )
                )
            )
    else:
        op.execute("INSERT INTO config_generations (name, value) VALUES ('processing', random())")
        for table in WATCHED:
            for event in ("insert", "update", "delete"):
                op.execute(
                    " ".join(
                        (
                            f"CREATE TRIGGER cx_{table}_{event}_generation",
                            f"AFTER {event.upper()} ON {table} BEGIN",
                            SQLITE_BUMP,
                            "END",
                        )
                    )
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS cx_{table}_generation ON {table}")
        op.execute("DROP FUNCTION IF EXISTS cx_new_processing_generation()")
    else:
        for table in WATCHED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS cx_{table}_{event}_generation")
    op.drop_table("config_generations")
