"""Sending over the API: replies in a conversation, direct sends, read receipts, number rates."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.outbound import service
from connectx.outbound.schemas import (
    ChannelSendingIn,
    ChannelSendingOut,
    DirectSendIn,
    ReadIn,
    SendIn,
    SentOut,
)
from connectx.workspaces.access import allow

router = APIRouter(tags=["outbound"], dependencies=[Depends(csrf_protect)])

writers = allow("write", "owner", "admin", "agent")
admins = allow("admin", "owner", "admin")


def to_out(sent: service.Sent) -> SentOut:
    m, o = sent.message, sent.outbox
    return SentOut(
        id=m.id,
        conversation_id=m.conversation_id,
        wamid=None if m.wamid.startswith("cx:") else m.wamid,
        type=m.type,
        status=m.status,
        outbox_status=o.status,
        attempts=o.attempts,
        error=(
            {"code": m.error_code, "title": m.error_title}
            if m.error_code is not None or m.error_title
            else None
        ),
    )


@router.post(
    "/api/v1/conversations/{conversation_id}/messages",
    response_model=SentOut,
    status_code=202,
    summary="Send a message in a conversation (queued; Idempotency-Key recommended)",
)
async def send_in_conversation(
    conversation_id: int,
    body: SendIn,
    response: Response,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    principal: Principal = Depends(writers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> SentOut:
    sent, repeated = await service.send_in_conversation(
        db, principal, conversation_id, body, idempotency_key
    )
    if repeated:
        response.headers["Idempotent-Replayed"] = "true"
    return to_out(sent)


@router.post(
    "/api/v1/messages",
    response_model=SentOut,
    status_code=202,
    summary="Send a message to a contact or phone number from one of the workspace's numbers",
)
async def send_direct(
    body: DirectSendIn,
    response: Response,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    principal: Principal = Depends(writers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> SentOut:
    sent, repeated = await service.send_direct(db, principal, body, idempotency_key)
    if repeated:
        response.headers["Idempotent-Replayed"] = "true"
    return to_out(sent)


@router.post(
    "/api/v1/messages/read", status_code=202, summary="Mark an inbound message read (+ typing)"
)
async def mark_read(
    body: ReadIn,
    principal: Principal = Depends(writers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> dict[str, object]:
    outbox = await service.mark_read(db, principal, body.message_id, body.typing)
    return {"queued": True, "id": outbox.id}


def _sending_out(state: object) -> ChannelSendingOut:
    return ChannelSendingOut(
        channel_id=state.channel_id,  # type: ignore[attr-defined]
        rate_per_s=state.rate_per_s,  # type: ignore[attr-defined]
        paused=state.paused_at is not None,  # type: ignore[attr-defined]
        pause_reason=state.pause_reason,  # type: ignore[attr-defined]
        pause_code=state.pause_code,  # type: ignore[attr-defined]
    )


@router.get("/api/v1/channels/{channel_id}/sending", response_model=ChannelSendingOut)
async def get_sending(
    channel_id: int,
    principal: Principal = Depends(admins),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ChannelSendingOut:
    return _sending_out(await service.sending_settings(db, principal, channel_id))


@router.put(
    "/api/v1/channels/{channel_id}/sending",
    response_model=ChannelSendingOut,
    summary="Set a number's sending rate (1 to 1,000/s) or resume paused sending",
)
async def put_sending(
    channel_id: int,
    body: ChannelSendingIn,
    principal: Principal = Depends(admins),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ChannelSendingOut:
    state = await service.sending_settings(db, principal, channel_id, body.rate_per_s, body.resume)
    return _sending_out(state)
