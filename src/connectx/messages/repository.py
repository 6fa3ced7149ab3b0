"""SQL for messages and status events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.conversations import paging
from connectx.kit.membership import one_of
from connectx.kit.tenancy import scoped
from connectx.kit.upsert import insert_ignore, insert_ignore_many
from connectx.models.message import Message, MessageStatusEvent


async def insert(db: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert a message unless (phone_number_id, wamid) exists; its id, or None (a repeat)."""
    stmt = insert_ignore(db, Message, values).returning(Message.id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def insert_many(db: AsyncSession, rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Insert messages, skipping any (phone_number_id, wamid) already stored; the ids of the
    rows inserted, by (phone_number_id, wamid)."""
    stmt = insert_ignore_many(db, Message).returning(
        Message.phone_number_id, Message.wamid, Message.id
    )
    result = await db.execute(stmt, rows)
    return {(pnid, wamid): ident for pnid, wamid, ident in result.all()}


async def existing_wamids(
    db: AsyncSession, phone_number_id: str, wamids: Iterable[str]
) -> set[str]:
    wanted = list(set(wamids))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        stmt = select(Message.wamid).where(
            Message.phone_number_id == phone_number_id,
            one_of(db, Message.wamid, wanted[i : i + 500]),
        )
        found.update((await db.execute(stmt)).scalars())
    return found


async def awaited_targets(
    db: AsyncSession, phone_number_id: str, wamids: Iterable[str]
) -> set[str]:
    """Which of ``wamids`` are named by stored reactions, edits or revokes."""
    wanted = list(set(wamids))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        stmt = select(Message.target_wamid).where(
            Message.phone_number_id == phone_number_id,
            one_of(db, Message.target_wamid, wanted[i : i + 500]),
        )
        found.update(w for w in (await db.execute(stmt)).scalars() if w)
    return found


async def by_wamid(db: AsyncSession, phone_number_id: str, wamid: str) -> Message | None:
    stmt = select(Message).where(Message.phone_number_id == phone_number_id, Message.wamid == wamid)
    return (await db.execute(stmt)).scalar_one_or_none()


async def by_id(db: AsyncSession, message_id: int) -> Message | None:
    return await db.get(Message, message_id)


async def targeting(db: AsyncSession, phone_number_id: str, wamid: str) -> list[Message]:
    """Reactions, edits and revokes that name ``wamid``, oldest first."""
    stmt = (
        select(Message)
        .where(Message.phone_number_id == phone_number_id, Message.target_wamid == wamid)
        .order_by(Message.sent_at, Message.id)
    )
    return list((await db.execute(stmt)).scalars())


async def wipe_edits_of(db: AsyncSession, phone_number_id: str, wamid: str) -> None:
    await db.execute(
        update(Message)
        .where(
            Message.phone_number_id == phone_number_id,
            Message.target_wamid == wamid,
            Message.type == "edit",
        )
        .values(body_enc=None, content_enc=None, raw_enc=None)
    )


async def advance_status(
    db: AsyncSession,
    phone_number_id: str,
    wamid: str,
    status: str,
    rank: int,
    at: datetime,
    error_code: int | None,
    error_title: str | None,
) -> None:
    """Move one message's status forward to ``status``; never back, never past failed."""
    await advance_statuses(
        db,
        [
            {
                "p_number": phone_number_id,
                "p_wamid": wamid,
                "p_rank": rank,
                "status": status,
                "status_rank": rank,
                "status_at": at,
                "error_code": error_code,
                "error_title": error_title,
            }
        ],
    )


_ADVANCE = (
    update(Message)
    .where(
        Message.phone_number_id == bindparam("p_number"),
        Message.wamid == bindparam("p_wamid"),
        Message.status_rank < bindparam("p_rank"),
    )
    .values(
        status=bindparam("status"),
        status_rank=bindparam("status_rank"),
        status_at=bindparam("status_at"),
        error_code=bindparam("error_code"),
        error_title=bindparam("error_title"),
    )
)


# PostgreSQL: a batch's moves in ONE statement, the rows travelling as arrays (an executemany
# is a statement execution per status on the server: ~0.2 ms each, most of a deep backlog's
# server time). The rows are locked in id order first, so two processors cannot deadlock on
# them; the UPDATE checks the rank again on the locked (latest) row.
_ADVANCE_BULK = text(
    """WITH v AS (
  SELECT * FROM unnest(CAST(:numbers AS VARCHAR[]), CAST(:wamids AS VARCHAR[]),
    CAST(:statuses AS VARCHAR[]), CAST(:ranks AS INTEGER[]), CAST(:ats AS TIMESTAMPTZ[]),
    CAST(:codes AS INTEGER[]), CAST(:titles AS VARCHAR[]))
    AS v(number, wamid, status, rank, at, code, title)
), t AS (
  SELECT m.id, v.status, v.rank, v.at, v.code, v.title
  FROM messages AS m JOIN v ON m.phone_number_id = v.number AND m.wamid = v.wamid
  WHERE m.status_rank < v.rank ORDER BY m.id FOR UPDATE OF m
)
UPDATE messages SET status = t.status, status_rank = t.rank, status_at = t.at,
  error_code = t.code, error_title = t.title
FROM t WHERE messages.id = t.id AND messages.status_rank < t.rank"""
)


async def advance_statuses(db: AsyncSession, params: list[dict[str, Any]]) -> None:
    """Forward-only status moves for many messages at once: one statement on PostgreSQL, one
    executemany on SQLite (one writer; rows touched in wamid order). At most one move per
    (number, wamid) in ``params``."""
    if not params:
        return
    conn = await db.connection()
    ordered = sorted(params, key=lambda p: (p["p_number"], p["p_wamid"]))
    if conn.dialect.name != "postgresql":
        await conn.execute(_ADVANCE, ordered)
        return
    await conn.execute(
        _ADVANCE_BULK,
        {
            "numbers": [p["p_number"] for p in ordered],
            "wamids": [p["p_wamid"] for p in ordered],
            "statuses": [p["status"] for p in ordered],
            "ranks": [p["p_rank"] for p in ordered],
            "ats": [p["status_at"] for p in ordered],
            "codes": [p["error_code"] for p in ordered],
            "titles": [p["error_title"] for p in ordered],
        },
    )


async def status_refs(
    db: AsyncSession, workspace_id: int, phone_number_id: str, wamids: list[str]
) -> list[tuple[int, int, str]]:
    """(id, conversation id, status) of the number's messages with these wamids."""
    wanted = sorted(set(wamids))
    found: list[tuple[int, int, str]] = []
    for i in range(0, len(wanted), 500):
        stmt = scoped(
            Message, workspace_id, Message.id, Message.conversation_id, Message.status
        ).where(
            Message.phone_number_id == phone_number_id,
            one_of(db, Message.wamid, wanted[i : i + 500]),
        )
        found += [(r[0], r[1], r[2]) for r in (await db.execute(stmt)).all()]
    return found


async def ids_by_wamid(
    db: AsyncSession, workspace_id: int, phone_number_id: str, wamids: list[str]
) -> list[tuple[int, str]]:
    """(id, wamid) of the number's messages with these (few) wamids."""
    stmt = scoped(Message, workspace_id, Message.id, Message.wamid).where(
        Message.phone_number_id == phone_number_id, one_of(db, Message.wamid, sorted(wamids))
    )
    return [(r[0], r[1]) for r in (await db.execute(stmt)).all()]


async def add_status_events(db: AsyncSession, values: list[dict[str, Any]]) -> None:
    """Record status callbacks, each (wamid, status) once; repeats are skipped."""
    if values:
        await db.execute(insert_ignore_many(db, MessageStatusEvent), values)


async def status_events_of(db: AsyncSession, wamid: str) -> list[MessageStatusEvent]:
    stmt = select(MessageStatusEvent).where(MessageStatusEvent.wamid == wamid)
    return list((await db.execute(stmt.order_by(MessageStatusEvent.id))).scalars())


async def of_contact(db: AsyncSession, contact_id: int) -> list[Message]:
    stmt = select(Message).where(Message.contact_id == contact_id).order_by(Message.id)
    return list((await db.execute(stmt)).scalars())


async def move_to_conversation(db: AsyncSession, src: int, dst: int) -> None:
    await db.execute(
        update(Message)
        .where(Message.conversation_id == src)
        .values(conversation_id=dst)
        .execution_options(synchronize_session="fetch")
    )


async def page(
    db: AsyncSession,
    workspace_id: int,
    conversation_id: int,
    before: tuple[datetime, int] | None,
    limit: int,
) -> list[Message]:
    """Newest first; ``before`` is the (sent_at, id) of the previous page's last row."""
    if before is None:  # the page every thread opens with: its statement is built once
        params = {"ws": workspace_id, "conversation": conversation_id, "limit": limit}
        return list((await db.execute(_NEWEST_PAGE, params)).scalars())
    stmt = select(Message).where(
        Message.workspace_id == workspace_id, Message.conversation_id == conversation_id
    )
    stmt = stmt.where(paging.before(Message.sent_at, Message.id, before))
    stmt = stmt.order_by(Message.sent_at.desc(), Message.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())


# Built once (with its cache key): building a select of every message column costs more
# than running it.
_NEWEST_PAGE = (
    select(Message)
    .where(
        Message.workspace_id == bindparam("ws"),
        Message.conversation_id == bindparam("conversation"),
    )
    .order_by(Message.sent_at.desc(), Message.id.desc())
    .limit(bindparam("limit", type_=Integer))
)
