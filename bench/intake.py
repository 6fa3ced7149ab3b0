"""Webhook-intake benchmark (issue 3, "Speed"): the real platform against a bare ceiling, in one
run, on SQLite or PostgreSQL.

    .venv/bin/python bench/intake.py --db sqlite --duration 15
    .venv/bin/python bench/intake.py --db postgres --duration 15 --out bench/results/x.md

What it does (bench/README.md has the details and how to read the figures):

1. Starts ``connectx serve`` in a subprocess with its own temporary data directory (PostgreSQL:
   a fresh database on 127.0.0.1:5432), after ``connectx migrate`` and ``connectx demo``, which
   connects the simulator's demo number with a known app secret. Starts the bare ceiling
   (bench/ceiling.py: uvicorn + an ASGI app that only checks the HMAC and answers 200).
2. Builds signed bodies with the simulator's payload builders (connectx.simulator.payloads):
   one inbound text message then three status callbacks (sent, delivered, read) of an outbound
   message, repeated; batches of 1 and of 50 updates per POST.
3. Throughput: wrk (closed loop, pre-signed bodies, bench/post.lua) against the ceiling and the
   platform, batch 1 and batch 50. Latency at fixed offered rates: an open-loop client (raw
   asyncio protocol, keep-alive) in a separate process (latency measured from each request's
   scheduled send time, so a slow server cannot hide queueing). Receive-to-stored lag:
   ``webhook_events.processed_at - received_at`` of the events of the phase. Peak RSS: VmHWM
   of the platform process (and, beside it, of its processing process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
MAX_CONNECTIONS = 256  # the open-loop client's keep-alive connections


# -- bodies ---------------------------------------------------------------------------------------
def build_bodies(path: Path, updates: int, batch: int, contacts: int, seed: int) -> int:
    """Write ``updates`` webhook updates, ``batch`` per POST, as lines "<signature>\\t<body>".
    Every fourth update is an inbound text message from one of ``contacts`` customers; the other
    three are the sent/delivered/read callbacks of one outbound message. Returns the POST count."""
    from connectx.integrations.whatsapp.signature import sign
    from connectx.simulator import payloads
    from connectx.simulator import settings as sim

    meta = payloads.metadata(sim.DEMO_DISPLAY_NUMBER, sim.DEMO_PHONE_NUMBER_ID)
    now = int(time.time())
    posts = 0
    with path.open("w") as fh:
        pending: list[payloads.Update] = []
        for n in range(updates):
            k = (seed + n // 4) % contacts
            wa_id = f"1555{k:07d}"
            block = payloads.contact_block(
                wa_id=wa_id,
                user_id=None,
                name=f"Bench Customer {k}",
                username=None,
                hide_phone=False,
                hidden_as="omit",
            )
            if n % 4 == 0:
                message = {
                    **payloads.sender_fields(wa_id, None, False, "omit"),
                    "id": payloads.new_wamid(),
                    "timestamp": str(now),
                    "type": "text",
                    "text": {"body": "Hello, is my order ready? I can pick it up today."},
                }
                value = payloads.messages_value(meta, contacts=[block], messages=[message])
                outbound = payloads.new_wamid()
            else:
                status = {
                    "id": outbound,
                    "status": ("sent", "delivered", "read")[n % 4 - 1],
                    "timestamp": str(now),
                    **payloads.recipient_fields(wa_id, None, False, "omit"),
                    "pricing": payloads.pricing("service", "regular", False),
                }
                value = payloads.messages_value(meta, contacts=[block], statuses=[status])
            pending.append(payloads.Update(sim.DEMO_APP_ID, sim.DEMO_WABA_ID, "messages", value))
            if len(pending) == batch or n == updates - 1:
                body = payloads.encode(payloads.envelope(pending))
                fh.write(sign(sim.DEMO_APP_SECRET, body) + "\t" + body.decode() + "\n")
                posts += 1
                pending = []
    return posts


def read_bodies(path: Path) -> list[tuple[str, bytes]]:
    out = []
    with path.open() as fh:
        for line in fh:
            sig, body = line.rstrip("\n").split("\t", 1)
            out.append((sig, body.encode()))
    return out


# -- the open-loop client (runs in its own process: `intake.py client ...`) -----------------------
class _Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends pre-built requests and reads the status
    line and ``Content-Length`` of each answer: a few microseconds per request, so the client can
    offer thousands of requests per second from a fraction of a core (aiohttp could not hold
    3,300/s on a shared core, bench/results/intake-2026-11-27.md)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at)
            done = end + 4 + int(head[at + 15 : stop if stop >= 0 else None])
            if len(self.buffer) < done:
                return
        elif b"transfer-encoding: chunked" in head:
            done = end + 4
            while True:  # chunks: "<hex size>\r\n<data>\r\n", the last of size 0
                line_end = self.buffer.find(b"\r\n", done)
                if line_end < 0:
                    return
                size = int(self.buffer[done:line_end].split(b";")[0], 16)
                done = line_end + 2 + size + 2
                if len(self.buffer) < done:
                    return
                if size == 0:
                    break
        else:
            done = end + 4
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[done:]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    async def request(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


def raw_requests(url: str, bodies: list[tuple[str, bytes]]) -> list[bytes]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/json\r\nX-Hub-Signature-256: {sig}\r\n"
        "Content-Length: {n}\r\n\r\n"
    )
    return [head.format(sig=sig, n=len(body)).encode() + body for sig, body in bodies]


async def open_loop(url: str, bodies: list[tuple[str, bytes]], rate: float, duration: float) -> Any:
    """Offer ``rate`` requests/s for ``duration`` s whatever the answers' pace; a request's
    latency runs from its scheduled time (no coordinated omission). Up to ``MAX_CONNECTIONS``
    keep-alive connections; a request due while all are busy waits (and that wait counts)."""
    from urllib.parse import urlsplit

    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    n = min(len(bodies), int(rate * duration))
    raws = raw_requests(url, bodies[:n])
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    idle: list[_Http] = []
    opened = 0
    backlog: deque[tuple[int, float]] = deque()
    tasks: set[asyncio.Task[None]] = set()

    async def connection() -> _Http:
        nonlocal opened
        if idle:
            return idle.pop()
        opened += 1
        _, proto = await loop.create_connection(_Http, host, port)
        return proto

    async def post(i: int, due: float) -> None:
        conn: _Http | None = None
        try:
            conn = await connection()
            async with asyncio.timeout(30):
                key = str(await conn.request(raws[i]))
        except (TimeoutError, OSError) as exc:
            key = type(exc).__name__
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = None
        latencies.append(loop.time() - due)
        statuses[key] = statuses.get(key, 0) + 1
        if conn is not None and not conn.closed:
            idle.append(conn)
        if backlog:
            start(*backlog.popleft())

    def start(i: int, due: float) -> None:
        task = loop.create_task(post(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    t0 = loop.time() + 0.1
    i = 0
    max_late = 0.0
    while i < n:
        now = loop.time()
        while i < n and t0 + i / rate <= now:
            due = t0 + i / rate
            max_late = max(max_late, now - due)
            if len(tasks) < MAX_CONNECTIONS:
                start(i, due)
            else:
                backlog.append((i, due))
            i += 1
        if i < n:
            # At least 1 ms: uvloop's timers count whole milliseconds, so a shorter sleep came
            # back at once and the client spun (~17,000 turns/s, about half a core at 3,300/s,
            # taken from the two cores it shares with what it measures). Requests due meanwhile
            # go out together, up to 1 ms late, and that lateness counts in their latency.
            await asyncio.sleep(min(max(t0 + i / rate - loop.time(), 0.001), 0.002))
    sent_in = loop.time() - t0
    while tasks or backlog:
        if tasks:
            await asyncio.gather(*list(tasks))
        elif backlog:
            start(*backlog.popleft())
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    latencies.sort()
    return {
        "posts": n,
        "offered_posts_per_s": rate,
        "achieved_posts_per_s": n / sent_in if sent_in > 0 else 0.0,
        "max_send_late_ms": max_late * 1000,
        "connections": opened,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "statuses": statuses,
    }


def client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="intake.py client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True, help="POSTs per second")
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    result = asyncio.run(open_loop(args.url, read_bodies(args.bodies), args.rate, args.duration))
    print(json.dumps(result))


# -- helpers ------------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def vm(pid: int, field: str) -> float:
    """A /proc/<pid>/status memory field in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def shared_view(pid: int) -> tuple[float, float]:
    """PSS (each shared page divided among the processes mapping it) and USS (pages of this
    process only) of ``pid`` now, in MB (/proc/<pid>/smaps_rollup); RSS counts the shared
    libraries' pages in every process that maps them."""
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, _, rest = line.partition(":")
            fields[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields.get("Pss", 0) / 1024, uss / 1024


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (``connectx serve``'s processing process)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def processing_stopped(server_pid: int) -> Iterator[None]:
    """The platform's processing process stopped (SIGSTOP) while the ceiling is measured: a
    platform phase whose drain was cut at ``--max-drain`` leaves it working through the
    backlog, which slowed the next ceiling phase and flattered the ratio
    (bench/results/intake-2026-12-05d.md, -05e.md). Measuring every ceiling first instead
    put minutes between a ceiling and its platform phase, and the machine's drift between them
    moved the ratio more than the backlog did (session 15)."""
    kids = children(server_pid)
    for pid in kids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in kids:
            os.kill(pid, signal.SIGCONT)


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def run_wrk(url: str, bodies: Path, connections: int, duration: int) -> dict[str, Any]:
    env = {**os.environ, "BODIES": str(bodies), "WRK_THREADS": "1"}
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "post.lua"),
        url,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    fields = dict(re.findall(r"(\w+)=([\d.]+)", " ".join(re.findall(r"BENCH (.*)", out))))
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "posts_per_s": rps,
        "requests": total,
        "p50_ms": float(fields["p50_ms"]),
        "p99_ms": float(fields["p99_ms"]),
        "non2xx": int(fields["non2xx"]),
        "errors": int(fields["errors"]),
    }


