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
import functools
import os
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
        started, cpu = time.perf_counter(), time.process_time()
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


async def bulk_subject_keys(workspace_id: int, subjects: list[str]) -> None:
    """Create the contacts' data keys in one key-store transaction per 1,000 (the platform makes
    them one at a time, as contacts first write; that is intake's cost, not the inbox's), and
    put them in the key caches the way ``Vault.subject_key`` does."""
    from connectx.kit import clock, crypto
    from connectx.models.crypto_key import CryptoKey
    from connectx.privacy import keystore, vault

    scope = vault.scope_of(workspace_id)
    for start in range(0, len(subjects), 1000):
        async with keystore.session() as db:
            parent = await vault.root_key(db, "scope", scope)
            parent_raw = await vault.unwrap(db, parent)
            made = []
            for subject in subjects[start : start + 1000]:
                raw = crypto.new_key()
                row = CryptoKey(
                    kind="subject",
                    scope=scope,
                    subject=subject,
                    version=1,
                    parent_id=parent.id,
                    active=True,
                    created_at=clock.now(),
                )
                row.wrapped = crypto.wrap(parent_raw, raw, vault.wrap_aad(row))
                db.add(row)
                made.append((row, raw))
            await db.flush()
        for row, raw in made:
            vault.remember_key(row.id, raw)
            vault._current.put(("subject", scope, row.subject), row.id)


