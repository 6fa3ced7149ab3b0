"""Inbox list query benchmark (issue 5): the conversation list of a workspace with 1,000,000
messages, on PostgreSQL, against a ceiling measured in the same run.

    .venv/bin/python bench/inbox_list.py                       # 1,000,000 messages
    .venv/bin/python bench/inbox_list.py --messages 200000 --out bench/results/x.md

What it does:

1. Creates a fresh database on 127.0.0.1:5432, migrates it, and seeds one workspace: 10 agents,
   2 numbers, 5 labels, ``messages / 20`` contacts and conversations (60 % resolved, 30 % open,
   10 % pending; 70 % assigned round the agents; 10 % carry a label; activity spread over a
   year) and ``messages`` messages, in bulk SQL. The newest 500 contacts get real sealed names,
   phones and name-search tokens; every other contact gets six random tokens, so the token
   index has the size it would have.
2. Calls the service the API and the web page call (``inbox.listing.page``: the query, the
   contacts' names decrypted, labels, read markers and the audit entry of the read) for each
   view, ``--repeat`` times, and reports the median.
3. Ceiling: fetching the same 50 conversations by primary key plus decrypting their contacts
   (``contacts.service.names``) — the least work any page of 50 rows must do. The ratio
   (list / ceiling) is what to watch; absolute times move with the machine's load.
4. ``EXPLAIN (ANALYZE, BUFFERS)`` of each list query, to show which index serves it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def setup_environment(name: str) -> str:
    sys.path.insert(0, str(ROOT))
    from tests.support.databases import fresh_postgres_database

    url = fresh_postgres_database(PG_SERVER, name)
    os.environ.update(
        {
            "CONNECTX_DATABASE_URL": url,
            "CONNECTX_DATA_DIR": tempfile.mkdtemp(prefix="cx-bench-inbox-"),
            "CONNECTX_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "CONNECTX_LOG_JSON": "false",
            "CONNECTX_LOG_LEVEL": "WARNING",
        }
    )
    from connectx.config import reset_settings
    from connectx.db.migrate import upgrade

    reset_settings()
    upgrade(url)
    return url


SEED = """
INSERT INTO contacts (id, workspace_id, created_at, updated_at)
SELECT g, CAST(:ws AS bigint), now() - interval '1 year', now()
FROM generate_series(1, CAST(:n AS bigint)) AS g;

INSERT INTO conversations (id, workspace_id, channel_id, contact_id, status, opened_at,
    last_inbound_at, last_message_at, resolved_at, created_at, updated_at, assignee_user_id)
SELECT g, CAST(:ws AS bigint),
    CASE WHEN g % 2 = 0 THEN CAST(:ch1 AS bigint) ELSE CAST(:ch2 AS bigint) END, g,
    CASE WHEN g % 10 < 6 THEN 'resolved' WHEN g % 10 < 9 THEN 'open' ELSE 'pending' END,
    now() - interval '1 year',
    now() - (interval '1 second' * ((CAST(:n AS bigint) - g) * 600 + 60)),
    now() - (interval '1 second' * ((CAST(:n AS bigint) - g) * 600)),
    CASE WHEN g % 10 < 6 THEN now() ELSE NULL END, now(), now(),
    CASE WHEN g % 10 < 7 THEN (CAST(:first_user AS bigint) + g % 10) ELSE NULL END
FROM generate_series(1, CAST(:n AS bigint)) AS g;

INSERT INTO messages (workspace_id, channel_id, conversation_id, contact_id, phone_number_id,
    wamid, direction, type, status, status_rank, forwarded, frequently_forwarded, sent_at,
    created_at)
SELECT CAST(:ws AS bigint),
    CASE WHEN c % 2 = 0 THEN CAST(:ch1 AS bigint) ELSE CAST(:ch2 AS bigint) END, c, c,
    'bench-pnid',
    'wamid.bench.' || m, CASE WHEN m % 2 = 0 THEN 'in' ELSE 'out' END, 'text',
    CASE WHEN m % 2 = 0 THEN 'received' ELSE 'read' END, 0, false, false,
    now() - (interval '1 second' * ((CAST(:n AS bigint) - c) * 600 + (m % 20) * 30)), now()
FROM generate_series(1, CAST(:messages AS bigint)) AS m,
    LATERAL (SELECT 1 + (m - 1) % CAST(:n AS bigint) AS c) AS x;

