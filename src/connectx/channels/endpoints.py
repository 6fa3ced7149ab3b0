"""``/api/v1/channels``: connect, list and disconnect WhatsApp numbers (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, require_role
from connectx.channels import service
from connectx.channels.schemas import AppOut, ChannelCreate, ChannelList, ChannelOut
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.models.channel import Channel, MetaApp

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])

admin = require_role("owner", "admin")


def to_out(channel: Channel, app: MetaApp) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        phone_number_id=channel.phone_number_id,
        display_phone_number=channel.display_phone_number,
        waba_id=channel.waba_id,
        status=channel.status,
        app=AppOut(id=app.id, app_id=app.app_id),
        webhook_url=service.webhook_url(),
        created_at=channel.created_at,
        disconnected_at=channel.disconnected_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=ChannelOut,
    dependencies=[Depends(csrf_protect)],
    summary="Connect a WhatsApp number",
)
async def connect_channel(
    body: ChannelCreate,
    principal: Principal = Depends(admin),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ChannelOut:
    channel = await service.connect(db, principal, service.NewChannel(**body.model_dump()))
    return to_out(channel, await service.app_of(db, channel))


@router.get("", response_model=ChannelList, summary="List the workspace's numbers")
async def list_channels(
    include_disconnected: bool = False,
    principal: Principal = Depends(admin),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ChannelList:
    assert principal.workspace_id is not None
    rows = await service.list_channels(db, principal.workspace_id, include_disconnected)
    return ChannelList(items=[to_out(c, a) for c, a in rows])


@router.get("/{channel_id}", response_model=ChannelOut, summary="One number")
async def get_channel(
    channel_id: int,
    principal: Principal = Depends(admin),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ChannelOut:
    assert principal.workspace_id is not None
    channel = await service.get_channel(db, principal.workspace_id, channel_id)
    return to_out(channel, await service.app_of(db, channel))


@router.delete(
    "/{channel_id}",
    status_code=204,
    dependencies=[Depends(csrf_protect)],
    summary="Disconnect a number (its token is destroyed; conversations stay)",
)
async def disconnect_channel(
    channel_id: int,
    principal: Principal = Depends(admin),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> Response:
    await service.disconnect(db, principal, channel_id)
    return Response(status_code=204)
