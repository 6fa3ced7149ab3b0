"""consent: WhatsApp keywords per workspace and language; the suppression list

Revision ID: 0003cs
Revises: 0002m
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003cs"
down_revision: str | None = "0002m"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consent_keywords",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "workspace_id",
            BIG_ID,
            sa.ForeignKey(
                "workspaces.id",
                ondelete="CASCADE",
                name="fk_consent_keywords_workspace_id_workspaces",
            ),
            nullable=False,
        ),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("stop_words", sa.JSON(), nullable=False),
        sa.Column("start_words", sa.JSON(), nullable=False),
        sa.Column("stop_reply", sa.Text(), nullable=False),
        sa.Column("start_reply", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(60), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.UniqueConstraint("workspace_id", "language", name="uq_consent_keywords_language"),
    )
    op.create_index("ix_consent_keywords_workspace_id", "consent_keywords", ["workspace_id"])
    op.create_table(
        "consent_suppressions",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "workspace_id",
            BIG_ID,
            sa.ForeignKey(
                "workspaces.id",
                ondelete="CASCADE",
                name="fk_consent_suppressions_workspace_id_workspaces",
            ),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("address_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("record_id", BIG_ID, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.UniqueConstraint(
            "workspace_id",
            "channel",
            "purpose",
            "address_hash",
            name="uq_consent_suppressions_hash",
        ),
    )


def downgrade() -> None:
    op.drop_table("consent_suppressions")
    op.drop_index("ix_consent_keywords_workspace_id", table_name="consent_keywords")
    op.drop_table("consent_keywords")
