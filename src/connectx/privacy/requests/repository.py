"""SQL of data-subject requests, their timeline, privacy settings and WhatsApp dialogs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import get_in_workspace, scoped
from connectx.models.channel import Channel
from connectx.models.conversation import Conversation
from connectx.models.data_request import (
    DataRequest,
    DataRequestEvent,
    PrivacySettings,
    RequestDialog,
)
from connectx.models.workspace import Membership, Workspace

OPEN = ("unverified", "pending", "in_progress")


async def add(db: AsyncSession, row: Any) -> None:
    db.add(row)
    await db.flush()


async def reference_taken(db: AsyncSession, reference: str) -> bool:
    stmt = select(DataRequest.id).where(DataRequest.reference == reference)
    return (await db.execute(stmt)).first() is not None


async def by_reference(db: AsyncSession, reference: str) -> DataRequest | None:
    stmt = select(DataRequest).where(DataRequest.reference == reference)
    return (await db.execute(stmt)).scalar_one_or_none()


async def in_workspace(db: AsyncSession, workspace_id: int, request_id: int) -> DataRequest:
    return await get_in_workspace(db, DataRequest, request_id, workspace_id, "request")


async def platform_request(db: AsyncSession, request_id: int) -> DataRequest | None:
    """A request to ConnectX itself (no workspace): account holders, inquiries to the DPO."""
    stmt = select(DataRequest).where(
        DataRequest.id == request_id, DataRequest.workspace_id.is_(None)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def any_request(db: AsyncSession, request_id: int) -> DataRequest | None:
    """Any request by id: only for the operator (CLI, operator pages) and background tasks."""
    return await db.get(DataRequest, request_id)


def _status_filter(stmt: Any, status: str | None) -> Any:
    if status == "open":
        return stmt.where(DataRequest.status.in_(OPEN))
    if status == "closed":
        return stmt.where(DataRequest.closed_at.is_not(None))
    if status:
        return stmt.where(DataRequest.status == status)
    return stmt


async def list_in_workspace(
    db: AsyncSession,
    workspace_id: int,
    *,
    status: str | None = None,
    subject: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[DataRequest]:
    stmt = _status_filter(scoped(DataRequest, workspace_id), status)
    if subject is not None:
        stmt = stmt.where(DataRequest.subject == subject)
    if before_id is not None:
        stmt = stmt.where(DataRequest.id < before_id)
    stmt = stmt.order_by(DataRequest.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())


async def list_platform(
    db: AsyncSession, *, status: str | None = None, subject: str | None = None, limit: int = 200
) -> list[DataRequest]:
    stmt = _status_filter(select(DataRequest).where(DataRequest.workspace_id.is_(None)), status)
    if subject is not None:
        stmt = stmt.where(DataRequest.subject == subject)
    stmt = stmt.order_by(DataRequest.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())


async def overdue(db: AsyncSession, now: datetime, limit: int = 500) -> list[DataRequest]:
    """Every open request past its due date, in every workspace (the DPO's list)."""
    stmt = (
        select(DataRequest)
        .where(DataRequest.status.in_(OPEN), DataRequest.due_at < now)
        .order_by(DataRequest.due_at, DataRequest.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).scalars())


async def all_open(db: AsyncSession, limit: int = 500) -> list[DataRequest]:
    stmt = (
        select(DataRequest)
        .where(DataRequest.status.in_(OPEN))
        .order_by(DataRequest.due_at, DataRequest.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).scalars())


async def due_for_reminder(
    db: AsyncSession, column: Any, before: datetime, limit: int = 200
) -> list[DataRequest]:
    """Verified open requests due before ``before`` whose reminder ``column`` was not sent."""
    stmt = (
        select(DataRequest)
        .where(
            DataRequest.status.in_(("pending", "in_progress")),
            DataRequest.due_at <= before,
            column.is_(None),
        )
        .order_by(DataRequest.due_at)
        .limit(limit)
    )
    return list((await db.execute(stmt)).scalars())


async def claim_reminder(db: AsyncSession, request_id: int, column: Any, at: datetime) -> bool:
    """Mark a reminder sent (compare-and-set): True for the one caller that marked it."""
    result = await db.execute(
        update(DataRequest)
        .where(DataRequest.id == request_id, column.is_(None))
        .values({column.key: at})
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def unverified_before(db: AsyncSession, before: datetime, limit: int = 200) -> list[int]:
    stmt = (
        select(DataRequest.id)
        .where(DataRequest.status == "unverified", DataRequest.received_at < before)
        .limit(limit)
    )
    return [int(v) for v in (await db.execute(stmt)).scalars()]


async def events_of(db: AsyncSession, request_id: int) -> list[DataRequestEvent]:
    stmt = (
        select(DataRequestEvent)
        .where(DataRequestEvent.request_id == request_id)
        .order_by(DataRequestEvent.id)
    )
    return list((await db.execute(stmt)).scalars())


# -- settings ------------------------------------------------------------------------------------


async def settings_of(db: AsyncSession, workspace_id: int) -> PrivacySettings | None:
    stmt = scoped(PrivacySettings, workspace_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def settings_by_handle(db: AsyncSession, handle: str) -> PrivacySettings | None:
    stmt = select(PrivacySettings).where(PrivacySettings.handle == handle)
    return (await db.execute(stmt)).scalar_one_or_none()


async def handle_taken(db: AsyncSession, handle: str, other_than: int | None = None) -> bool:
    stmt = select(PrivacySettings.workspace_id).where(PrivacySettings.handle == handle)
    found = (await db.execute(stmt)).scalar_one_or_none()
    return found is not None and found != other_than


async def workspace(db: AsyncSession, workspace_id: int) -> Workspace | None:
    return await db.get(Workspace, workspace_id)


async def workspace_of_number(db: AsyncSession, display_numbers: list[str]) -> int | None:
    """The workspace a live WhatsApp number belongs to (business data, stored in clear)."""
    stmt = select(Channel.workspace_id).where(
        Channel.display_phone_number.in_(display_numbers), Channel.disconnected_at.is_(None)
    )
    return (await db.execute(stmt.limit(1))).scalar_one_or_none()


async def live_channel(db: AsyncSession, workspace_id: int) -> Channel | None:
    stmt = (
        scoped(Channel, workspace_id)
        .where(Channel.disconnected_at.is_(None))
        .order_by(Channel.id)
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def latest_conversation(
    db: AsyncSession, workspace_id: int, contact_id: int
) -> Conversation | None:
    """The contact's most recent conversation on a live number."""
    stmt = (
        scoped(Conversation, workspace_id)
        .join(Channel, Channel.id == Conversation.channel_id)
        .where(Conversation.contact_id == contact_id, Channel.disconnected_at.is_(None))
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def managers_of(db: AsyncSession, workspace_id: int) -> list[int]:
    stmt = (
        select(Membership.user_id)
        .where(Membership.workspace_id == workspace_id, Membership.role.in_(("owner", "admin")))
        .order_by(Membership.user_id)
    )
    return [int(v) for v in (await db.execute(stmt)).scalars()]


async def operators(db: AsyncSession) -> list[int]:
    from connectx.models.account import User

    stmt = select(User.id).where(User.is_operator.is_(True)).order_by(User.id)
    return [int(v) for v in (await db.execute(stmt)).scalars()]


async def set_operator(db: AsyncSession, user_id: int, value: bool) -> None:
    from connectx.models.account import User

    await db.execute(update(User).where(User.id == user_id).values(is_operator=value))


async def is_operator(db: AsyncSession, user_id: int) -> bool:
    from connectx.models.account import User

    stmt = select(User.is_operator).where(User.id == user_id)
    return bool((await db.execute(stmt)).scalar_one_or_none())


# -- WhatsApp dialogs ----------------------------------------------------------------------------


async def dialog_of(db: AsyncSession, workspace_id: int, contact_id: int) -> RequestDialog | None:
    stmt = scoped(RequestDialog, workspace_id).where(RequestDialog.contact_id == contact_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def drop_dialog(db: AsyncSession, workspace_id: int, contact_id: int) -> None:
    await db.execute(
        delete(RequestDialog).where(
            RequestDialog.workspace_id == workspace_id, RequestDialog.contact_id == contact_id
        )
    )


async def count_open(db: AsyncSession, workspace_id: int | None) -> int:
    stmt = select(func.count()).select_from(DataRequest).where(DataRequest.status.in_(OPEN))
    stmt = (
        stmt.where(DataRequest.workspace_id == workspace_id)
        if workspace_id is not None
        else stmt.where(DataRequest.workspace_id.is_(None))
    )
    return int((await db.execute(stmt)).scalar_one())


async def unsent_to_contact(db: AsyncSession, workspace_id: int, contact_id: int) -> int:
    """Outbox messages to a contact not yet handed to Meta (pending or being sent)."""
    from connectx.models.outbox import OutboxMessage

    stmt = (
        scoped(OutboxMessage, workspace_id, func.count())
        .where(OutboxMessage.contact_id == contact_id)
        .where(OutboxMessage.status.in_(("pending", "sending")))
    )
    return int((await db.execute(stmt)).scalar_one())


async def claim_status(
    db: AsyncSession, request_id: int, allowed: tuple[str, ...], status: str, at: datetime
) -> bool:
    """Move a request to ``status`` only if it is still in one of ``allowed`` (a compare-and-set,
    so a withdrawal and an approval cannot both win)."""
    result = await db.execute(
        update(DataRequest)
        .where(DataRequest.id == request_id, DataRequest.status.in_(allowed))
        .values(status=status, updated_at=at)
    )
    return bool(getattr(result, "rowcount", 0))


async def notice_of_message(
    db: AsyncSession, message_id: int, actions: tuple[str, ...]
) -> tuple[DataRequest, DataRequestEvent] | None:
    """The request whose notice went out as WhatsApp message ``message_id`` and the timeline
    entry that says so; None when that message was no notice, or its failure is already on the
    timeline. Through the message's contact: the requests of ``contact:<id>`` (indexed), then
    their few events."""
    from connectx.models.message import Message

    row = (
        await db.execute(
            select(Message.workspace_id, Message.contact_id).where(Message.id == message_id)
        )
    ).first()
    if row is None:
        return None
    stmt = scoped(DataRequest, row.workspace_id).where(
        DataRequest.subject == f"contact:{row.contact_id}"
    )
    for req in (await db.execute(stmt)).scalars():
        found = await _unfailed_notice(db, req, message_id, actions)
        if found is None:
            continue
        # Two reports of the failure at once (the sender's and a status callback's, on
        # PostgreSQL) must not both add it: the request's row is locked and its timeline read
        # again, so the second waits for the first to commit and then sees its entry.
        await db.execute(select(DataRequest.id).where(DataRequest.id == req.id).with_for_update())
        found = await _unfailed_notice(db, req, message_id, actions)
        if found is not None:
            return req, found
    return None


async def _unfailed_notice(
    db: AsyncSession, req: DataRequest, message_id: int, actions: tuple[str, ...]
) -> DataRequestEvent | None:
    """The timeline entry of ``req`` that says its notice went out as ``message_id``, unless
    the notice's failure is on the timeline already."""
    named = [e for e in await events_of(db, req.id) if e.data.get("message") == message_id]
    sent = [e for e in named if e.action in actions]
    if sent and not any(e.action == "notice_failed" for e in named):
        return sent[-1]
    return None
