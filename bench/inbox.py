"""Inbox server time with a million messages (issue 5: "an inbox page for a workspace with
1,000,000 messages renders in under 50 ms server time").

    .venv/bin/python bench/inbox.py --db sqlite   --out bench/results/inbox-<date>.md
    .venv/bin/python bench/inbox.py --db postgres --out bench/results/inbox-<date>.md

One run: a fresh database (SQLite file, or a new PostgreSQL database on 127.0.0.1:5432, dropped
afterwards), migrated; the demo workspace; ``--conversations`` contacts (sealed name and phone,
each with its own data key, as intake makes them) with one conversation each; ``--messages``
messages spread evenly over them (sealed bodies: a few distinct ciphertexts per contact, reused,
so seeding does not spend its time in AES), inserted in bulk (multi-row INSERTs on SQLite,
``COPY`` on PostgreSQL). Then the real application, in process, is asked through ASGI (no
network, no client in the figure) for:

- ``GET /inbox`` (the full page: list of 30 conversations with their newest message),
- ``GET /inbox/list`` (the list fragment htmx swaps),
- ``GET /inbox/c/{id}`` (the full page with a thread of 40 messages and the composer),
- ``GET /inbox/c/{id}`` as htmx (the thread fragment).

Server time is measured around the ASGI call (first byte in to last byte out). The ceiling is
measured in the same run: a bare Starlette route rendering a static Jinja2 template of the same
size as the page, through the same ASGI call. The ratio platform / ceiling is what to compare
across machines (this one is shared and noisy). The decryption share is the time spent in
``Vault`` decrypt calls during the measured requests, over the requests' total time (issue 6 wants
the inbox within 10 % of its unencrypted cost; engineer ``consent`` owns that analysis).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import functools
import os
import pstats
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BODIES_PER_CONTACT = 4

Scope = dict[str, Any]
ASGI = Callable[[Scope, Any, Any], Awaitable[None]]


class Timed:
    """Wraps an ASGI app; ``last`` is the time of the last request, call to last byte."""

    def __init__(self, app: ASGI) -> None:
        self.app = app
        self.last = 0.0
        self.last_cpu = 0.0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The wall clock is read last before the call and first after it: reading the
        # process's CPU clock (all its threads) is not part of the server's time.
        cpu = time.process_time()
        started = time.perf_counter()
        await self.app(scope, receive, send)
        self.last = time.perf_counter() - started
        self.last_cpu = time.process_time() - cpu


class DecryptClock:
    """Adds up the time spent in ``Vault`` decryption (outermost calls only)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.calls = 0
        self._depth = 0

    def install(self) -> None:
        from connectx.privacy.vault import Vault

        for name in ("decrypt_bytes", "decrypt", "decrypt_or_none"):
            original = getattr(Vault, name)
            setattr(Vault, name, self._wrap(original))

    def _wrap(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        clock = self

        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            clock._depth += 1
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                clock._depth -= 1
                if clock._depth == 0:
                    clock.total += time.perf_counter() - started
                    clock.calls += 1

        return timed


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


FIRST = [
    "Ana",
    "Ben",
    "Carla",
    "Dmitri",
    "Eva",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jamal",
    "Kenji",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Amelie",
    "Bruno",
    "Chloe",
    "Diego",
]
LAST = [
    "Silva",
    "Nowak",
    "Okafor",
    "Haddad",
    "Tanaka",
    "Muller",
    "Rossi",
    "Garcia",
    "Kowalski",
    "Novak",
    "Ivanova",
    "Dubois",
    "Johansson",
    "Fernandes",
    "Moreau",
    "Schmidt",
    "Costa",
    "Yilmaz",
    "Kim",
    "Nguyen",
    "Petrov",
    "Hansen",
    "Lopez",
    "Weber",
]
TEXTS = (
    "Hi, is my order {o} on its way?",
    "Thanks! See https://shop.example/o/{o} for the details.",
    "Could you change the delivery address for order {o}?",
    "Your order {o} has shipped; it should arrive tomorrow.",
    "Do you have this in a larger size?",
    "Perfect, thank you very much 🙏",
    "We open at 9:00 tomorrow, you can pick it up any time after that.",
    "I paid but did not get a confirmation for {o}.",
)


def _plan(conversations: int, messages: int, rng: Any) -> list[int]:
    """Messages per conversation: a long-tailed spread (most threads short, a few very long)
    adding up to exactly ``messages``."""
    weights = [rng.paretovariate(1.3) for _ in range(conversations)]
    total = sum(weights)
    counts = [max(1, int(w / total * messages)) for w in weights]
    cap = max(1, messages // 20)
    counts = [min(c, cap) for c in counts]
    i = 0
    while sum(counts) < messages:
        counts[i % conversations] += 1
        i += 1
    while sum(counts) > messages:
        if counts[i % conversations] > 1:
            counts[i % conversations] -= 1
        i += 1
    return counts


async def _subject_keys(workspace_id: int, subjects: list[str]) -> dict[str, tuple[int, bytes]]:
    """The contacts' data keys, made in one key-store transaction per 2,000 (intake makes them
    one at a time as customers first write: that is intake's cost, not the inbox's)."""
    from sqlalchemy import insert

    from connectx.kit import clock, crypto
    from connectx.models.crypto_key import CryptoKey
    from connectx.privacy import keystore, vault

    scope = vault.scope_of(workspace_id)
    out: dict[str, tuple[int, bytes]] = {}
    for start in range(0, len(subjects), 2000):
        async with keystore.session() as db:
            parent = await vault.root_key(db, "scope", scope)
            parent_raw = await vault.unwrap(db, parent)
            rows, raws = [], []
            for subject in subjects[start : start + 2000]:
                raw = crypto.new_key()
                aad = f"wrap|subject|{scope}|{subject}|1".encode()
                rows.append(
                    {
                        "kind": "subject",
                        "scope": scope,
                        "subject": subject,
                        "version": 1,
                        "parent_id": parent.id,
                        "active": True,
                        "created_at": clock.now(),
                        "wrapped": crypto.wrap(parent_raw, raw, aad),
                    }
                )
                raws.append(raw)
            result = await db.execute(
                insert(CryptoKey).returning(CryptoKey.id, sort_by_parameter_order=True), rows
            )
            for (key_id,), row, raw in zip(result.all(), rows, raws, strict=True):
                out[str(row["subject"])] = (int(key_id), raw)
    return out


async def seed(conversations: int, messages: int, contacts_n: int) -> dict[str, Any]:
    """A workspace as years of use leave it: ``contacts_n`` customers (sealed names and numbers,
    phone blind indexes, name-search tokens), ``conversations`` conversations (every customer
    has one, some have an older resolved one too; open, pending and resolved; some assigned,
    some labelled, some read), and ``messages`` messages spread over them with a long tail
    (text mostly, media, templates, reactions, locations; in and out; ticks and failures),
    every body sealed under its contact's key like intake seals it; internal notes on some.
    Bulk Core inserts (COPY on PostgreSQL), one transaction per chunk."""
    import json
    import random

    from sqlalchemy import bindparam, insert, text, update

    from connectx.db.engine import get_engine
    from connectx.db.session import unit_of_work
    from connectx.inbox import name_search
    from connectx.kit import crypto
    from connectx.models.contact import Contact
    from connectx.models.conversation import Conversation
    from connectx.models.inbox import (
        ContactNameToken,
        ConversationLabel,
        Label,
        Note,
        ReadMarker,
    )
    from connectx.models.message import Message
    from connectx.privacy import vault as vault_mod
    from connectx.privacy.vault import Vault
    from connectx.workspaces import demo

    rng = random.Random(20261203)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    async with unit_of_work() as db:
        seeded = await demo.seed(db)
    assert seeded.channel_id is not None
    ws, channel_id = seeded.workspace_id, seeded.channel_id
    scope = vault_mod.scope_of(ws)
    engine = get_engine()
    is_pg = engine.dialect.name == "postgresql"
    now = datetime.now(UTC).replace(microsecond=0)
    async with unit_of_work() as db:
        owner_id = int(
            (
                await db.execute(
                    text(
                        "SELECT m.user_id FROM memberships m WHERE m.workspace_id = :ws "
                        "AND m.role = 'owner'"
                    ),
                    {"ws": ws},
                )
            ).scalar_one()
        )
        label_ids = []
        for name in ("vip", "billing", "returns"):
            label = Label(workspace_id=ws, name=name, color="#888888", created_at=now)
            db.add(label)
            await db.flush()
            label_ids.append(label.id)

    # -- contacts, their keys, sealed fields, phone indexes and name tokens ---------------------
    phase = time.perf_counter()
    async with unit_of_work() as db:
        rows = [
            {"workspace_id": ws, "created_at": now, "updated_at": now, "last_inbound_at": now}
            for _ in range(contacts_n)
        ]
        result = await db.execute(
            insert(Contact).returning(Contact.id, sort_by_parameter_order=True), rows
        )
        contact_ids = [int(r) for r in result.scalars()]
    keys = await _subject_keys(ws, [f"contact:{cid}" for cid in contact_ids])
    for subject, (key_id, raw) in keys.items():
        vault_mod.remember_key(key_id, raw)
        vault_mod._current.put(("subject", scope, subject), key_id)
    timings["keys_s"] = time.perf_counter() - phase

    def seal(cid: int, column: str, value: str) -> bytes:
        key_id, raw = keys[f"contact:{cid}"]
        aad = f"cx1|{scope}|contact:{cid}|{column}".encode()
        return crypto.seal(raw, key_id, value.encode(), aad)

    phase = time.perf_counter()
    vault = Vault()
    index_key = await vault.blind_index("probe", "")  # loads the index key once
    del index_key
    names = {cid: f"{rng.choice(FIRST)} {rng.choice(LAST)}" for cid in contact_ids}
    for start in range(0, contacts_n, 5000):
        batch = contact_ids[start : start + 5000]
        updates, tokens = [], []
        for i, cid in enumerate(batch, start=start):
            phone = f"+1555{i:07d}"
            updates.append(
                {
                    "cid": cid,
                    "name_enc": seal(cid, "contacts.name", names[cid]),
                    "phone_enc": seal(cid, "contacts.phone", phone),
                    "phone_index": await vault.blind_index("contact_phone", f"{ws}|{phone}"),
                }
            )
            for gram in sorted(name_search.grams(names[cid])):
                tokens.append(
                    {
                        "workspace_id": ws,
                        "contact_id": cid,
                        "token_index": await vault.blind_index("contact_name", f"{ws}|{gram}"),
                    }
                )
        async with engine.begin() as conn:
            await conn.execute(
                update(Contact.__table__)
                .where(Contact.__table__.c.id == bindparam("cid"))
                .values(
                    name_enc=bindparam("name_enc"),
                    phone_enc=bindparam("phone_enc"),
                    phone_index=bindparam("phone_index"),
                ),
                updates,
            )
            await conn.execute(insert(ContactNameToken.__table__), tokens)
    timings["contacts_s"] = time.perf_counter() - phase

    # -- conversations ------------------------------------------------------------------------
    phase = time.perf_counter()
    extra = max(0, conversations - contacts_n)
    # (contact, is the older one of two): the older conversations are resolved.
    owners = [(cid, False) for cid in contact_ids] + [(cid, True) for cid in contact_ids[:extra]]
    rng.shuffle(owners)
    owners = owners[:conversations]
    counts = _plan(len(owners), messages, rng)
    span = timedelta(days=365)
    conv_rows = []
    for i, (cid, older) in enumerate(owners):
        # Activity spread over a year; newer index = more recent.
        last = now - span * (1 - (i + 1) / len(owners)) - timedelta(seconds=rng.randint(0, 50))
        if older:
            last -= timedelta(days=30)
        age = 1 - (i + 1) / len(owners)
        status = (
            "resolved"
            if older or age > 0.1 + rng.random() * 0.2
            else rng.choice(("open", "open", "open", "pending"))
        )
        assignee = owner_id if status != "resolved" and rng.random() < 0.3 else None
        conv_rows.append(
            {
                "workspace_id": ws,
                "channel_id": channel_id,
                "contact_id": cid,
                "status": status,
                "assignee_user_id": assignee,
                "assigned_at": last if assignee else None,
                "opened_at": last - timedelta(minutes=5 * counts[i]),
                "resolved_at": last if status == "resolved" else None,
                "last_inbound_at": last - timedelta(minutes=rng.choice((0, 0, 5))),
                "last_message_at": last,
                "created_at": last - timedelta(minutes=5 * counts[i]),
                "updated_at": last,
            }
        )
    conv_cols = {c.name for c in Conversation.__table__.columns}
    conv_rows = [{k: v for k, v in r.items() if k in conv_cols} for r in conv_rows]
    conversation_ids: list[int] = []
    async with engine.begin() as conn:
        for start in range(0, len(conv_rows), 5000):
            result = await conn.execute(
                insert(Conversation.__table__).returning(
                    Conversation.__table__.c.id, sort_by_parameter_order=True
                ),
                conv_rows[start : start + 5000],
            )
            conversation_ids.extend(int(r) for r in result.scalars())
        labelled = [
            {
                "workspace_id": ws,
                "conversation_id": cv,
                "label_id": rng.choice(label_ids),
                "created_at": now,
            }
            for cv in conversation_ids
            if rng.random() < 0.1
        ]
        lab_cols = {c.name for c in ConversationLabel.__table__.columns}
        await conn.execute(
            insert(ConversationLabel.__table__),
            [{k: v for k, v in r.items() if k in lab_cols} for r in labelled],
        )
        reads = [
            {
                "workspace_id": ws,
                "conversation_id": cv,
                "user_id": owner_id,
                "read_upto": row["last_inbound_at"],
                "updated_at": now,
            }
            for cv, row in zip(conversation_ids, conv_rows, strict=True)
            if rng.random() < 0.6
        ]
        await conn.execute(insert(ReadMarker.__table__), reads)
        notes = [
            {
                "workspace_id": ws,
                "conversation_id": cv,
                "contact_id": row["contact_id"],
                "author_user_id": owner_id,
                "body_enc": seal(row["contact_id"], "notes.body", "Called back, waiting on stock."),
                "created_at": row["last_message_at"] - timedelta(minutes=7 * k),
            }
            for cv, row in zip(conversation_ids, conv_rows, strict=True)
            if rng.random() < 0.05
            for k in range(rng.randint(1, 4))
        ]
        await conn.execute(insert(Note.__table__), notes)
    timings["conversations_s"] = time.perf_counter() - phase

    # -- messages -------------------------------------------------------------------------------
    phase = time.perf_counter()
    pnid = "100000000000001"
    columns = [
        "workspace_id", "channel_id", "conversation_id", "contact_id", "phone_number_id",
        "wamid", "direction", "type", "status", "status_rank", "status_at", "error_code",
        "error_title", "body_enc", "content_enc", "media_id", "media_mime_type",
        "reply_to_wamid", "forwarded", "frequently_forwarded", "target_wamid", "reaction_enc",
        "sent_at", "created_at",
    ]  # fmt: skip
    ranks = {"sent": 1, "delivered": 2, "read": 3, "failed": 9}

    def thread(ci: int) -> list[tuple[Any, ...]]:
        conv, cid = conversation_ids[ci], owners[ci][0]
        row = conv_rows[ci]
        n = counts[ci]
        last = row["last_message_at"]
        out: list[tuple[Any, ...]] = []
        for k in range(n):
            at = last - timedelta(minutes=5 * (n - 1 - k))
            inbound = k == n - 1 or rng.random() < 0.5
            wamid = f"wamid.B{conv}.{k}"
            order = f"A-{conv}-{k % 7}"
            kind, body, content, media, reaction, target = "text", None, None, None, None, None
            roll = rng.random()
            if k and roll < 0.03:
                kind, target = "reaction", f"wamid.B{conv}.{k - 1}"
                reaction = seal(cid, "messages.reaction", rng.choice("👍❤️🙏😂"))
            elif roll < 0.08:
                kind = rng.choice(("image", "document", "audio"))
                media = (
                    f"{conv}{k:05d}",
                    {"image": "image/jpeg", "document": "application/pdf", "audio": "audio/ogg"}[
                        kind
                    ],
                )
                if kind != "audio":
                    body = seal(cid, "messages.body", f"Photo of {order}")
            elif roll < 0.10 and inbound:
                kind = "location"
                content = seal(
                    cid,
                    "messages.content",
                    json.dumps(
                        {
                            "latitude": 52.52,
                            "longitude": 13.405,
                            "name": "Shop",
                            "address": "Main St 1",
                        }
                    ),
                )
            elif roll < 0.13 and not inbound:
                kind = "template"
                body = seal(cid, "messages.body", f"Your order {order} has shipped.")
                content = seal(
                    cid,
                    "messages.content",
                    json.dumps(
                        {
                            "template": {
                                "name": "order_update",
                                "language": {"code": "en"},
                                "components": [
                                    {
                                        "type": "body",
                                        "parameters": [{"type": "text", "text": order}],
                                    }
                                ],
                            }
                        }
                    ),
                )
            else:
                body = seal(cid, "messages.body", rng.choice(TEXTS).format(o=order))
            if inbound:
                status, rank, err, title = "received", 0, None, None
            else:
                status = rng.choices(("read", "delivered", "sent", "failed"), (80, 12, 6, 2))[0]
                rank = ranks[status]
                err, title = (
                    (131047, "Re-engagement message") if status == "failed" else (None, None)
                )
            out.append(
                (
                    ws, channel_id, conv, cid, pnid, wamid, "in" if inbound else "out", kind,
                    status, rank, None if inbound else at, err, title, body, content,
                    media[0] if media else None, media[1] if media else None,
                    f"wamid.B{conv}.{k - 2}" if k > 2 and rng.random() < 0.02 else None,
                    inbound and rng.random() < 0.01, False, target, reaction, at, at,
                )
            )  # fmt: skip
        return out

    chunk: list[tuple[Any, ...]] = []
    done = 0
    table = Message.__table__
    processors = [table.c[c].type._cached_bind_processor(engine.dialect) for c in columns]
    sql = f"INSERT INTO messages ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

    async def flush() -> None:
        nonlocal chunk, done
        if not chunk:
            return
        async with engine.begin() as conn:
            if is_pg:
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection
                assert driver is not None
                await driver.copy_records_to_table("messages", records=chunk, columns=columns)
            else:  # the driver's executemany, datetimes through the column type's processor
                rows = [
                    tuple(p(v) if p else v for p, v in zip(processors, r, strict=True))
                    for r in chunk
                ]
                await conn.exec_driver_sql(sql, rows)  # type: ignore[arg-type]
        done += len(chunk)
        chunk = []
        print(f"\r  messages {done:,}/{messages:,}", end="", file=sys.stderr, flush=True)

    for ci in range(len(conversation_ids)):
        chunk.extend(thread(ci))
        if len(chunk) >= 20_000:
            await flush()
    await flush()
    print(file=sys.stderr)
    timings["messages_s"] = time.perf_counter() - phase
    if is_pg:
        phase = time.perf_counter()
        auto = engine.execution_options(isolation_level="AUTOCOMMIT")
        async with auto.connect() as conn:
            await conn.execute(text("VACUUM ANALYZE"))
        timings["analyze_s"] = time.perf_counter() - phase
    timings["seed_s"] = time.perf_counter() - started
    order = sorted(range(len(conversation_ids)), key=lambda i: conv_rows[i]["last_message_at"])
    return {
        "workspace_id": ws,
        "owner": seeded.owner_email,
        "password": seeded.password,
        "conversation_ids": [conversation_ids[i] for i in order],  # oldest activity first
        "longest": conversation_ids[max(range(len(counts)), key=counts.__getitem__)],
        "longest_messages": max(counts),
        "messages": messages,
        "contacts": contacts_n,
        "conversations": len(conversation_ids),
        "open": sum(1 for r in conv_rows if r["status"] == "open"),
        **timings,
    }


def ceiling_app(html: str) -> ASGI:
    """A bare Starlette route rendering a static template of the page's size."""
    from jinja2 import Environment
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    template = Environment(autoescape=True).from_string(html.replace("{", "&#123;"))

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(template.render())

    return Starlette(routes=[Route("/", page)])


async def measure(
    client: Any, timed: Timed, url: str, n: int, headers: dict[str, str] | None = None
) -> tuple[list[float], str]:
    body = ""
    for _ in range(max(3, n // 10)):  # warm-up: key caches, statement caches
        response = await client.get(url, headers=headers or {})
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        body = response.text
    timed.cpu = []  # type: ignore[attr-defined]
    times, cpu = [], []
    for _ in range(n):
        response = await client.get(url, headers=headers or {})
        assert response.status_code == 200
        times.append(timed.last * 1000)
        cpu.append(timed.last_cpu * 1000)
    timed.cpu = cpu  # type: ignore[attr-defined]
    return times, body


class Queries:
    """Counts the SQL statements of the data engine during a request, and keeps the last
    request's for EXPLAIN."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def install(self, engine: Any) -> None:
        from sqlalchemy import event

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            self.statements.append((statement, params))


async def explain(engine: Any, statements: list[tuple[str, Any]]) -> list[str]:
    """The plan of each SELECT (PostgreSQL: EXPLAIN ANALYZE; SQLite: EXPLAIN QUERY PLAN)."""
    out = []
    is_pg = engine.dialect.name == "postgresql"
    seen: set[str] = set()
    for statement, params in statements:
        head = statement.lstrip().split(None, 1)[0].upper()
        if head not in ("SELECT", "WITH") or statement in seen:
            continue
        seen.add(statement)
        prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if is_pg else "EXPLAIN QUERY PLAN "
        async with engine.connect() as conn:
            result = await conn.exec_driver_sql(prefix + statement, params)
            rows = result.all()
            took = []
            for _ in range(5):
                started = time.perf_counter()
                (await conn.exec_driver_sql(statement, params)).all()
                took.append((time.perf_counter() - started) * 1000)
            await conn.rollback()
        plan = (
            "\n".join(str(r[0]) for r in rows)
            if is_pg
            else "\n".join(f"{'  ' * _depth(rows, r)}{r[-1]}" for r in rows)
        )
        out.append(
            f"```sql\n{' '.join(statement.split())[:600]}\n```\n"
            f"```\n{plan}\n(5 runs, median {statistics.median(took):.2f} ms)\n```"
        )
    return out


def _depth(rows: list[Any], row: Any) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, node = 0, row[1]
    while node:
        depth += 1
        node = parents.get(node, 0)
    return depth


async def run(args: argparse.Namespace, info: dict[str, Any] | None) -> dict[str, Any]:
    import httpx

    from connectx.app import create_app
    from connectx.db.engine import get_engine

    if info is None:
        info = await seed(args.conversations, args.messages, args.contacts)
    app = create_app()
    timed = Timed(app)
    clock = DecryptClock()
    clock.install()
    queries = Queries()
    results: dict[str, Any] = {"seed": info, "pages": [], "plans": {}}
    async with app.router.lifespan_context(app):
        await _children_settled()
        queries.install(get_engine())
        transport = httpx.ASGITransport(app=timed)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            r = await client.post(
                "/api/v1/auth/signin", json={"email": info["owner"], "password": info["password"]}
            )
            assert r.status_code == 200, r.text
            ids = info["conversation_ids"]
            newest, middle, longest = ids[-1], ids[len(ids) // 2], info["longest"]
            html = {"accept": "text/html"}
            htmx = {"accept": "text/html", "hx-request": "true"}
            js = {"accept": "application/json"}
            pages: list[tuple[str, str, dict[str, str], str | None]] = [
                ("floor: signed-in GET /api/v1/me (middleware + session)", "/api/v1/me", js, None),
                ("inbox page (GET /inbox)", "/inbox?status=open", html, None),
                ("list fragment (GET /inbox/list)", "/inbox/list?status=open", htmx, None),
                ("list fragment, next page (cursor)", "/inbox/list?status=open", htmx, "html"),
                ("list fragment, all statuses, page 100", "/inbox/list?status=all", htmx, "deep"),
                ("list fragment, mine", "/inbox/list?status=open&view=mine", htmx, None),
                ("list fragment, unread", "/inbox/list?status=open&unread=true", htmx, None),
                ("list fragment, name search", "/inbox/list?status=all&q=silva", htmx, None),
                ("JSON list (GET /api/v1/inbox/conversations)",
                 "/api/v1/inbox/conversations?status=open&limit=30", js, None),
                ("JSON list, next page (cursor)",
                 "/api/v1/inbox/conversations?status=open&limit=30", js, "json"),
                ("unread counts (GET /api/v1/inbox/counts)", "/api/v1/inbox/counts", js, None),
                ("bell (GET /inbox/bell, loaded after a page)", "/inbox/bell", htmx, None),
                ("thread page (GET /inbox/c/{id}, newest)", f"/inbox/c/{newest}", html, None),
                ("thread page (middle of the list)", f"/inbox/c/{middle}", html, None),
                ("thread fragment (htmx, middle)", f"/inbox/c/{middle}", htmx, None),
                (f"thread fragment (htmx, longest: {info['longest_messages']:,} messages)",
                 f"/inbox/c/{longest}", htmx, None),
            ]  # fmt: skip
            for name, url, headers, follow in pages:
                if args.only and not any(o in name for o in args.only):
                    continue
                if follow is not None:
                    url = await _follow(client, url, headers, follow)
                clock.total, clock.calls = 0.0, 0
                times, body = await measure(client, timed, url, args.requests, headers)
                calls = args.requests + max(3, args.requests // 10)
                decrypt_ms = clock.total * 1000 / calls
                queries.statements = []
                profile = cProfile.Profile()  # Python calls of one request: load-proof
                profile.enable()
                await client.get(url, headers=headers)
                profile.disable()
                py_calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
                if args.pstats:
                    args.pstats.mkdir(parents=True, exist_ok=True)
                    profile.dump_stats(args.pstats / f"{len(results['pages']):02d}.pstats")
                statements = list(queries.statements)
                if args.statements:
                    for statement, _ in statements:
                        print("   ", " ".join(statement.split())[:160])
                if args.explain and name != pages[0][0]:
                    results["plans"][name] = await explain(get_engine(), statements)
                ceiling = Timed(ceiling_app(body))
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=ceiling), base_url="http://bench"
                ) as bare:
                    ceiling_times, _ = await measure(bare, ceiling, "/", args.requests)
                median = statistics.median(times)
                cpu_median = statistics.median(timed.cpu)  # type: ignore[attr-defined]
                ceiling_cpu = statistics.median(ceiling.cpu)  # type: ignore[attr-defined]
                results["pages"].append(
                    {
                        "what": name,
                        "bytes": len(body.encode()),
                        "queries": len(statements),
                        "py_calls": py_calls,
                        "cpu_ms": cpu_median,
                        "cpu_ratio": cpu_median / max(ceiling_cpu, 1e-6),
                        "median_ms": median,
                        "p95_ms": pct(times, 95),
                        "ceiling_median_ms": statistics.median(ceiling_times),
                        "ratio": median / statistics.median(ceiling_times),
                        "decrypt_ms": decrypt_ms,
                        "decrypt_calls": clock.calls // calls,
                    }
                )
                print(
                    f"{name}: median {median:.1f} ms, p95 {pct(times, 95):.1f} ms, "
                    f"CPU {cpu_median:.1f} ms, {len(statements)} statements, "
                    f"{py_calls:,} Python calls",
                    flush=True,
                )
    return results


def _children_cpu() -> int:
    """CPU ticks used so far by this process's children (the embedded processing process)."""
    total, me = 0, str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


async def _children_settled(timeout_s: float = 30.0) -> None:
    """Wait until the app's child processes (the processing process, started by the lifespan)
    have finished starting: no CPU used for a second. Its start-up (imports, ~2-5 s of CPU)
    would otherwise share the machine with the first lines measured."""
    deadline = time.monotonic() + timeout_s
    last = _children_cpu()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = _children_cpu()
        if now == last:
            return
        last = now


async def _follow(client: Any, url: str, headers: dict[str, str], how: str) -> str:
    """The URL of a later page: the next one (``html``/``json``) or the 100th (``deep``; the
    last one when there are fewer)."""
    import re

    for _ in range(99 if how == "deep" else 1):
        r = await client.get(url, headers=headers)
        assert r.status_code == 200, r.text[:300]
        if how == "json":
            cursor = r.json()["next_cursor"]
        else:
            found = re.search(r"cursor=([^&\"']+)", r.text)
            cursor = found.group(1) if found else None
        if cursor is None:
            assert how == "deep", "no next page"
            break
        url = f"{url.split('&cursor=')[0]}&cursor={cursor}"
    return url


GOAL_MS = 50.0


def verdict(pages: list[dict[str, Any]]) -> str:
    """Issue 5's bound over every line measured but the floor: every inbox page and fragment
    (list, full thread pages opened directly, newest and middle, fragments, JSON list, counts,
    bell) under ``GOAL_MS`` median server time."""
    judged = [p for p in pages if not p["what"].startswith("floor")]
    if not judged:
        return "**Verdict:** no page measured."
    worst = max(judged, key=lambda p: p["median_ms"])
    over = [p["what"] for p in judged if p["median_ms"] >= GOAL_MS]
    head = f"**Verdict (under {GOAL_MS:.0f} ms median server time, {len(judged)} lines): " + (
        "met" if not over else f"NOT met ({len(over)} over: {'; '.join(over)})"
    )
    return f"{head}** — slowest: {worst['what']}, {worst['median_ms']:.1f} ms median."


def markdown(args: argparse.Namespace, results: dict[str, Any], load: str) -> str:
    seed = results["seed"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"## {args.db}: {seed['messages']:,} messages, {seed['conversations']:,} conversations "
        f"({seed['open']:,} open), {seed['contacts']:,} contacts ({when})",
        "",
        f"Seeding {seed['seed_s']:.0f} s ("
        + ", ".join(
            f"{k[:-2]} {v:.0f} s" for k, v in seed.items() if k.endswith("_s") and k != "seed_s"
        )
        + f"){' — reused from an earlier run' if seed.get('reused') else ''}. "
        f"Load average before: {load}. {args.requests} requests per line after a warm-up; "
        "server time per request, in process (ASGI, no network).",
        "",
        "| request | bytes | statements | Python calls | median ms | p95 ms | CPU ms (median) "
        "| ceiling median ms | ratio (wall) | ratio (CPU) | decrypt ms (calls) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["pages"]:
        lines.append(
            f"| {r['what']} | {r['bytes']:,} | {r['queries']} | {r['py_calls']:,} | "
            f"{r['median_ms']:.1f} | "
            f"{r['p95_ms']:.1f} | {r['cpu_ms']:.1f} | {r['ceiling_median_ms']:.2f} | "
            f"{r['ratio']:.0f}x | {r['cpu_ratio']:.0f}x | "
            f"{r['decrypt_ms']:.1f} ({r['decrypt_calls']}) |"
        )
    lines += ["", verdict(results["pages"])]
    if results["plans"]:
        lines += ["", f"### Query plans ({args.db}), one request of each line", ""]
        for name, plans in results["plans"].items():
            lines += [f"#### {name}", "", *plans, ""]
    return "\n".join(lines) + "\n"


def _environment(args: argparse.Namespace, work: Path) -> str | None:
    """Point the platform at the run's database; returns the PostgreSQL database's name."""
    key_file = work / "master.key"
    if not key_file.exists():
        key_file.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    os.environ.update(
        {
            "CONNECTX_DATA_DIR": str(work / "data"),
            "CONNECTX_MASTER_KEY": key_file.read_text().strip(),
            "CONNECTX_BACKUP_SCHEDULE": "false",
            "CONNECTX_LOG_LEVEL": "WARNING",
            "CONNECTX_ACCESS_LOG": "false",
            "CONNECTX_GRAPH_BASE_URL": "http://127.0.0.1:9",  # nothing leaves the machine
        }
    )
    for name in ("CONNECTX_BROKER_URL", "CONNECTX_REDIS_URL", "CONNECTX_KEYSTORE_URL"):
        os.environ.pop(name, None)
    (work / "data").mkdir(parents=True, exist_ok=True)
    if args.db == "postgres":
        dbname = args.pg_database or f"connectx_bench_inbox_{os.getpid()}"
        exists = subprocess.run(
            ["psql", PG_ADMIN, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not exists:
            subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {dbname}"], check=True)
        os.environ["CONNECTX_DATABASE_URL"] = (
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
        )
        return dbname
    os.environ["CONNECTX_DATABASE_URL"] = f"sqlite+aiosqlite:///{work / 'data' / 'c.db'}"
    return None


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=25_000)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=50, help="measured requests per line")
    parser.add_argument("--out", type=Path, help="append a Markdown report here")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a directory to seed once and reuse (master key, SQLite files, seed.json; on "
        "PostgreSQL the database --pg-database is kept too)",
    )
    parser.add_argument("--pg-database", help="PostgreSQL database to seed or reuse")
    parser.add_argument("--seed-only", action="store_true", help="seed (or check) and stop")
    parser.add_argument("--explain", action="store_true", help="add each line's query plans")
    parser.add_argument(
        "--only", action="append", help="measure only lines whose name contains this (repeatable)"
    )
    parser.add_argument(
        "--pstats", type=Path, help="write a cProfile of one request of each line to this directory"
    )
    parser.add_argument(
        "--statements", action="store_true", help="print each line's SQL statements (one request)"
    )
    args = parser.parse_args()
    if args.reuse:
        work = args.reuse.resolve()
        work.mkdir(parents=True, exist_ok=True)
        if args.db == "postgres" and not args.pg_database:
            args.pg_database = f"connectx_bench_inbox_{work.name}".replace("-", "_")
    else:
        work = Path(tempfile.mkdtemp(prefix="connectx-bench-inbox-"))
    dbname = _environment(args, work)
    state = work / f"seed-{args.db}.json"
    info = json.loads(state.read_text()) if args.reuse and state.exists() else None
    if info is not None:
        info["reused"] = True
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    try:
        from connectx.db import migrate

        migrate.upgrade(os.environ["CONNECTX_DATABASE_URL"])  # a reused database too
        if info is None:
            info = asyncio.run(seed(args.conversations, args.messages, args.contacts))
            if args.reuse:
                state.write_text(json.dumps(info))
            print({k: v for k, v in info.items() if k != "conversation_ids"}, flush=True)
        if args.seed_only:
            return
        results = asyncio.run(run(args, info))
        report = markdown(args, results, load)
        print(report)
        if args.out:
            with args.out.open("a") as fh:
                fh.write("\n" + report)
    finally:
        if dbname and not args.reuse:
            subprocess.run(
                ["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"],
                check=False,
            )
        if not args.reuse:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
