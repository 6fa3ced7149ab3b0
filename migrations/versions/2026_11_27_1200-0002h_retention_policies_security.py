"""retention, policies, security signals: legal holds, workspace retention periods, periodic runs,
policy versions and acceptances (append-only), sign-in events, security notices, suspensions

Revision ID: 0002h
Revises: 0001
Create Date: 2026-11-27 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connectx.db.base

revision: str = "0002h"
down_revision: str | None = "0002i"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = connectx.db.base.UTCDateTime(timezone=True)

APPEND_ONLY = ("policy_acceptances",)
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION connectx_append_only_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "legal_holds",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=True),
        sa.Column("subject", sa.String(length=60), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("placed_by", sa.String(length=60), nullable=False),
        sa.Column("placed_at", UTC, nullable=False),
        sa.Column("released_at", UTC, nullable=True),
        sa.Column("released_by", sa.String(length=60), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    op.create_index(op.f("ix_legal_holds_subject"), "legal_holds", ["subject"], unique=False)
    op.create_index(
        op.f("ix_legal_holds_workspace_id"), "legal_holds", ["workspace_id"], unique=False
    )
    op.create_table(
        "periodic_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", UTC, nullable=False),
        sa.Column("last_enqueued_at", UTC, nullable=True),
        sa.Column("last_job_id", BigId, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_periodic_runs")),
    )
    op.create_table(
        "policy_versions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("material", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("published_by", sa.String(length=60), nullable=False),
        sa.Column("published_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint(
            "kind", "effective_on", name=op.f("uq_policy_versions_kind_effective_on")
        ),
    )
    op.create_table(
        "policy_acceptances",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("version_id", BigId, nullable=False),
        sa.Column("accepted_at", UTC, nullable=False),
        sa.Column("ip_truncated", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["policy_versions.id"],
            name=op.f("fk_policy_acceptances_version_id_policy_versions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_acceptances")),
        sa.UniqueConstraint(
            "user_id", "version_id", name=op.f("uq_policy_acceptances_user_id_version_id")
        ),
    )
    op.create_index(
        op.f("ix_policy_acceptances_user_id"), "policy_acceptances", ["user_id"], unique=False
    )
    op.create_table(
        "retention_overrides",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("retention_class", sa.String(length=32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.String(length=60), nullable=False),
        sa.Column("set_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_retention_overrides_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_overrides")),
        sa.UniqueConstraint(
            "workspace_id",
            "retention_class",
            name=op.f("uq_retention_overrides_workspace_id_retention_class"),
        ),
    )
    op.create_table(
        "security_notices",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("resolved_at", UTC, nullable=True),
        sa.Column("resolved_by", sa.String(length=60), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_security_notices_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_notices")),
    )
    op.create_index(
        "ix_security_notices_workspace_created",
        "security_notices",
        ["workspace_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "workspace_suspensions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("suspended_by", sa.String(length=60), nullable=False),
        sa.Column("suspended_at", UTC, nullable=False),
        sa.Column("lifted_at", UTC, nullable=True),
        sa.Column("lifted_by", sa.String(length=60), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_suspensions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_suspensions")),
    )
    op.create_index(
        op.f("ix_workspace_suspensions_workspace_id"),
        "workspace_suspensions",
        ["workspace_id"],
        unique=False,
    )
    op.create_table(
        "sign_in_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("session_id", BigId, nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("ip_truncated", sa.String(length=64), nullable=True),
        sa.Column("browser", sa.String(length=40), nullable=False),
        sa.Column("os", sa.String(length=40), nullable=False),
        sa.Column("device_class", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("device_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("new_device", sa.Boolean(), nullable=False),
        sa.Column("new_country", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_sign_in_events_session_id_user_sessions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sign_in_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_events")),
    )
    op.create_index(op.f("ix_sign_in_events_at"), "sign_in_events", ["at"], unique=False)
    op.create_index("ix_sign_in_events_user_at", "sign_in_events", ["user_id", "at"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION connectx_append_only_rows()"
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
        op.execute("DROP FUNCTION IF EXISTS connectx_append_only_rows()")
    else:
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    op.drop_index("ix_sign_in_events_user_at", table_name="sign_in_events")
    op.drop_index(op.f("ix_sign_in_events_at"), table_name="sign_in_events")
    op.drop_table("sign_in_events")
    op.drop_index(op.f("ix_workspace_suspensions_workspace_id"), table_name="workspace_suspensions")
    op.drop_table("workspace_suspensions")
    op.drop_index("ix_security_notices_workspace_created", table_name="security_notices")
    op.drop_table("security_notices")
    op.drop_table("retention_overrides")
    op.drop_index(op.f("ix_policy_acceptances_user_id"), table_name="policy_acceptances")
    op.drop_table("policy_acceptances")
    op.drop_table("policy_versions")
    op.drop_table("periodic_runs")
    op.drop_index(op.f("ix_legal_holds_workspace_id"), table_name="legal_holds")
    op.drop_index(op.f("ix_legal_holds_subject"), table_name="legal_holds")
    op.drop_table("legal_holds")
