"""Connect, list and disconnect WhatsApp numbers.

A Meta app is shared: the first workspace to connect a number of an app registers it; any other
workspace may connect numbers of the same app by proving it holds the same app secret. The app
belongs to no single workspace (see docs/channels.md); its secrets are destroyed when its last
channel is disconnected.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.channels import app_secrets
from connectx.channels import repository as repo
from connectx.channels.app_secrets import SECRET_COLUMN, VERIFY_TOKEN_COLUMN, subject_of
from connectx.config import get_settings
from connectx.db.session import after_commit
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput
from connectx.kit.phones import to_e164
from connectx.models.channel import Channel, MetaApp
from connectx.privacy.vault import Vault

TOKEN_COLUMN = "channels.access_token"  # noqa: S105 (an AAD column name)
VERIFY_INDEX = "meta_verify_token"


def channel_subject(channel_id: int) -> str:
    return f"channel:{channel_id}"


def webhook_url() -> str:
    return f"{get_settings().effective_public_url}/webhooks/whatsapp"


@dataclass
class NewChannel:
    phone_number_id: str
    display_phone_number: str
    waba_id: str
    access_token: str
    app_id: str
    app_secret: str
    verify_token: str | None = None
    name: str | None = None


def display_number(raw: str) -> str:
    """E.164; Meta's test numbers (555 ranges), which our phone library rejects, are kept as
    ``+<digits>``."""
    try:
        return to_e164(raw if raw.strip().startswith("+") else "+" + raw.strip())
    except InvalidInput:
        digits = "".join(ch for ch in raw if ch.isdigit())
        if 8 <= len(digits) <= 15 and not set(raw) - set("+0123456789 -()."):
            return "+" + digits
        raise InvalidInput(
            "The display phone number is not valid: give the business number in international "
            "form, e.g. +15550783881.",
            field="display_phone_number",
        ) from None


async def _app_for(db: AsyncSession, workspace_id: int, data: NewChannel) -> MetaApp:
    vault = Vault(db)
    now = clock.now()
    app = await repo.app_by_meta_id(db, data.app_id)
    if app is None:
        if not data.verify_token:
            raise InvalidInput(
                "This Meta app is new here: give the webhook verify token you set in the app's "
                "WhatsApp → Configuration page.",
                field="verify_token",
            )
        app = MetaApp(
            app_id=data.app_id,
            registered_by_workspace_id=workspace_id,
            created_at=now,
            updated_at=now,
        )
        try:
            async with db.begin_nested():
                await repo.add(db, app)
        except IntegrityError:
            raise Conflict(
                "This Meta app was being connected at the same moment by someone else; try again."
            ) from None
    if app.secret_enc is None:  # new, or retired when its last channel went away
        if not data.verify_token:
            raise InvalidInput(
                "Give the webhook verify token you set in the app's WhatsApp → Configuration page.",
                field="verify_token",
            )
        subject = subject_of(app.id)
        app.secret_enc = await vault.encrypt(None, subject, SECRET_COLUMN, data.app_secret)
        app.verify_token_enc = await vault.encrypt(
            None, subject, VERIFY_TOKEN_COLUMN, data.verify_token
        )
        app.verify_token_index = await vault.blind_index(VERIFY_INDEX, data.verify_token)
        app.retired_at = None
        app.updated_at = now
        await db.flush()
        return app
    secret = await vault.decrypt_bytes(None, subject_of(app.id), SECRET_COLUMN, app.secret_enc)
    if not hmac.compare_digest(secret, data.app_secret.encode()):
        raise Conflict(
            "This Meta app is already connected here with a different app secret. Enter the "
            "app's current secret (Meta App Dashboard → App settings → Basic).",
            field="app_secret",
        )
    if data.verify_token is not None and app.verify_token_enc is not None:
        token = await vault.decrypt_bytes(
            None, subject_of(app.id), VERIFY_TOKEN_COLUMN, app.verify_token_enc
        )
        if not hmac.compare_digest(token, data.verify_token.encode()):
            raise Conflict(
                "This Meta app is already connected with a different verify token. Leave the "
                "verify token empty to keep the one set, or enter the same one.",
                field="verify_token",
            )
    return app


async def connect(db: AsyncSession, principal: Principal, data: NewChannel) -> Channel:
    """Connect a number to the caller's workspace (admins and admin-scoped API keys)."""
    assert principal.workspace_id is not None
    workspace_id = principal.workspace_id
    display = display_number(data.display_phone_number)
    existing = await repo.live_channel_for_number(db, data.phone_number_id)
    if existing is not None:
        if existing.workspace_id == workspace_id:
            raise Conflict(
                f"This number is already connected here (channel {existing.id}).",
                field="phone_number_id",
            )
        raise Conflict(
            "This phone number ID is connected to another workspace. It must be disconnected "
            "there before it can be connected here.",
            field="phone_number_id",
        )
    app = await _app_for(db, workspace_id, data)
    now = clock.now()
    channel = Channel(
        workspace_id=workspace_id,
        meta_app_id=app.id,
        name=data.name or None,
        phone_number_id=data.phone_number_id,
        display_phone_number=display,
        waba_id=data.waba_id,
        status="active",
        created_by=principal.actor,
        created_at=now,
        updated_at=now,
    )
    try:
        async with db.begin_nested():
            await repo.add(db, channel)
    except IntegrityError:
        raise Conflict(
            "This phone number ID was connected by someone else at the same moment.",
            field="phone_number_id",
        ) from None
    channel.access_token_enc = await Vault(db).encrypt(
        workspace_id, channel_subject(channel.id), TOKEN_COLUMN, data.access_token
    )
    await db.flush()
    await audit.record(
        db,
        actor=principal.actor,
        action="channel.connected",
        subject=channel_subject(channel.id),
        workspace_id=workspace_id,
        ip=principal.ip,
        data={"meta_app": app.id},
    )
    from connectx.templates_wa.service import enqueue_sync

    await enqueue_sync(db, channel.id)  # the number's templates, fetched in the background
    _invalidate_after_commit(db)
    return channel


