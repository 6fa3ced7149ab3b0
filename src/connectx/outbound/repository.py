"""All SQL of the outbox, the per-number sending state and the templates."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    bindparam,
    exists,
    func,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.db.base import UTCDateTime
from connectx.kit.upsert import insert_ignore
from connectx.models.channel import Channel
from connectx.models.message import Message, MessageStatusEvent
from connectx.models.outbox import ChannelSending, OutboxMessage
from connectx.models.template import WaTemplate
from connectx.models.webhook_event import WebhookEvent, pending_only


async def add(db: AsyncSession, row: Any) -> None:
    db.add(row)
    await db.flush()


async def by_idempotency_key(db: AsyncSession, workspace_id: int, key: str) -> OutboxMessage | None:
    q = select(OutboxMessage).where(
        OutboxMessage.workspace_id == workspace_id, OutboxMessage.idempotency_key == key
    )
    return (await db.execute(q)).scalar_one_or_none()


async def of_message(db: AsyncSession, message_id: int) -> OutboxMessage | None:
    q = select(OutboxMessage).where(OutboxMessage.message_id == message_id)
    return (await db.execute(q)).scalar_one_or_none()


async def message(db: AsyncSession, workspace_id: int, message_id: int) -> Message | None:
    q = select(Message).where(Message.workspace_id == workspace_id, Message.id == message_id)
    return (await db.execute(q)).scalar_one_or_none()


async def sending_state(db: AsyncSession, channel_id: int) -> ChannelSending | None:
    return await db.get(ChannelSending, channel_id)


# Built once (as are the claim and the sent update below): the sender runs these several
# times a second per number, and building a statement costs more Python than executing it.
_SENDER_VIEW = (
    select(
        Channel.workspace_id,
        Channel.phone_number_id,
        Channel.disconnected_at,
        Channel.access_token_enc,
        ChannelSending.rate_per_s,
        ChannelSending.paused_at,
    )
    .outerjoin(ChannelSending, ChannelSending.channel_id == Channel.id)
    .where(Channel.id == bindparam("channel_id"))
)


async def sender_view(db: AsyncSession, channel_id: int) -> Any | None:
    """What a claim needs of a number, in one statement: its sending state (``rate_per_s`` and
    ``paused_at`` are None without one) and its channel's ``workspace_id``, ``phone_number_id``,
    ``disconnected_at`` and sealed ``access_token_enc``. None for an unknown number."""
    connection = await db.connection()  # a Core statement: no ORM execution around it
    return (await connection.execute(_SENDER_VIEW, {"channel_id": channel_id})).one_or_none()


async def ensure_sending_state(
    db: AsyncSession, channel_id: int, workspace_id: int, rate_per_s: int, at: datetime
) -> ChannelSending:
    """The number's sending state, created with the default rate when missing. Safe when the
    pacer and an admin create it at the same moment (the loser's insert is skipped)."""
    await db.execute(
        insert_ignore(
            db,
            ChannelSending,
            {
                "channel_id": channel_id,
                "workspace_id": workspace_id,
                "rate_per_s": rate_per_s,
                "updated_at": at,
            },
        )
    )
    state = await db.get(ChannelSending, channel_id, populate_existing=True)
    assert state is not None
    return state


async def sending_states(db: AsyncSession, channel_ids: list[int]) -> dict[int, ChannelSending]:
    if not channel_ids:
        return {}
    q = select(ChannelSending).where(ChannelSending.channel_id.in_(channel_ids))
    return {s.channel_id: s for s in (await db.execute(q)).scalars()}


def _due(now: Any, stale: Any) -> Any:
    """Pending and due, or claimed by a sender whose lease ended before ``stale`` (in doubt
    for the whole settle time without a status callback proving Meta has the message)."""
    return ((OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now)) | (
        (OutboxMessage.status == "sending") & (OutboxMessage.lease_until < stale)
    )


async def due_channels(
    db: AsyncSession, now: datetime, stale: datetime, skip: Collection[int] = ()
) -> list[int]:
    """Numbers with rows ready to send, other than ``skip`` (those that already have a sender):
    one probe of the due index per number (not a scan of every due row: a backlog of 100,000
    rows costs what one row costs)."""
    o = OutboxMessage
    pending = exists().where(
        o.status == "pending", o.channel_id == Channel.id, o.next_attempt_at <= now
    )
    in_doubt = exists().where(
        o.status == "sending", o.channel_id == Channel.id, o.lease_until < stale
    )
    q = select(Channel.id).where(pending | in_doubt)
    if skip:
        q = q.where(Channel.id.not_in(list(skip)))
    return [int(c) for c in (await db.execute(q.order_by(Channel.id))).scalars()]


def webhooks_processed_until_statement() -> Any:
    """The oldest pending event's arrival (walks ``ix_webhook_events_pending``)."""
    return (
        select(WebhookEvent.received_at)
        .where(pending_only(), WebhookEvent.held_for.is_(None))
        .order_by(WebhookEvent.id)
        .limit(1)
    )


async def webhooks_processed_until(db: AsyncSession, now: datetime) -> datetime:
    """Every webhook received before this moment has been processed (its status callbacks are
    recorded): the oldest pending event's arrival, or ``now``. Events held for a suspended
    workspace do not count (its sends are stopped too)."""
    oldest = (await db.execute(webhooks_processed_until_statement())).scalar_one_or_none()
    return min(now, oldest) if oldest is not None else now


async def confirmed_in_doubt(db: AsyncSession, now: datetime, limit: int) -> list[Any]:
    """Rows whose sender's lease ended without an outcome, but for which Meta's status callback
    (carrying the row's ``biz_opaque_callback_data``) was recorded: Meta has the message.
    Rows of (id, claim_token, wamid — the one Meta gave it —, message_id, workspace_id)."""
    q = (
        select(
            OutboxMessage.id,
            OutboxMessage.claim_token,
            func.min(MessageStatusEvent.wamid).label("wamid"),
            OutboxMessage.message_id,
            OutboxMessage.workspace_id,
        )
        .join(MessageStatusEvent, MessageStatusEvent.callback_data == OutboxMessage.callback_data)
        .where(OutboxMessage.status == "sending", OutboxMessage.lease_until < now)
        .group_by(
            OutboxMessage.id,
            OutboxMessage.claim_token,
            OutboxMessage.message_id,
            OutboxMessage.workspace_id,
        )
        .limit(limit)
    )
    return list((await db.execute(q)).all())


_T = cast(Table, OutboxMessage.__table__)
# What the sender needs of a claimed row (read back by the claiming statement itself).
CLAIMED = (
    _T.c.id,
    _T.c.workspace_id,
    _T.c.channel_id,
    _T.c.contact_id,
    _T.c.message_id,
    _T.c.kind,
    _T.c.recipient_key,
    _T.c.payload_enc,
    _T.c.attempts,
)


def _claim_statement(dialect: str) -> Any:
    """The claim of :func:`claim` as one statement with parameters (``p_channel``, ``now``,
    ``stale``, ``p_lease_until``, ``token``, ``limit``), built once per dialect.

    Two walks of the queue's partial indexes (rows in doubt, then due rows, each in id order),
    the oldest ``limit`` of both taken: one ordered walk per kind of row instead of an OR that
    no single index serves (PostgreSQL then walked the primary key past every sent row). Rows
    not yet due (backoff, pair rate) are passed over on the way."""
    o = OutboxMessage
    now = bindparam("now", type_=UTCDateTime)
    stale = bindparam("stale", type_=UTCDateTime)
    limit = bindparam("limit", type_=Integer)
    doubt = select(o.id).where(o.channel_id == bindparam("p_channel"), o.status == "sending")
    doubt = doubt.where(o.lease_until < stale)
    pending = select(o.id).where(o.channel_id == bindparam("p_channel"), o.status == "pending")
    pending = pending.where(o.next_attempt_at <= now)
    parts = []
    for part in (doubt, pending):
        part = part.order_by(o.id).limit(limit)
        if dialect == "postgresql":
            part = part.with_for_update(skip_locked=True)
        parts.append(select(part.subquery().c.id))
    both = union_all(*parts).subquery()
    pick = select(both.c.id).order_by(both.c.id).limit(limit)
    return (
        update(_T)
        .where(_T.c.id.in_(pick.scalar_subquery()), _due(now, stale))
        .values(
            status="sending",
            claim_token=bindparam("token", type_=String),
            lease_until=bindparam("p_lease_until", type_=UTCDateTime),
            attempts=_T.c.attempts + 1,
            updated_at=now,
        )
        .returning(*CLAIMED)
    )


_CLAIM = {dialect: _claim_statement(dialect) for dialect in ("sqlite", "postgresql")}


async def claim(
    db: AsyncSession,
    channel_id: int,
    now: datetime,
    stale: datetime,
    lease_until: datetime,
    token: str,
    limit: int,
) -> list[Any]:
    """Take up to ``limit`` due rows of one number in one statement (``FOR UPDATE SKIP LOCKED``
    on PostgreSQL; SQLite's write lock serialises claimers): they become ``sending`` under
    ``token``. Rows of :data:`CLAIMED` (attempts already counting this one; their lease ends
    at ``lease_until``), oldest first."""
    params = {
        "p_channel": channel_id,
        "now": now,
        "stale": stale,
        "p_lease_until": lease_until,
        "token": token,
        "limit": limit,
    }
    statement = _CLAIM[db.get_bind().dialect.name]
    rows = list((await (await db.connection()).execute(statement, params)).all())
    rows.sort(key=lambda r: r.id)
    return rows


_FENCE = (
    (_T.c.id == bindparam("p_id"))
    & (_T.c.claim_token == bindparam("p_token"))
    & (_T.c.status == "sending")
)
_AGAIN = (  # back to pending (retry, deferred, paused): the content stays
    update(_T)
    .where(_FENCE)
    .values(
        status="pending",
        attempts=bindparam("attempts"),
        next_attempt_at=bindparam("next_attempt_at"),
        lease_until=None,
        claim_token=None,
        error_code=bindparam("error_code"),
        error_title=bindparam("error_title"),
        updated_at=bindparam("updated_at"),
    )
)
_FAILED = (
    update(_T)
    .where(_FENCE)
    .values(
        status="failed",
        lease_until=None,
        claim_token=None,
        error_code=bindparam("error_code"),
        error_title=bindparam("error_title"),
        payload_enc=None,
        updated_at=bindparam("updated_at"),
    )
)
FINISH = {"pending": _AGAIN, "failed": _FAILED}


_RECONCILED = (
    update(OutboxMessage)
    .where(
        OutboxMessage.id == bindparam("p_id"),
        OutboxMessage.claim_token == bindparam("p_token"),
        OutboxMessage.status == "sending",
    )
    .values(
        status="sent",
        wamid=bindparam("wamid"),
        sent_at=bindparam("at"),
        lease_until=None,
        claim_token=None,
        payload_enc=None,
        error_code=None,
        error_title=None,
        updated_at=bindparam("at"),
    )
)


async def reconciled(db: AsyncSession, params: list[dict[str, Any]]) -> int:
    """Mark rows in doubt as sent with the wamid their status callback named (fenced on the
    claim, like :func:`finish`)."""
    if not params:
        return 0
    done = await (await db.connection()).execute(_RECONCILED, params)
    return int(done.rowcount or 0)


# Sent rows and their messages, a whole recorded batch in ONE statement: the rows travel as one
# parameter (a JSON array on SQLite, arrays on PostgreSQL), so the cost per row is the
# database's own, not a driver round of parameter processing (or, on PostgreSQL, a statement
# execution) per row. Fenced on the claim token as in :func:`finish`.
# (SQLite: the unary ``+`` keeps the status index out of the plan, so the batch drives the
# join and each row is found by its primary key, never a scan of the sending rows per row.)
_SENT_BULK = {
    "sqlite": """UPDATE outbox_messages SET status = 'sent', lease_until = NULL,
  claim_token = NULL, wamid = v.wamid, error_code = NULL, error_title = NULL, sent_at = :at,
  payload_enc = NULL, updated_at = :at
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token,
             json_extract(value, '$[2]') AS wamid FROM json_each(:rows)) AS v
WHERE outbox_messages.id = v.id AND outbox_messages.claim_token = v.token
  AND +outbox_messages.status = 'sending'""",
    "postgresql": """UPDATE outbox_messages SET status = 'sent', lease_until = NULL,
  claim_token = NULL, wamid = v.wamid, error_code = NULL, error_title = NULL, sent_at = :at,
  payload_enc = NULL, updated_at = :at
FROM unnest(CAST(:ids AS BIGINT[]), CAST(:tokens AS VARCHAR[]), CAST(:wamids AS VARCHAR[]))
  AS v(id, token, wamid)
WHERE outbox_messages.id = v.id AND outbox_messages.claim_token = v.token
  AND outbox_messages.status = 'sending'""",
}
_ACCEPTED_BULK = {
    "sqlite": """UPDATE messages SET wamid = v.wamid, status = 'accepted', status_at = :at
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS wamid
      FROM json_each(:rows)) AS v
WHERE messages.id = v.id""",
    "postgresql": """UPDATE messages SET wamid = v.wamid, status = 'accepted', status_at = :at
FROM unnest(CAST(:ids AS BIGINT[]), CAST(:wamids AS VARCHAR[])) AS v(id, wamid)
WHERE messages.id = v.id""",
}


def _prepared(sql: dict[str, str]) -> dict[str, Any]:
    at = bindparam("at", type_=UTCDateTime)
    return {dialect: text(statement).bindparams(at) for dialect, statement in sql.items()}


_SENT_STATEMENT = _prepared(_SENT_BULK)
_ACCEPTED_STATEMENT = _prepared(_ACCEPTED_BULK)


def _bulk(db: AsyncSession, prepared: dict[str, Any]) -> tuple[str, Any]:
    dialect = db.get_bind().dialect.name
    return dialect, prepared[dialect]


async def finish_sent(
    db: AsyncSession, at: datetime, rows: list[tuple[int, str, str | None]]
) -> int:
    """Record rows Meta accepted: ``(id, claim token, wamid)`` each, sent at ``at``; their
    content is cleared (Meta has it). How many rows were still this claim's."""
    if not rows:
        return 0
    dialect, statement = _bulk(db, _SENT_STATEMENT)
    if dialect == "sqlite":
        params: dict[str, Any] = {"rows": json.dumps(rows), "at": at}
    else:
        ids, tokens, wamids = (list(column) for column in zip(*rows, strict=True))
        params = {"ids": ids, "tokens": tokens, "wamids": wamids, "at": at}
    done = await (await db.connection()).execute(statement, params)
    return int(done.rowcount or 0)


async def finish(db: AsyncSession, status: str, params: list[dict[str, Any]]) -> int:
    """Record outcomes that end in ``status`` (pending | failed; sent: :func:`finish_sent`),
    fenced on the claim token (a row taken over by another worker after its lease ran out is
    left to that worker). Parameters: ``p_id``, ``p_token``, ``updated_at``, ``error_code``,
    ``error_title`` (and ``attempts``, ``next_attempt_at`` for pending)."""
    if not params:
        return 0
    done = await (await db.connection()).execute(FINISH[status], params)
    return int(done.rowcount or 0)


async def messages_accepted(db: AsyncSession, at: datetime, rows: list[tuple[int, str]]) -> None:
    """Meta accepted these messages: ``(message id, wamid)`` each, at ``at`` (one statement)."""
    if not rows:
        return
    dialect, statement = _bulk(db, _ACCEPTED_STATEMENT)
    if dialect == "sqlite":
        params: dict[str, Any] = {"rows": json.dumps(rows), "at": at}
    else:
        ids, wamids = (list(column) for column in zip(*rows, strict=True))
        params = {"ids": ids, "wamids": wamids, "at": at}
    await (await db.connection()).execute(statement, params)


async def wamids_with_statuses(db: AsyncSession, wamids: list[str]) -> set[str]:
    """Which of these wamids already have status callbacks recorded (usually none)."""
    found: set[str] = set()
    for start in range(0, len(wamids), 500):
        chunk = wamids[start : start + 500]
        q = select(MessageStatusEvent.wamid).where(MessageStatusEvent.wamid.in_(chunk)).distinct()
        found.update((await db.execute(q)).scalars())
    return found


async def messages_by_ids(db: AsyncSession, ids: list[int]) -> list[Message]:
    if not ids:
        return []
    return list((await db.execute(select(Message).where(Message.id.in_(ids)))).scalars())


async def count_by_status(db: AsyncSession, channel_id: int | None = None) -> dict[str, int]:
    q = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if channel_id is not None:
        q = q.where(OutboxMessage.channel_id == channel_id)
    return {s: int(n) for s, n in (await db.execute(q)).all()}


# -- templates -------------------------------------------------------------------------------
async def template(
    db: AsyncSession, workspace_id: int, waba_id: str, name: str, language: str
) -> WaTemplate | None:
    q = select(WaTemplate).where(
        WaTemplate.workspace_id == workspace_id,
        WaTemplate.waba_id == waba_id,
        WaTemplate.name == name,
        WaTemplate.language == language,
    )
    return (await db.execute(q)).scalar_one_or_none()


async def templates(
    db: AsyncSession, workspace_id: int, waba_id: str | None = None, status: str | None = None
) -> list[WaTemplate]:
    q = select(WaTemplate).where(WaTemplate.workspace_id == workspace_id)
    if waba_id is not None:
        q = q.where(WaTemplate.waba_id == waba_id)
    if status is not None:
        q = q.where(WaTemplate.status == status)
    return list((await db.execute(q.order_by(WaTemplate.name, WaTemplate.language))).scalars())


async def templates_matching(
    db: AsyncSession,
    workspace_id: int,
    waba_id: str,
    meta_id: str | None,
    name: str | None,
    language: str | None,
) -> list[WaTemplate]:
    """The stored template a webhook names: by Meta's id, else by name (and language)."""
    q = select(WaTemplate).where(
        WaTemplate.workspace_id == workspace_id, WaTemplate.waba_id == waba_id
    )
    if meta_id:
        found = list((await db.execute(q.where(WaTemplate.meta_id == meta_id))).scalars())
        if found:
            return found
    if not name:
        return []
    q = q.where(WaTemplate.name == name)
    if language:
        q = q.where(WaTemplate.language == language)
    return list((await db.execute(q)).scalars())


async def channel_of_waba(db: AsyncSession, workspace_id: int, waba_id: str) -> Channel | None:
    """A connected number of the workspace on this WABA (for a template sync)."""
    q = (
        select(Channel)
        .where(
            Channel.workspace_id == workspace_id,
            Channel.waba_id == waba_id,
            Channel.disconnected_at.is_(None),
        )
        .order_by(Channel.id)
        .limit(1)
    )
    return (await db.execute(q)).scalar_one_or_none()


async def connected_channels(db: AsyncSession) -> list[Channel]:
    """One connected number per (workspace, WABA): what a scheduled template sync walks."""
    q = select(Channel).where(Channel.disconnected_at.is_(None)).order_by(Channel.id)
    seen: set[tuple[int, str]] = set()
    out = []
    for channel in (await db.execute(q)).scalars():
        if (channel.workspace_id, channel.waba_id) not in seen:
            seen.add((channel.workspace_id, channel.waba_id))
            out.append(channel)
    return out