async def seed(conversations: int, messages: int) -> dict[str, Any]:
    """The demo workspace, its contacts, conversations and messages; returns ids and the
    owner's credentials."""
    from sqlalchemy import insert, text

    from connectx.contacts.service import phone_index
    from connectx.db.session import unit_of_work
    from connectx.models.contact import Contact
    from connectx.models.conversation import Conversation
    from connectx.models.message import Message
    from connectx.privacy.vault import Vault
    from connectx.workspaces import demo

    async with unit_of_work() as db:
        seeded = await demo.seed(db)
    assert seeded.channel_id is not None
    ws, channel_id = seeded.workspace_id, seeded.channel_id
    now = datetime.now(UTC)
    started = time.perf_counter()
    per = max(1, messages // conversations)
    contact_ids: list[int] = []
    bodies: dict[int, list[bytes]] = {}
    async with unit_of_work() as db:
        rows = [
            {"workspace_id": ws, "created_at": now, "updated_at": now, "last_inbound_at": now}
            for _ in range(conversations)
        ]
        result = await db.execute(insert(Contact).returning(Contact.id), rows)
        contact_ids = [int(r) for r in result.scalars()]
    keys_started = time.perf_counter()
    await bulk_subject_keys(ws, [f"contact:{cid}" for cid in contact_ids])
    for start in range(0, len(contact_ids), 500):
        async with unit_of_work() as db:
            vault = Vault(db)
            for i, cid in enumerate(contact_ids[start : start + 500], start=start):
                subject = f"contact:{cid}"
                phone = f"+1555{i:07d}"
                contact = await db.get(Contact, cid)
                assert contact is not None
                contact.name_enc = await vault.encrypt(
                    ws, subject, "contacts.name", f"Customer {i}"
                )
                contact.phone_enc = await vault.encrypt(ws, subject, "contacts.phone", phone)
                contact.phone_index = await phone_index(vault, ws, phone)
                bodies[cid] = [
                    await vault.encrypt(
                        ws,
                        subject,
                        "messages.body",
                        f"Message {k} about order A-{i}: is it on its way? https://shop.example/o/{i}",
                    )
                    for k in range(BODIES_PER_CONTACT)
                ]
    keys_s = time.perf_counter() - keys_started
    async with unit_of_work() as db:
        conv_rows = []
        for i, cid in enumerate(contact_ids):
            last = now - timedelta(minutes=conversations - i)
            conv_rows.append(
                {
                    "workspace_id": ws,
                    "channel_id": channel_id,
                    "contact_id": cid,
                    "status": "open",
                    "opened_at": last - timedelta(days=30),
                    "last_inbound_at": last,
                    "last_message_at": last,
                    "created_at": last,
                    "updated_at": last,
                }
            )
        result = await db.execute(insert(Conversation).returning(Conversation.id), conv_rows)
        conversation_ids = [int(r) for r in result.scalars()]
    insert_started = time.perf_counter()
    from connectx.db.engine import get_engine

    engine = get_engine()
    pnid = "100000000000001"
    columns = [
        "workspace_id",
        "channel_id",
        "conversation_id",
        "contact_id",
        "phone_number_id",
        "wamid",
        "direction",
        "type",
        "status",
        "status_rank",
        "body_enc",
        "forwarded",
        "frequently_forwarded",
        "sent_at",
        "created_at",
    ]

    def rows_of(ci: int) -> list[tuple[Any, ...]]:
        cid, conv = contact_ids[ci], conversation_ids[ci]
        last = now - timedelta(minutes=conversations - ci)
        out = []
        for k in range(per):
            at = last - timedelta(minutes=5 * (per - 1 - k))
            inbound = k % 2 == 0
            out.append(
                (
                    ws,
                    channel_id,
                    conv,
                    cid,
                    pnid,
                    f"wamid.B{conv}.{k}",
                    "in" if inbound else "out",
                    "text",
                    "received" if inbound else "read",
                    0 if inbound else 3,
                    bodies[cid][k % BODIES_PER_CONTACT],
                    False,
                    False,
                    at,
                    at,
                )
            )
        return out

    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            for start in range(0, conversations, 200):
                records = [
                    r for ci in range(start, min(conversations, start + 200)) for r in rows_of(ci)
                ]
                await driver.copy_records_to_table("messages", records=records, columns=columns)
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    else:
        stmt = insert(Message.__table__)
        async with engine.begin() as conn:
            for start in range(0, conversations, 200):
                batch = [
                    dict(zip(columns, r, strict=True))
                    for ci in range(start, min(conversations, start + 200))
                    for r in rows_of(ci)
                ]
                await conn.execute(stmt, batch)
            await conn.execute(text("ANALYZE"))
    return {
        "workspace_id": ws,
        "owner": seeded.owner_email,
        "password": seeded.password,
        "conversation_ids": conversation_ids,
        "messages": per * conversations,
        "seed_s": time.perf_counter() - started,
        "keys_s": keys_s,
        "insert_s": time.perf_counter() - insert_started,
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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from connectx.app import create_app

    info = await seed(args.conversations, args.messages)
    app = create_app()
    timed = Timed(app)
    clock = DecryptClock()
    clock.install()
    results: dict[str, Any] = {"seed": {k: v for k, v in info.items() if k.endswith("_s")}}
    results["seed"]["messages"] = info["messages"]
    results["seed"]["conversations"] = len(info["conversation_ids"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=timed)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            r = await client.post(
                "/api/v1/auth/signin", json={"email": info["owner"], "password": info["password"]}
            )
            assert r.status_code == 200, r.text
            middle = info["conversation_ids"][len(info["conversation_ids"]) // 2]
            newest = info["conversation_ids"][-1]
            html = {"accept": "text/html"}
            htmx = {"accept": "text/html", "hx-request": "true"}
            pages = [
                ("floor: signed-in GET /api/v1/me (middleware + session)", "/api/v1/me", {}),
                ("inbox page (GET /inbox)", "/inbox?status=open", html),
                ("list fragment (GET /inbox/list)", "/inbox/list?status=open", htmx),
                ("list fragment, page 2 (cursor)", None, htmx),
                ("thread page (GET /inbox/c/{id}, newest)", f"/inbox/c/{newest}", html),
                ("thread page (GET /inbox/c/{id}, middle)", f"/inbox/c/{middle}", html),
                ("thread fragment (htmx)", f"/inbox/c/{middle}", htmx),
            ]
            rows = []
            for name, url, headers in pages:
                if url is None:
                    first = await client.get("/inbox/list?status=open", headers=htmx)
                    marker = "cursor="
                    at = first.text.find(marker)
                    cursor = first.text[at + len(marker) :].split('"', 1)[0]
                    url = f"/inbox/list?status=open&cursor={cursor}"
                clock.total, clock.calls = 0.0, 0
                times, body = await measure(client, timed, url, args.requests, headers)
                decrypt_ms = clock.total * 1000 / (args.requests + max(3, args.requests // 10))
                ceiling = Timed(ceiling_app(body))
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=ceiling), base_url="http://bench"
                ) as bare:
                    ceiling_times, _ = await measure(bare, ceiling, "/", args.requests)
                median = statistics.median(times)
                cpu_median = statistics.median(timed.cpu)  # type: ignore[attr-defined]
                ceiling_cpu = statistics.median(ceiling.cpu)  # type: ignore[attr-defined]
                rows.append(
                    {
                        "what": name,
                        "bytes": len(body.encode()),
                        "cpu_ms": cpu_median,
                        "cpu_ratio": cpu_median / max(ceiling_cpu, 1e-6),
                        "median_ms": median,
                        "p95_ms": pct(times, 95),
                        "ceiling_median_ms": statistics.median(ceiling_times),
                        "ratio": median / statistics.median(ceiling_times),
                        "decrypt_ms": decrypt_ms,
                        "decrypt_calls": clock.calls
                        // (args.requests + max(3, args.requests // 10)),
                        "decrypt_share": decrypt_ms / statistics.mean(times),
                    }
                )
                print(f"{name}: median {median:.1f} ms, p95 {pct(times, 95):.1f} ms", flush=True)
    results["pages"] = rows
    return results


def markdown(args: argparse.Namespace, results: dict[str, Any], load: str) -> str:
    seed = results["seed"]
    lines = [
        f"## {args.db}, {seed['messages']:,} messages in {seed['conversations']:,} conversations "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Seeding: {seed['seed_s']:.0f} s in all (data keys and sealing {seed['keys_s']:.0f} s, "
        f"bulk insert of the messages {seed['insert_s']:.0f} s). Load average before: {load}. "
        f"{args.requests} requests per line after a warm-up; server time per request.",
        "",
        "| request | bytes | median ms | p95 ms | CPU ms (median) | ceiling median ms | ratio "
        "(wall) | ratio (CPU) | decrypt ms (calls) | decrypt share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["pages"]:
        lines.append(
            f"| {r['what']} | {r['bytes']:,} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{r['cpu_ms']:.1f} | {r['ceiling_median_ms']:.2f} | {r['ratio']:.0f}x | "
            f"{r['cpu_ratio']:.0f}x | {r['decrypt_ms']:.1f} ({r['decrypt_calls']}) | "
            f"{r['decrypt_share']:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100, help="measured requests per line")
    parser.add_argument("--out", type=Path, help="append a Markdown report here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="connectx-bench-inbox-"))
    os.environ.update(
        {
            "CONNECTX_DATA_DIR": str(work / "data"),
            "CONNECTX_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "CONNECTX_BACKUP_SCHEDULE": "false",
            "CONNECTX_LOG_LEVEL": "WARNING",
            "CONNECTX_GRAPH_BASE_URL": "http://127.0.0.1:9",  # nothing leaves the machine
        }
    )
    for name in ("CONNECTX_BROKER_URL", "CONNECTX_REDIS_URL"):
        os.environ.pop(name, None)
    dbname = None
    if args.db == "postgres":
        dbname = f"connectx_bench_inbox_{os.getpid()}"
        subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {dbname}"], check=True)
        os.environ["CONNECTX_DATABASE_URL"] = (
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
        )
    else:
        os.environ["CONNECTX_DATABASE_URL"] = f"sqlite+aiosqlite:///{work / 'data' / 'c.db'}"
    (work / "data").mkdir(parents=True)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    try:
        from connectx.db import migrate

        migrate.upgrade(os.environ["CONNECTX_DATABASE_URL"])
        results = asyncio.run(run(args))
        report = markdown(args, results, load)
        print(report)
        if args.out:
            with args.out.open("a") as fh:
                fh.write("\n" + report)
    finally:
        if dbname:
            subprocess.run(
                ["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"],
                check=False,
            )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