def run_client(url: str, bodies: Path, rate: float, duration: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "client", "--url", url, "--bodies", str(bodies)]
    cmd += ["--rate", str(rate), "--duration", str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


# -- the platform's database --------------------------------------------------------------------
def _has_table(path: str, name: str) -> bool:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return bool(
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
            ).fetchall()
        )
    finally:
        conn.close()


class Store:
    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        # NullPool: every query runs under its own asyncio.run (no connection outlives a loop).
        # SQLite: raw events live in the events file once migration 0007r has run
        # (connectx.db.events_file; a tree from before keeps them in the data file).
        data = make_url(url).database if url.startswith("sqlite") else None
        events = f"{os.path.splitext(data)[0]}-events.db" if data else None
        self._events_url = f"sqlite+aiosqlite:///{events}" if events else None
        self._data = data
        self._create = lambda u: create_async_engine(u, poolclass=NullPool)
        self.engine = self._create(url)
        self._events: Any = None

    @property
    def events(self) -> Any:
        """The engine that holds ``webhook_events``."""
        if self._events is None:
            apart = self._events_url and self._data and not _has_table(self._data, "webhook_events")
            self._events = self._create(self._events_url) if apart else self.engine
        return self._events

    async def last_id(self) -> int:
        from sqlalchemy import text

        async with self.events.connect() as conn:
            return int(
                (
                    await conn.execute(text("SELECT coalesce(max(id), 0) FROM webhook_events"))
                ).scalar_one()
            )

    async def pending(self) -> int:
        from sqlalchemy import text

        async with self.events.connect() as conn:
            q = text("SELECT count(*) FROM webhook_events WHERE status = 'pending'")
            return int((await conn.execute(q)).scalar_one())

    async def lags(self, after: int) -> tuple[list[float], dict[str, int]]:
        from sqlalchemy import select

        from connectx.models.webhook_event import WebhookEvent

        async with self.events.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        WebhookEvent.received_at, WebhookEvent.processed_at, WebhookEvent.status
                    ).where(WebhookEvent.id > after)
                )
            ).all()
        lags = sorted(
            (p - r).total_seconds() for r, p, _ in rows if p is not None and r is not None
        )
        by_status: dict[str, int] = {}
        for *_, s in rows:
            by_status[s] = by_status.get(s, 0) + 1
        return lags, by_status

    async def counts(self) -> dict[str, int]:
        from sqlalchemy import text

        out = {}
        async with self.engine.connect() as conn:
            for table in ("messages", "message_status_events", "contacts", "conversations"):
                q = text(f"SELECT count(*) FROM {table}")
                out[table] = int((await conn.execute(q)).scalar_one())
        return out