async def list_channels(
    db: AsyncSession, workspace_id: int, include_disconnected: bool = False
) -> list[tuple[Channel, MetaApp]]:
    channels = await repo.list_in_workspace(db, workspace_id, include_disconnected)
    apps = {a.id: a for a in await repo.apps_by_ids(db, (c.meta_app_id for c in channels))}
    return [(c, apps[c.meta_app_id]) for c in channels]


async def get_channel(db: AsyncSession, workspace_id: int, channel_id: int) -> Channel:
    return await repo.get(db, workspace_id, channel_id)


async def app_of(db: AsyncSession, channel: Channel) -> MetaApp:
    app = await repo.app_by_id(db, channel.meta_app_id)
    assert app is not None
    return app


async def disconnect(db: AsyncSession, principal: Principal, channel_id: int) -> Channel:
    """Stop receiving for a number: its token is crypto-shredded; its conversations stay.
    Disconnecting the last number of an app destroys the app's secret and verify token."""
    assert principal.workspace_id is not None
    workspace_id = principal.workspace_id
    channel = await repo.get(db, workspace_id, channel_id)
    if channel.disconnected_at is not None:
        return channel
    now = clock.now()
    await repo.disconnect(db, channel.id, now)
    await db.refresh(channel)
    vault = Vault(db)
    retired = False
    if await repo.count_live_channels_of_app(db, channel.meta_app_id) == 0:
        await repo.retire_app(db, channel.meta_app_id, now)
        retired = True
    await audit.record(
        db,
        actor=principal.actor,
        action="channel.disconnected",
        subject=channel_subject(channel.id),
        workspace_id=workspace_id,
        ip=principal.ip,
        data={"meta_app": channel.meta_app_id, "app_retired": retired},
    )
    # Key destruction takes effect in the key store at once: do it last.
    await vault.destroy_subject(workspace_id, channel_subject(channel.id), actor=principal.actor)
    if retired:
        await vault.destroy_subject(None, subject_of(channel.meta_app_id), actor=principal.actor)
    _invalidate_after_commit(db)
    return channel


async def access_token(db: AsyncSession, channel: Channel) -> str | None:
    """The channel's Graph API token, for the sender and the media downloader."""
    return await open_access_token(db, channel.workspace_id, channel.id, channel.access_token_enc)


async def open_access_token(
    db: AsyncSession, workspace_id: int, channel_id: int, sealed: bytes | None
) -> str | None:
    """A channel's sealed Graph API token, opened (``None`` when missing or erased)."""
    return await Vault(db).decrypt_or_none(
        workspace_id, channel_subject(channel_id), TOKEN_COLUMN, sealed
    )


async def app_for_verify_token(db: AsyncSession, token: str) -> MetaApp | None:
    """An app whose webhook verify token is ``token`` (checked in constant time)."""
    vault = Vault(db)
    for app in await repo.apps_with_verify_token(db, await vault.blind_index(VERIFY_INDEX, token)):
        if app.verify_token_enc is None:
            continue
        stored = await vault.decrypt_bytes(
            None, subject_of(app.id), VERIFY_TOKEN_COLUMN, app.verify_token_enc
        )
        if hmac.compare_digest(stored, token.encode()):
            return app
    return None


def _invalidate_after_commit(db: AsyncSession) -> None:
    async def invalidate() -> None:
        app_secrets.invalidate()

    after_commit(db, invalidate)