INSERT INTO conversation_labels (workspace_id, conversation_id, label_id, created_at)
SELECT CAST(:ws AS bigint), g, CAST(:label AS bigint), now()
FROM generate_series(1, CAST(:n AS bigint)) AS g WHERE g % 10 = 3;

INSERT INTO contact_name_tokens (workspace_id, contact_id, token_index)
SELECT CAST(:ws AS bigint), c, decode(md5(c::text || '-' || t) || md5(t::text || '+' || c), 'hex')
FROM generate_series(1, CAST(:n AS bigint) - 500) AS c, generate_series(1, 6) AS t;
"""


async def seed(messages: int) -> dict[str, Any]:
    from sqlalchemy import text

    from connectx.db.session import unit_of_work
    from connectx.inbox import name_search
    from connectx.kit import clock
    from connectx.models.account import User
    from connectx.models.channel import Channel, MetaApp
    from connectx.models.contact import Contact
    from connectx.models.inbox import Label
    from connectx.models.workspace import Membership, Workspace
    from connectx.privacy.vault import Vault

    n = max(1000, messages // 20)
    now = clock.now()
    async with unit_of_work() as db:
        ws = Workspace(name="Bench Co", created_at=now, updated_at=now)
        db.add(ws)
        await db.flush()
        users = []
        for _ in range(10):
            user = User(
                email_index=secrets.token_bytes(32),
                email_enc=b"x",
                name_enc=b"x",
                phone_enc=b"x",
                password_hash="x",
                created_at=now,
                updated_at=now,
            )
            db.add(user)
            await db.flush()
            users.append(user.id)
            db.add(Membership(workspace_id=ws.id, user_id=user.id, role="agent", created_at=now))
        app = MetaApp(app_id="bench-app", created_at=now, updated_at=now)
        db.add(app)
        await db.flush()
        channels = []
        for i in range(2):
            ch = Channel(
                workspace_id=ws.id,
                meta_app_id=app.id,
                phone_number_id=f"bench-{i}",
                display_phone_number=f"+1555000000{i}",
                waba_id="bench-waba",
                status="active",
                created_by="system",
                created_at=now,
                updated_at=now,
            )
            db.add(ch)
            await db.flush()
            channels.append(ch.id)
        labels = []
        for i in range(5):
            label = Label(workspace_id=ws.id, name=f"Label {i}", color="#888888", created_at=now)
            db.add(label)
            await db.flush()
            labels.append(label.id)
        params = {
            "ws": ws.id,
            "n": n,
            "messages": messages,
            "ch1": channels[0],
            "ch2": channels[1],
            "first_user": users[0],
            "label": labels[0],
        }
        for statement in SEED.split(";\n"):
            if statement.strip():
                await db.execute(text(statement), params)
        for table in ("contacts", "conversations", "messages"):
            await db.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    vault_names = []
    async with unit_of_work() as db:
        vault = Vault(db)
        for cid in range(n - 499, n + 1):
            contact = await db.get(Contact, cid)
            assert contact is not None
            name = f"Customer{cid} Person"
            phone = f"+1650{cid:07d}"
            subject = f"contact:{cid}"
            contact.name_enc = await vault.encrypt(ws.id, subject, "contacts.name", name)
            contact.phone_enc = await vault.encrypt(ws.id, subject, "contacts.phone", phone)
            contact.phone_index = await vault.blind_index("contact_phone", f"{ws.id}|{phone}")
            await name_search.index(db, vault, contact, name)
            vault_names.append((name, phone))
    async with unit_of_work() as db:
        await db.execute(text("ANALYZE"))
    return {
        "workspace_id": ws.id,
        "users": users,
        "channels": channels,
        "label": labels[0],
        "conversations": n,
        "messages": messages,
        "newest": vault_names[-1],
    }


class Capture:
    """The SQL of the list query, captured as the driver saw it (for EXPLAIN)."""

    def __init__(self) -> None:
        self.statement: tuple[str, Any] | None = None

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, *a: Any) -> None:
        if "FROM conversations" in statement and "ORDER BY conversations.last_message_at" in (
            statement
        ):
            self.statement = (statement, parameters)


async def measure(info: dict[str, Any], repeat: int) -> list[dict[str, Any]]:
    from sqlalchemy import event, select

    from connectx.accounts.principal import Principal
    from connectx.contacts import service as contacts
    from connectx.db.engine import get_engine
    from connectx.db.session import unit_of_work
    from connectx.inbox import listing
    from connectx.models.conversation import Conversation

    ws = info["workspace_id"]
    agent = info["users"][6]  # has open conversations (g % 10 == 6)
    principal = Principal(actor=f"user:{agent}", user_id=agent, workspace_id=ws, role="agent")
    name, phone = info["newest"]
    variants: list[tuple[str, dict[str, Any]]] = [
        ("all", {}),
        ("all, open", {"status": "open"}),
        ("mine, open", {"view": "mine", "status": "open"}),
        ("unassigned, open", {"view": "unassigned", "status": "open"}),
        ("number (channel), open", {"channel_id": info["channels"][0], "status": "open"}),
        ("label", {"label_id": info["label"]}),
        ("unread, open", {"unread": True, "status": "open"}),
        ("search name word", {"q": name.split()[1]}),
        ("search name prefix", {"q": name.split()[0][:6]}),
        ("search number", {"q": phone}),
    ]
    capture = Capture()
    engine = get_engine()
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    results = []
    for label, params in variants:
        times, ceilings, rows = [], [], 0
        cursor_times = []
        for _ in range(repeat):
            async with unit_of_work() as db:
                started = time.perf_counter()
                page, next_cursor = await listing.page(db, principal, limit=50, **params)
                times.append(time.perf_counter() - started)
            rows = len(page)
            ids = [r.conversation.id for r in page]
            async with unit_of_work() as db:
                started = time.perf_counter()
                found = (
                    (await db.execute(select(Conversation).where(Conversation.id.in_(ids))))
                    .scalars()
                    .all()
                )
                await contacts.names(db, ws, sorted({c.contact_id for c in found}))
                ceilings.append(time.perf_counter() - started)
            if next_cursor:
                async with unit_of_work() as db:
                    started = time.perf_counter()
                    await listing.page(db, principal, limit=50, cursor=next_cursor, **params)
                    cursor_times.append(time.perf_counter() - started)
        plan = ""
        if capture.statement is not None:
            statement, parameters = capture.statement
            async with engine.connect() as conn:
                raw = await conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
                )
                plan = "\n".join(r[0] for r in raw.all())
        results.append(
            {
                "view": label,
                "rows": rows,
                "ms": statistics.median(times) * 1000,
                "next_ms": statistics.median(cursor_times) * 1000 if cursor_times else None,
                "ceiling_ms": statistics.median(ceilings) * 1000,
                "plan": plan,
            }
        )
    event.remove(engine.sync_engine, "before_cursor_execute", capture)
    return results


def report(info: dict[str, Any], results: list[dict[str, Any]], seconds: float) -> str:
    lines = [
        f"# Inbox list on PostgreSQL: {info['messages']:,} messages, "
        f"{info['conversations']:,} conversations (seeded in {seconds:.0f} s)",
        "",
        "Median of the service call `inbox.listing.page` (query, names decrypted, labels, read "
        "markers, audit entry), page of 50; ceiling: the same 50 rows by primary key + names.",
        "",
        "| view | rows | list ms | next page ms | ceiling ms | list / ceiling |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        nxt = f"{r['next_ms']:.1f}" if r["next_ms"] is not None else "-"
        lines.append(
            f"| {r['view']} | {r['rows']} | {r['ms']:.1f} | {nxt} | {r['ceiling_ms']:.1f} | "
            f"{r['ms'] / r['ceiling_ms']:.2f} |"
        )
    lines += ["", "## Plans (EXPLAIN ANALYZE of the list query)", ""]
    for r in results:
        lines += [f"### {r['view']}", "", "```", r["plan"], "```", ""]
    return "\n".join(lines)


async def run(messages: int, repeat: int) -> str:
    from connectx.db.engine import dispose_engines

    started = time.perf_counter()
    info = await seed(messages)
    seeded = time.perf_counter() - started
    results = await measure(info, repeat)
    await dispose_engines()
    return report(info, results, seeded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    name = f"cx_bench_inbox_{os.getpid()}"
    setup_environment(name)
    try:
        text = asyncio.run(run(args.messages, args.repeat))
    finally:
        from tests.support.databases import _admin

        _admin(PG_SERVER, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