def drain(store: Store, timeout: float = 300.0) -> float:
    """Seconds until no event is pending (the processor caught up)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if asyncio.run(store.pending()) == 0:
            return time.monotonic() - start
        time.sleep(0.2)
    return float("inf")


# -- the run ------------------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--duration", type=int, default=15, help="seconds per phase")
    parser.add_argument(
        "--connections",
        default="64,256,512",
        help="wrk connections, comma-separated: each throughput phase runs at each count, and "
        "the ratio compares each target's best (its peak throughput)",
    )
    parser.add_argument("--rate", type=float, default=3300, help="webhooks/s (goal rate)")
    parser.add_argument("--low-rate", type=float, default=100, help="a rate we can sustain")
    parser.add_argument("--contacts", type=int, default=200, help="distinct customers")
    parser.add_argument("--max-updates", type=int, default=60_000, help="bodies per phase")
    parser.add_argument("--out", type=Path, help="append a Markdown report here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the platform in each batch size's first throughput phase",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary data directory (and the PostgreSQL database)",
    )
    parser.add_argument(
        "--max-drain",
        type=float,
        default=300.0,
        help="seconds to wait for the backlog after a phase; past it the phase records what "
        "is still pending and the next phase starts beside the processor's catching up",
    )
    parser.add_argument(
        "--phases",
        default="throughput,fixed",
        help="which phases after the warm-up: 'throughput' (or 'throughput1' / 'throughput50': "
        "one batch size only), 'fixed' (or 'low': only its --low-rate phase), comma-separated",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="throughput: run each connection count's ceiling and platform phases this many "
        "times, alternately (each target's best counts: the machine's noise moves both)",
    )
    parser.add_argument("--label", default="", help="a name for the run in the report")
    parser.add_argument(
        "--processing",
        choices=("process", "loop"),
        default="process",
        help="webhook processing in serve's child process (the default) or in its own loop",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so `finally` cleans up
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    from connectx.simulator import settings as sim

    work = Path(tempfile.mkdtemp(prefix="connectx-bench-"))
    env = {
        **os.environ,
        "CONNECTX_DATA_DIR": str(work / "data"),
        "CONNECTX_BACKUP_SCHEDULE": "false",
        "CONNECTX_LOG_LEVEL": "WARNING",
        "CONNECTX_PROCESSING_PROCESS": "true" if args.processing == "process" else "false",
    }
    env.pop("CONNECTX_BROKER_URL", None)
    dbname = None
    if args.db == "postgres":
        dbname = f"connectx_bench_{os.getpid()}"
        subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {dbname}"], check=True)
        env["CONNECTX_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
        db_url = env["CONNECTX_DATABASE_URL"]
    else:
        db_url = f"sqlite+aiosqlite:///{work / 'data' / 'connectx.db'}"
    connectx = str(VENV_BIN / "connectx")
    subprocess.run([connectx, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([connectx, "demo"], env=env, check=True, capture_output=True)

    port, ceiling_port = free_port(), free_port()
    log = (work / "serve.log").open("w")
    server = subprocess.Popen(
        [connectx, "serve", "--no-migrate", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ceiling = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "ceiling.py"),
            "--port",
            str(ceiling_port),
            "--secret",
            sim.DEMO_APP_SECRET,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    platform_url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
    ceiling_url = f"http://127.0.0.1:{ceiling_port}/"
    results: dict[str, Any] = {
        "db": args.db + (f" ({args.label})" if args.label else ""),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_before": load_average(),
        "phases": [],
    }
    store = Store(db_url)
    seed = 0
    sizes: dict[Path, int] = {}

    def bodies(name: str, updates: int, batch: int) -> Path:
        nonlocal seed
        path = work / f"{name}.bodies"
        sizes[path] = build_bodies(path, updates, batch, args.contacts, seed)
        seed += updates // 4
        return path

    def wrk(url: str, path: Path, connections: int) -> dict[str, Any]:
        r = run_wrk(url, path, connections, args.duration)
        r["wrk_connections"] = connections
        r["distinct_bodies"] = sizes[path]  # fewer than requests: the list wrapped (repeats)
        return r

    def record(phase: dict[str, Any]) -> None:
        phase["rss_mb"] = round(vm(server.pid, "VmRSS"), 1)
        phase["peak_rss_mb"] = round(vm(server.pid, "VmHWM"), 1)
        kids = children(server.pid)
        if kids:  # the processing process (its own peak, beside the web process's)
            phase["processing_peak_rss_mb"] = round(sum(vm(c, "VmHWM") for c in kids), 1)
        # now (not peak): PSS and USS of the web process and its processing process, summed
        views = [shared_view(p) for p in (server.pid, *kids)]
        phase["pss_mb"] = round(sum(v[0] for v in views), 1)
        phase["uss_mb"] = round(sum(v[1] for v in views), 1)
        phase["load"] = load_average()
        results["phases"].append(phase)
        print(json.dumps(phase), flush=True)

    def platform_phase(name: str, batch: int, run: Any) -> None:
        before = asyncio.run(store.last_id())
        spy = None
        first = args.connections.split(",")[0]  # (profiled at the first connection count)
        if args.profile and name == f"throughput, batch {batch}, {first} connections":
            args.profile.mkdir(parents=True, exist_ok=True)
            out = args.profile / f"intake-{args.db}-throughput-batch{batch}.collapsed"
            spy_cmd = [str(VENV_BIN / "py-spy"), "record", "--pid", str(server.pid), "--threads"]
            spy_cmd += ["--duration", str(args.duration), "--format", "raw", "--output", str(out)]
            spy = subprocess.Popen(
                spy_cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        web0, kids0 = cpu_s(server.pid), sum(cpu_s(c) for c in children(server.pid))
        phase = {"name": name, "target": "platform", "batch": batch, **run()}
        web1 = cpu_s(server.pid)
        if spy is not None:
            spy.wait(60)
        # (the warm-up always drains: what follows must see returning customers)
        limit = 300.0 if name.startswith("warm-up") else args.max_drain
        phase["drain_s"] = round(drain(store, limit), 2)
        if phase["drain_s"] == float("inf"):  # cut short: lag figures are of what was done
            phase["pending_after_max_drain"] = asyncio.run(store.pending())
        posts = phase.get("requests", phase.get("posts", 0))
        if posts:  # the web process's CPU per POST during the phase (load hardly moves it)
            phase["web_cpu_us_per_post"] = round((web1 - web0) / posts * 1e6, 1)
            kids = sum(cpu_s(c) for c in children(server.pid)) - kids0
            if kids > 0:  # ... and the processing process's per event, drain included
                phase["processing_cpu_us_per_post"] = round(kids / posts * 1e6, 1)
        lags, by_status = asyncio.run(store.lags(before))
        phase["events"] = by_status
        if lags:  # (none when the phase's events all wait behind an earlier backlog)
            phase["lag_p50_ms"] = round(pct(lags, 50) * 1000, 1)
            phase["lag_p99_ms"] = round(pct(lags, 99) * 1000, 1)
        record(phase)

    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        wait_http(ceiling_url)
        dur = args.duration
        cap = args.max_updates

        # Warm-up: every customer writes once (a new contact costs a data key), then a pause.
        warm = bodies("warm", args.contacts * 4, 50)
        platform_phase("warm-up (new contacts)", 50, lambda: run_client(platform_url, warm, 20, 60))

        wanted = set(args.phases.split(","))
        # The fixed rates first: a closed-loop phase leaves a backlog the processor needs minutes
        # (batches of 50: hours, on a slow machine) to clear, and the lag at a fixed rate is only
        # the platform's when nothing older is queued before it.
        fixed = [(1, args.low_rate), (1, args.rate), (50, args.rate)] if "fixed" in wanted else []
        if "low" in wanted and "fixed" not in wanted:  # a short look at the low rate only
            fixed = [(1, args.low_rate)]
        for batch, rate in fixed:
            posts = rate / batch
            n = int(rate * dur) + batch
            path = bodies(f"fixed{batch}-{rate:.0f}", min(n, cap), batch)
            name = f"fixed {rate:.0f} webhooks/s, batch {batch}"
            platform_phase(name, batch, lambda p=path, r=posts: run_client(platform_url, p, r, dur))
            if batch == 1 and rate == args.rate:  # what the client alone adds, for reference
                path = bodies("fixed-ceiling", min(n, cap), batch)
                r = run_client(ceiling_url, path, posts, dur)
                record({"name": name, "target": "ceiling", "batch": batch, **r})
        batches = (1, 50) if "throughput" in wanted else ()
        batches = batches or tuple(b for b in (1, 50) if f"throughput{b}" in wanted)
        sweep = [int(c) for c in args.connections.split(",")]
        for batch in batches:
            path = bodies(f"tp{batch}", cap, batch)
            for connections, run_no in itertools.product(sweep, range(args.repeat)):
                name = f"throughput, batch {batch}, {connections} connections"
                name += f", run {run_no + 1}" if args.repeat > 1 else ""
                cpu0 = cpu_s(ceiling.pid)
                with processing_stopped(server.pid):
                    r = wrk(ceiling_url, path, connections)
                r["cpu_us_per_post"] = round((cpu_s(ceiling.pid) - cpu0) / r["requests"] * 1e6, 1)
                record({"name": name, "target": "ceiling", "batch": batch, **r})
                run = lambda p=path, c=connections: wrk(platform_url, p, c)  # noqa: E731
                platform_phase(name, batch, run)
                path = bodies(f"tp{batch}-{connections}", cap, batch)  # fresh wamids from here

        results["stored"] = asyncio.run(store.counts())
    finally:
        results["load_after"] = load_average()
        server.terminate()
        ceiling.terminate()
        server.wait(30)
        ceiling.wait(30)
        asyncio.run(store.engine.dispose())
        if dbname and not args.keep:
            subprocess.run(
                ["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"]
            )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report = markdown(results)
    print(report)
    if args.out:
        with args.out.open("a") as fh:
            fh.write(report + "\n")


def drained(phase: dict[str, Any]) -> str:
    if "pending_after_max_drain" in phase:
        return f"cut, {phase['pending_after_max_drain']:,} pending"
    return str(phase.get("drain_s", ""))


def markdown(results: dict[str, Any]) -> str:
    phases = results["phases"]
    lines = [
        f"### {results['db']} — {results['started']}",
        "",
        f"Load average before: {results['load_before']}, after: {results['load_after']}.",
        "",
        "| phase | target | webhooks/s | POSTs/s | p50 ms | p99 ms | non-200 | lag p50 ms "
        "| lag p99 ms | drain s | peak RSS MB (web + processing) "
        "| CPU µs per POST (web + processing) | PSS / USS MB now (both) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        posts = p.get("posts_per_s", p.get("achieved_posts_per_s", 0.0))
        bad = p.get("non2xx", 0) + p.get("errors", 0)
        if "statuses" in p:
            bad = sum(v for k, v in p["statuses"].items() if k != "200")
        lines.append(
            f"| {p['name']} | {p['target']} | {posts * p['batch']:,.0f} | {posts:,.0f} "
            f"| {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {bad} | {p.get('lag_p50_ms', '')} "
            f"| {p.get('lag_p99_ms', '')} | {drained(p)} | {p['peak_rss_mb']}"
            + (f" + {p['processing_peak_rss_mb']}" if "processing_peak_rss_mb" in p else "")
            + f" | {p.get('web_cpu_us_per_post', p.get('cpu_us_per_post', ''))}"
            + (f" + {p['processing_cpu_us_per_post']}" if "processing_cpu_us_per_post" in p else "")
            + f" | {p.get('pss_mb', '')} / {p.get('uss_mb', '')} |"
        )
    if any(p["name"].startswith("throughput") for p in phases):
        lines += ["", "Throughput ratio (each target's best over the connection counts):"]
    for batch in (1, 50):
        tp = [p for p in phases if p["name"].startswith(f"throughput, batch {batch},")]
        best = {
            target: max((p for p in tp if p["target"] == target), key=lambda p: p["posts_per_s"])
            for target in ("ceiling", "platform")
            if any(p["target"] == target for p in tp)
        }
        if len(best) == 2:
            ceil, plat = best["ceiling"], best["platform"]
            same = ", ".join(
                f"{p['posts_per_s'] / c['posts_per_s']:.2f} at {c['wrk_connections']}"
                for c, p in zip(tp[::2], tp[1::2], strict=True)
            )
            lines.append(
                f"- batch {batch}: **{plat['posts_per_s'] / ceil['posts_per_s']:.2f} x the "
                f"ceiling** (platform {plat['posts_per_s']:,.0f} POSTs/s at "
                f"{plat['wrk_connections']} connections, ceiling {ceil['posts_per_s']:,.0f} at "
                f"{ceil['wrk_connections']}); at the same connection count: {same}"
            )
    if "stored" in results:
        lines += ["", f"Stored at the end: {results['stored']}."]
    lines += ["", "<details><summary>raw</summary>", "", "```json"]
    lines += [json.dumps(phases, indent=1), "```", "</details>", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
