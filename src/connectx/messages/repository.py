"""SQL for messages and status events."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, select, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.conversations import paging
from connectx.db.base import sqlite_text
from connectx.kit import arrays
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


async def _with_wamids(
    db: AsyncSession, workspace_id: int, phone_number_id: str, wamids: list[str], *columns: Any
) -> list[Any]:
    """The number's messages with these wamids, whole or as rows of ``columns`` (500 wamids a
    statement)."""
    wanted = sorted(set(wamids))
    found: list[Any] = []
    for i in range(0, len(wanted), 500):
        stmt = scoped(Message, workspace_id, *columns).where(
            Message.phone_number_id == phone_number_id,
            one_of(db, Message.wamid, wanted[i : i + 500]),
        )
        result = await db.execute(stmt)
        found += result.all() if columns else result.scalars()
    return found


async def with_wamids(
    db: AsyncSession, workspace_id: int, phone_number_id: str, wamids: list[str]
) -> list[Message]:
    """The number's messages with these wamids (those that have one stored by now)."""
    return await _with_wamids(db, workspace_id, phone_number_id, wamids)


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


StatusRef = tuple[int, int, str, str]  # message id, conversation id, status, wamid


async def advance_status(
    db: AsyncSession,
    message: Message,
    status: str,
    rank: int,
    at: datetime,
    error_code: int | None,
    error_title: str | None,
) -> None:
    """Move one message's status forward to ``status``; never back, never past failed."""
    move = {"wamid": message.wamid, "status": status, "rank": rank, "at": at}
    await advance_statuses(
        db,
        message.workspace_id,
        message.phone_number_id,
        [{**move, "error_code": error_code, "error_title": error_title}],
        answer=False,
    )


# SQLite: one executemany, rows in wamid order; the rank is checked against the row's own.
_ADVANCE_SQLITE = (
    "UPDATE messages SET status = ?, status_rank = ?, status_at = ?, error_code = ?, "
    "error_title = ? WHERE workspace_id = ? AND phone_number_id = ? AND wamid = ? "
    "AND status_rank < ?"
)


# PostgreSQL: a batch's moves in ONE statement, the rows travelling as arrays (an executemany
# is a statement execution per status on the server: ~0.2 ms each, most of a deep backlog's
# server time). The rows to move are locked in id order first, so two processors cannot
# deadlock on them; the UPDATE checks the rank again on the locked (latest) row. It answers
# with every message it found (moved or not) and its status after the move, read in the same
# snapshot as the move: a wamid it does not answer with had no message for the move either.
_ADVANCE_BULK = text(
    """WITH v AS (
  SELECT * FROM unnest(CAST(:wamids AS VARCHAR[]), CAST(:statuses AS VARCHAR[]),
    CAST(:ranks AS INTEGER[]), CAST(:ats AS TIMESTAMPTZ[]), CAST(:codes AS INTEGER[]),
    CAST(:titles AS VARCHAR[]))
    AS v(wamid, status, rank, at, code, title)
), seen AS (
  SELECT m.id, m.conversation_id, m.status, m.wamid, m.status_rank < v.rank AS moves,
    v.status AS new_status, v.rank, v.at, v.code, v.title
  FROM messages AS m JOIN v ON m.wamid = v.wamid
  WHERE m.workspace_id = :workspace AND m.phone_number_id = :number
), t AS (
  SELECT m.id, seen.new_status, seen.rank, seen.at, seen.code, seen.title
  FROM messages AS m JOIN seen ON m.id = seen.id
  WHERE seen.moves ORDER BY m.id FOR UPDATE OF m
), u AS (
  UPDATE messages SET status = t.new_status, status_rank = t.rank, status_at = t.at,
    error_code = t.code, error_title = t.title
  FROM t WHERE messages.id = t.id AND messages.status_rank < t.rank
  RETURNING messages.id, messages.status
)
SELECT seen.id, seen.conversation_id, COALESCE(u.status, seen.status), seen.wamid
FROM seen LEFT JOIN u ON u.id = seen.id"""
)


