"""whatsapp inbound: channels, meta apps, webhook events, contacts, conversations, messages

Revision ID: 0002f
Revises: 0001
Create Date: 2026-11-27 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connectx.db.base

revision: str = "0002f"
down_revision: str | None = "0002e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("phone_index", sa.LargeBinary(length=32), nullable=True),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("bsuid_index", sa.LargeBinary(length=32), nullable=True),
        sa.Column("bsuid_enc", sa.LargeBinary(), nullable=True),
        sa.Column("name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("profile_enc", sa.LargeBinary(), nullable=True),
        sa.Column(
            "identity_changed_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_inbound_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contacts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint(
            "workspace_id", "bsuid_index", name=op.f("uq_contacts_workspace_id_bsuid_index")
        ),
        sa.UniqueConstraint(
            "workspace_id", "phone_index", name=op.f("uq_contacts_workspace_id_phone_index")
        ),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contacts_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "meta_apps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("verify_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("verify_token_index", sa.LargeBinary(length=32), nullable=True),
        sa.Column(
            "registered_by_workspace_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["registered_by_workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_meta_apps_registered_by_workspace_id_workspaces"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meta_apps")),
        sa.UniqueConstraint("app_id", name=op.f("uq_meta_apps_app_id")),
    )
    with op.batch_alter_table("meta_apps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meta_apps_verify_token_index"), ["verify_token_index"], unique=False
        )

    op.create_table(
        "template_updates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("waba_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=True),
        sa.Column("template_name", sa.String(length=512), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("new_quality", sa.String(length=32), nullable=True),
        sa.Column("new_category", sa.String(length=32), nullable=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_template_updates_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_updates")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_template_updates_dedup_key")),
    )
    with op.batch_alter_table("template_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_template_updates_waba_id"), ["waba_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_template_updates_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "channels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "meta_app_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        sa.Column("display_phone_number", sa.String(length=32), nullable=False),
        sa.Column("waba_id", sa.String(length=64), nullable=False),
        sa.Column("access_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disconnected_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["meta_app_id"],
            ["meta_apps.id"],
            name=op.f("fk_channels_meta_app_id_meta_apps"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_channels_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
    )
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channels_meta_app_id"), ["meta_app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_channels_waba_id"), ["waba_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_channels_workspace_id"), ["workspace_id"], unique=False
        )
        batch_op.create_index(
            "uq_channels_live_phone_number_id",
            ["phone_number_id"],
            unique=True,
            sqlite_where=sa.text("disconnected_at IS NULL"),
            postgresql_where=sa.text("disconnected_at IS NULL"),
        )

    op.create_table(
        "webhook_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column(
            "meta_app_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
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

    op.create_table(
        "contact_preference_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "channel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_contact_preference_events_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_preference_events_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_preference_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_preference_events")),
        sa.UniqueConstraint(
            "contact_id",
            "category",
            "value",
            "occurred_at",
            name=op.f("uq_contact_preference_events_contact_id_category_value_occurred_at"),
        ),
    )
    with op.batch_alter_table("contact_preference_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_preference_events_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_contact_preference_events_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "conversations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "channel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_inbound_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_message_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_conversations_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_conversations_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_conversations_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversations_channel_id"), ["channel_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversations_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(
            "ix_conversations_workspace_activity",
            ["workspace_id", "last_message_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_conversations_unresolved_contact_channel",
            ["contact_id", "channel_id"],
            unique=True,
            sqlite_where=sa.text("status != 'resolved'"),
            postgresql_where=sa.text("status != 'resolved'"),
        )

    op.create_table(
        "message_status_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "channel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("wamid", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_title", sa.String(length=200), nullable=True),
        sa.Column("pricing", sa.JSON(), nullable=True),
        sa.Column("meta_conversation", sa.JSON(), nullable=True),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_message_status_events_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_message_status_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_status_events")),
        sa.UniqueConstraint("wamid", "status", name=op.f("uq_message_status_events_wamid_status")),
    )
    with op.batch_alter_table("message_status_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_status_events_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "channel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        sa.Column("wamid", sa.String(length=255), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_rank", sa.Integer(), nullable=False),
        sa.Column("status_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_title", sa.String(length=200), nullable=True),
        sa.Column("body_enc", sa.LargeBinary(), nullable=True),
        sa.Column("content_enc", sa.LargeBinary(), nullable=True),
        sa.Column("raw_enc", sa.LargeBinary(), nullable=True),
        sa.Column("media_id", sa.String(length=128), nullable=True),
        sa.Column("media_mime_type", sa.String(length=128), nullable=True),
        sa.Column("media_sha256", sa.String(length=128), nullable=True),
        sa.Column("reply_to_wamid", sa.String(length=255), nullable=True),
        sa.Column("forwarded", sa.Boolean(), nullable=False),
        sa.Column("frequently_forwarded", sa.Boolean(), nullable=False),
        sa.Column("target_wamid", sa.String(length=255), nullable=True),
        sa.Column("reaction_enc", sa.LargeBinary(), nullable=True),
        sa.Column("reaction_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("edited_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", connectx.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", connectx.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_messages_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_messages_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_messages_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "phone_number_id", "wamid", name=op.f("uq_messages_phone_number_id_wamid")
        ),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(
            "ix_messages_conversation_order", ["conversation_id", "sent_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_messages_target", ["phone_number_id", "target_wamid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messages_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("message_status_events")
    op.drop_table("conversations")
    op.drop_table("contact_preference_events")
    op.drop_table("webhook_events")
    op.drop_table("channels")
    op.drop_table("template_updates")
    op.drop_table("meta_apps")
    op.drop_table("contacts")