async def advance_statuses(
    db: AsyncSession,
    workspace_id: int,
    phone_number_id: str,
    moves: list[dict[str, Any]],
    *,
    answer: bool = True,
) -> list[StatusRef]:
    """Forward-only status moves for many of the number's messages at once (each ``moves``
    item: wamid, status, rank, at, error_code, error_title; at most one per wamid): one
    statement on PostgreSQL, one executemany on SQLite (one writer; rows touched in wamid
    order). Returns the messages found for these wamids, with their status after the moves
    (on SQLite a query more, skipped when ``answer`` is false)."""
    if not moves:
        return []
    conn = await db.connection()
    ordered = sorted(moves, key=lambda m: m["wamid"])
    if conn.dialect.name != "postgresql":
        # the driver's executemany (SQLAlchemy's per-row parameter processing cost more)
        await conn.exec_driver_sql(
            _ADVANCE_SQLITE,
            [
                (
                    m["status"],
                    m["rank"],
                    sqlite_text(m["at"]),
                    m["error_code"],
                    m["error_title"],
                    workspace_id,
                    phone_number_id,
                    m["wamid"],
                    m["rank"],
                )
                for m in ordered
            ],
        )
        if not answer:
            return []
        return await status_refs(db, workspace_id, phone_number_id, [m["wamid"] for m in ordered])
    found = await conn.execute(
        _ADVANCE_BULK,
        {
            "workspace": workspace_id,
            "number": phone_number_id,
            **arrays.columns(
                ordered,
                {
                    "wamids": "wamid",
                    "statuses": "status",
                    "ranks": "rank",
                    "ats": "at",
                    "codes": "error_code",
                    "titles": "error_title",
                },
            ),
        },
    )
    return [(r[0], r[1], r[2], r[3]) for r in found.all()]


async def status_refs(
    db: AsyncSession, workspace_id: int, phone_number_id: str, wamids: list[str]
) -> list[StatusRef]:
    """(id, conversation id, status, wamid) of the number's messages with these wamids."""
    columns = (Message.id, Message.conversation_id, Message.status, Message.wamid)
    rows = await _with_wamids(db, workspace_id, phone_number_id, wamids, *columns)
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def add_status_events(db: AsyncSession, values: list[dict[str, Any]]) -> None:
    """Record status callbacks, each (wamid, status) once; repeats are skipped."""
    if not values:
        return
    conn = await db.connection()
    as_json = _json_bind(conn.dialect)
    if conn.dialect.name == "postgresql":  # one statement, the rows as arrays (as moves are)
        bound = arrays.columns(
            values,
            {
                "workspaces": "workspace_id",
                "channels": "channel_id",
                "wamids": "wamid",
                "statuses": "status",
                "ats": "occurred_at",
                "codes": "error_code",
                "titles": "error_title",
                "pricing": "pricing",
                "conversations": "meta_conversation",
                "callbacks": "callback_data",
                "created": "created_at",
            },
        )
        for name in ("pricing", "conversations"):
            bound[name] = [as_json(v) for v in bound[name]]
        await conn.execute(_STATUS_EVENTS_BULK, bound)
        return
    # SQLite: the driver's executemany, values converted as the columns' types do (SQLAlchemy's
    # per-row parameter processing cost more than the insert itself)
    await conn.exec_driver_sql(
        _STATUS_EVENTS_SQLITE,
        [
            (
                v["workspace_id"],
                v["channel_id"],
                v["wamid"],
                v["status"],
                sqlite_text(v["occurred_at"]),
                v["error_code"],
                v["error_title"],
                as_json(v["pricing"]),
                as_json(v["meta_conversation"]),
                v["callback_data"],
                sqlite_text(v["created_at"]),
            )
            for v in values
        ],
    )


_STATUS_EVENTS_BULK = text(
    """INSERT INTO message_status_events (workspace_id, channel_id, wamid, status, occurred_at,
  error_code, error_title, pricing, meta_conversation, callback_data, created_at)
SELECT * FROM unnest(CAST(:workspaces AS BIGINT[]), CAST(:channels AS BIGINT[]),
  CAST(:wamids AS VARCHAR[]), CAST(:statuses AS VARCHAR[]), CAST(:ats AS TIMESTAMPTZ[]),
  CAST(:codes AS INTEGER[]), CAST(:titles AS VARCHAR[]), CAST(:pricing AS JSON[]),
  CAST(:conversations AS JSON[]), CAST(:callbacks AS VARCHAR[]), CAST(:created AS TIMESTAMPTZ[]))
ON CONFLICT DO NOTHING"""
)
_STATUS_EVENTS_SQLITE = (
    "INSERT INTO message_status_events (workspace_id, channel_id, wamid, status, occurred_at, "
    "error_code, error_title, pricing, meta_conversation, callback_data, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


@functools.cache
def _json_bind(dialect: Dialect) -> Callable[[Any], Any]:
    """How SQLAlchemy binds a value of these JSON columns on ``dialect`` (None as JSON null)."""
    bind = MessageStatusEvent.__table__.c.pricing.type.bind_processor(dialect)
    assert bind is not None
    return bind


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
