"""Outbound sender benchmark (issue 4, "Speed"): the real pacer in a ``connectx worker`` process
against ``connectx simulator`` configured at 1,000 messages/s per number, with ratios against
ceilings measured in the same run.

    .venv/bin/python bench/outbound.py --one 100000 --ten 10000 --kill 5000 \\
        --out bench/results/outbound-<date>.md

Phases (each on a fresh backlog; one SQLite database under a temporary data directory, or
PostgreSQL with ``--db postgres``):

1. **one number**: ``--one`` template messages queued on one number (rate 1,000/s); one worker
   sends them. Figure: steady rate (accepted by the simulator between 10 % and 90 % of the run)
   / 1,000.
2. **ceilings**: a bare aiohttp client posts the sender's requests (the same JSON bytes and
   headers, fresh recipients) with as many in flight as the sender allows (``MAX_INFLIGHT``,
   256) to the same simulator, on one number and on ten numbers; the simulator's own capacity
   shows here. Also with 64 in flight (the ceiling until 2026-12-04), for comparison.
3. **ten numbers**: ``--ten`` messages on each of ten numbers at once, then the ten-number
   ceiling again; figure: the platform's aggregate rate / the mean of the two ceilings (the
   machine's speed drifts over a run: one measurement before was up to 44 % off).
4. **kill**: ``--kill`` messages on one number, a worker SIGKILLed when about half are accepted,
   then restarted; ``connectx serve`` receives the simulator's status callbacks. Figure: the
   simulator accepted each message exactly once (callback data counted).

Set-up shortcut (stated in the results): outbox rows are written directly (one contact's key
seals every body, each row has its own recipient), without message rows, so the figures are the
sender's: claim, decrypt, pace, POST, record. Queueing through the API is measured elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RATE = 1000
PNIDS = [f"2000000000{n:05d}" for n in range(1, 11)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="cx-bench-outbound-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "CONNECTX_DATA_DIR": str(self.tmp / "var"),
            "CONNECTX_MASTER_KEY": secrets.token_urlsafe(32),
            "CONNECTX_LOG_LEVEL": "WARNING",
            "CONNECTX_LOG_JSON": "false",
            "CONNECTX_PERIODIC_TASKS": "false",
            "CONNECTX_BACKUP_SCHEDULE": "false",
            "CONNECTX_EMBEDDED_WORKER": "false",
            "CONNECTX_OUTBOX_LEASE_S": "5",
            "CONNECTX_OUTBOX_SETTLE_S": "5",
        }
        self.pg_db: str | None = None
        # Meta's servers do not share our CPUs: with --pin the simulator gets CPUs of its own
        # in every phase and everything else (this process and its bare client, the worker,
        # serve, the bench database's PostgreSQL backends) runs on the others.
        cpus = sorted(os.sched_getaffinity(0))
        self.sim_cpus: set[int] | None = None
        self.our_cpus: set[int] | None = None
        if args.pin and len(cpus) >= 2:
            half = len(cpus) // 2
            self.sim_cpus, self.our_cpus = set(cpus[half:]), set(cpus[:half])
            os.sched_setaffinity(0, self.our_cpus)  # inherited by the children started below
        if args.db == "postgres":
            self.pg_db = f"connectx_bench_out_{os.getpid()}"
            subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {self.pg_db}"], check=True)
            self.env["CONNECTX_DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.pg_db}"
        os.environ.update(self.env)

    def start(
        self, name: str, argv: list[str], cpus: set[int] | None = None, **env: str
    ) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [PY, "-m", "connectx", *argv],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        self.procs.append(proc)
        return proc

    def simulator(self, statuses: str, callback: str | None = None) -> str:
        port = free_port()
        config = {
            "numbers": [
                {
                    "phone_number_id": p,
                    "display_phone_number": f"+1555010{i:04d}",
                    "throughput": RATE,
                }
                for i, p in enumerate(PNIDS)
            ],
            "statuses": {"progress": statuses, "delay_ms": 0},
            "batching": {"max_updates": 200, "window_ms": 100},
            "pair_rate": {"interval_s": 6.0, "burst": 5},
        }
        path = self.tmp / f"sim-{port}.json"
        path.write_text(json.dumps(config))
        argv = ["simulator", "--config", str(path), "--port", str(port)]
        if callback:
            argv += ["--callback-url", callback]
        self.sim_proc = self.start(f"simulator-{port}", argv, cpus=self.sim_cpus)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_sim/stats")
        return url

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)
        if self.pg_db:
            subprocess.run(
                ["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)"],
                check=False,
            )
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- set-up through the platform's own services ------------------------------------------------
async def seed_numbers() -> dict[str, int]:
    """The demo workspace with the ten simulator numbers connected, each at 1,000/s."""
    from connectx.accounts.principal import Principal
    from connectx.channels import service as channels
    from connectx.db.session import unit_of_work
    from connectx.kit import clock
    from connectx.outbound import repository as repo
    from connectx.simulator import settings as sim
    from connectx.workspaces import demo

    async with unit_of_work() as db:
        seeded = await demo.seed(db)
        owner = Principal(actor="system", workspace_id=seeded.workspace_id, role="owner")
        out: dict[str, int] = {}
        for i, pnid in enumerate(PNIDS):
            channel = await channels.connect(
                db,
                owner,
                channels.NewChannel(
                    phone_number_id=pnid,
                    display_phone_number=f"+1555010{i:04d}",
                    waba_id=sim.DEMO_WABA_ID,
                    access_token=sim.DEMO_ACCESS_TOKEN,
                    app_id=sim.DEMO_APP_ID,
                    app_secret=sim.DEMO_APP_SECRET,
                    verify_token=sim.DEMO_VERIFY_TOKEN,
                    name=f"bench {i}",
                ),
            )
            state = await repo.ensure_sending_state(
                db, channel.id, channel.workspace_id, RATE, clock.now()
            )
            state.rate_per_s = RATE
            out[pnid] = channel.id
    return out


def graph_body(to: str, callback: str) -> dict[str, Any]:
    """What the platform sends for an approved template without parameters."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
        "biz_opaque_callback_data": callback,
    }


async def queue(channels: dict[str, int], per_number: int, tag: str) -> None:
    """``per_number`` template messages on each given number, as committed outbox rows."""
    from sqlalchemy import insert

    from connectx.contacts.service import Contacts
    from connectx.db.session import unit_of_work
    from connectx.integrations.whatsapp.schemas import Identity
    from connectx.kit import clock
    from connectx.models.channel import Channel
    from connectx.models.outbox import OutboxMessage
    from connectx.outbound.service import PAYLOAD
    from connectx.privacy.vault import Vault

    async with unit_of_work() as db:
        first = await db.get(Channel, next(iter(channels.values())))
        assert first is not None
        ws = first.workspace_id
        contact = await Contacts(db, "system").resolve(ws, Identity(phone="+16505550000"))
        assert contact is not None
        contact_id = contact.id
    subject = f"contact:{contact_id}"
    for k, channel_id in enumerate(channels.values()):
        for start in range(0, per_number, 2000):
            async with unit_of_work() as db:
                vault = Vault(db)
                now = clock.now()
                rows = []
                for n in range(start, min(per_number, start + 2000)):
                    callback = secrets.token_hex(16)
                    body = graph_body(f"+1{k + 2}{n:09d}", callback)
                    rows.append(
                        {
                            "workspace_id": ws,
                            "channel_id": channel_id,
                            "contact_id": contact_id,
                            "kind": "message",
                            "recipient_key": f"{tag}{k}-{n}",
                            "callback_data": callback,
                            "payload_enc": await vault.encrypt(
                                ws, subject, PAYLOAD, json.dumps(body)
                            ),
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_by": "system:bench",
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                await db.execute(insert(OutboxMessage), rows)


async def outbox_left() -> int:
    from sqlalchemy import func, select

    from connectx.db.session import unit_of_work
    from connectx.models.outbox import OutboxMessage

    async with unit_of_work() as db:
        q = select(func.count()).where(OutboxMessage.status.in_(("pending", "sending")))
        return int((await db.execute(q)).scalar_one())


async def stats(http: aiohttp.ClientSession, sim: str) -> dict[str, Any]:
    async with http.get(f"{sim}/_sim/stats") as r:
        return dict(await r.json())


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds per thread (by thread id) of a process so far."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = cpu_s_of(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def cpu_s_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu_s(database: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL server process serving ``database`` (its backends:
    the server's share of the work, which the worker's own CPU does not show)."""
    if not database:
        return {}
    q = f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"
    found = subprocess.run(["psql", PG_ADMIN, "-tAc", q], capture_output=True, text=True)
    out: dict[int, float] = {}
    for pid in found.stdout.split():
        try:
            out[int(pid)] = cpu_s(int(pid))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return out


def row_updates(database: str | None) -> int | None:
    """Updates of outbox rows so far (PostgreSQL's statistics): a sent row costs two (its
    claim and its outcome); one put back unsent (a lease too short for how long it waited in
    the sender's queue, the pair rate) and claimed again two more."""
    if not database:
        return None
    q = "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'outbox_messages'"
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    found = subprocess.run(["psql", url, "-tAc", q], capture_output=True, text=True)
    return int(found.stdout.strip() or 0)


def pin_backends(database: str | None, cpus: set[int] | None) -> None:
    """Keep the PostgreSQL backends serving ``database`` on ``cpus`` (--pin)."""
    if not database or not cpus:
        return
    q = f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"
    found = subprocess.run(["psql", PG_ADMIN, "-tAc", q], capture_output=True, text=True)
    for pid in found.stdout.split():
        try:
            os.sched_setaffinity(int(pid), cpus)
        except (OSError, ValueError):
            continue


def thread_names(pid: int) -> dict[int, str]:
    """Python thread names by thread id (``py-spy dump``; Python 3.11 does not name OS threads)."""
    spy = [str(ROOT / ".venv" / "bin" / "py-spy"), "dump", "--pid", str(pid), "--nonblocking"]
    found = subprocess.run(spy, capture_output=True, text=True, check=False).stdout
    names: dict[int, str] = {}
    for line in found.splitlines():
        # Thread 12345 (idle): "outbox-pacer"
        if line.startswith("Thread ") and '"' in line:
            tid = line.split()[1]
            if tid.isdigit():
                names[int(tid)] = line.split('"')[1]
    return names


def by_thread(
    pid: int, before: dict[int, float], after: dict[int, float], n: int
) -> dict[str, float]:
    """CPU ms per message of each group of threads between two snapshots (SQLite connection
    threads, the pacer, the webhook processor, the job runtime, ...)."""
    names = thread_names(pid)
    out: dict[str, float] = {}
    for tid, cpu in after.items():
        name = names.get(tid, "ended or unnamed")
        name = "sqlite connections" if "_connection_worker_thread" in name else name
        name = "job runtime" if name.startswith("Thread-") else name
        out[name] = out.get(name, 0.0) + 1000 * (cpu - before.get(tid, 0.0)) / max(1, n)
    # Threads that started after the first snapshot count whole; those that ended before the
    # second are missing (SQLite connections opened and closed by the pool): count them.
    out["threads ended (not counted)"] = float(len([t for t in before if t not in after]))
    return {k: round(v, 4) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v > 0.0005}


def py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` with py-spy (PyPI) into collapsed stacks, without pausing it."""
    spy = [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(pid), "--format", "raw"]
    spy += ["--rate", "200", "--nonblocking", "--threads", "-o", str(out)]
    return subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def watch(
    http: aiohttp.ClientSession,
    sim: str,
    total: int,
    base: int,
    limit_s: float,
    pids: dict[str, int],
    profile: Path | None = None,
    database: str | None = None,
    pin: set[int] | None = None,
) -> dict[str, Any]:
    """Sample the simulator's accepted count until ``total`` more were accepted; the steady rate
    between 10 % and 90 % of them, and the CPU each process in ``pids`` used per accepted
    message over the same window (load-independent, unlike the rate). With ``profile``, py-spy
    samples the worker over that window."""
    samples: list[tuple[float, int, dict[str, float]]] = []
    deadline = time.monotonic() + limit_s
    spy: subprocess.Popen[bytes] | None = None
    sim_spy: subprocess.Popen[bytes] | None = None
    threads: list[tuple[int, dict[int, float]]] = []
    server: list[dict[int, float]] = []
    while time.monotonic() < deadline:
        n = int((await stats(http, sim))["accepted"]) - base
        if pin and len(samples) % 4 == 1:  # the worker's pool may have opened a connection
            pin_backends(database, pin)
        samples.append((time.monotonic(), n, {k: cpu_s(p) for k, p in pids.items()}))
        if not threads and n >= 0.1 * total:
            threads.append((n, thread_cpu_s(pids["worker"])))
            server.append(database_cpu_s(database))
        if len(threads) == 1 and n >= 0.9 * total:
            threads.append((n, thread_cpu_s(pids["worker"])))
            server.append(database_cpu_s(database))
        if profile is not None and spy is None and n >= 0.1 * total:
            spy = py_spy(pids["worker"], profile)
            sim_spy = py_spy(pids["simulator"], profile.with_suffix(".simulator.txt"))
        if profile is not None and spy is not None and n >= 0.9 * total:
            for one in (spy, sim_spy):
                if one is not None:
                    one.send_signal(signal.SIGINT)
                    one.wait(30)
            profile = None
        if n >= total:
            break
        await asyncio.sleep(0.25)
    done = samples[-1][1]
    lo = next((s for s in samples if s[1] >= 0.1 * total), samples[0])
    hi = next((s for s in samples if s[1] >= 0.9 * total), samples[-1])
    rate = (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else 0.0
    first = next((s for s in samples if s[1] > 0), samples[0])
    sent = max(1, hi[1] - lo[1])
    cpu: dict[str, Any] = {f"{k}_cpu_ms_per_msg": 1000 * (hi[2][k] - lo[2][k]) / sent for k in pids}
    if len(threads) == 2:  # the worker's CPU per message by thread, over (about) the same window
        (n0, t0), (n1, t1) = threads
        cpu["worker_threads_ms_per_msg"] = by_thread(pids["worker"], t0, t1, n1 - n0)
        if database:
            used = sum(v - server[0].get(pid, 0.0) for pid, v in server[1].items())
            cpu["database_cpu_ms_per_msg"] = 1000 * used / max(1, n1 - n0)
    return {"accepted": done, "rate": rate, "seconds": samples[-1][0] - first[0], **cpu}


async def bare_client(
    sim: str,
    pnids: list[str],
    total: int,
    prefix: str,
    concurrency: int,
    sim_pid: int | None = None,
    profile: Path | None = None,
) -> dict[str, float]:
    """The ceiling: the sender's requests posted by a bare aiohttp client, ``concurrency`` in
    flight. Like the sender's (graph.Messages): the JSON body as bytes (encoded before the clock
    starts), the URL and headers built once per number, one pool of ``concurrency`` connections;
    fresh recipients (``prefix`` + the message's number) so that the simulator creates a
    customer per message as it does for the sender's. Messages/s, and the client's (and the
    simulator's) CPU milliseconds per message."""
    from multidict import CIMultiDict
    from yarl import URL

    from connectx.simulator import settings as simcfg

    headers = CIMultiDict(
        {"Authorization": f"Bearer {simcfg.DEMO_ACCESS_TOKEN}", "Content-Type": "application/json"}
    )
    urls = [URL(f"{sim}/v25.0/{pnid}/messages") for pnid in pnids]
    bodies = [
        json.dumps(graph_body(f"+{prefix}{n:08d}", secrets.token_hex(16))).encode()
        for n in range(total)
    ]
    counter = iter(range(total))
    ok = 0

    async def one(http: aiohttp.ClientSession) -> None:
        nonlocal ok
        for n in counter:
            async with http.post(urls[n % len(urls)], data=bodies[n], headers=headers) as r:
                await r.read()
                ok += r.status == 200

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        started, cpu = time.monotonic(), time.process_time()
        sim_cpu = cpu_s(sim_pid) if sim_pid else 0.0
        spy = py_spy(sim_pid, profile) if sim_pid and profile else None
        await asyncio.gather(*(one(http) for _ in range(concurrency)))
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        out = {
            "rate": ok / (time.monotonic() - started),
            "client_cpu_ms_per_msg": 1000 * (time.process_time() - cpu) / max(1, ok),
            "accepted": ok,
        }
        if sim_pid:
            out["simulator_cpu_ms_per_msg"] = 1000 * (cpu_s(sim_pid) - sim_cpu) / max(1, ok)
        return out


async def extra_claims() -> int:
    """Claims beyond one per row of the phase (rows put back unsent and claimed again: a lease
    too short for how long they waited, the pair rate, retries)."""
    from sqlalchemy import func, select

    from connectx.db.session import unit_of_work
    from connectx.models.outbox import OutboxMessage

    async with unit_of_work() as db:
        q = select(func.coalesce(func.sum(OutboxMessage.attempts - 1), 0))
        return int((await db.execute(q)).scalar_one())


async def phases(run: Run) -> dict[str, Any]:
    a = run.args
    out: dict[str, Any] = {"load_before": load_average(), "db": a.db}
    out["cpus"] = {"simulator": sorted(run.sim_cpus or []), "others": sorted(run.our_cpus or [])}
    migrate = [PY, "-m", "connectx", "migrate"]
    await asyncio.to_thread(subprocess.run, migrate, cwd=ROOT, env=run.env, check=True)
    sim = run.simulator("none")
    os.environ["CONNECTX_GRAPH_BASE_URL"] = run.env["CONNECTX_GRAPH_BASE_URL"] = sim
    from connectx.config import reset_settings

    reset_settings()
    channels = await seed_numbers()
    async with aiohttp.ClientSession() as http:
        # 1. one number
        one = {PNIDS[0]: channels[PNIDS[0]]}
        t = time.monotonic()
        await queue(one, a.one, "one")
        out["queue_s"] = time.monotonic() - t
        base = int((await stats(http, sim))["accepted"])
        worker = run.start("worker-one", ["worker", "--concurrency", "1"])
        pids = {"worker": worker.pid, "simulator": run.sim_proc.pid}
        prof = a.profile / "one.txt" if a.profile else None
        out["one"] = await watch(
            http, sim, a.one, base, a.timeout, pids, prof, run.pg_db, run.our_cpus
        )
        run.stop(worker)
        out["one"]["left"] = await outbox_left()
        out["one"]["repeated"] = (await stats(http, sim))["repeated_callback_data"]
        out["one"]["extra_claims"] = await extra_claims()
        # 2. ceilings (the worker is stopped: the simulator serves the bare client alone), at
        # the sender's in-flight bound; the ten-number one again after phase 3 (the machine's
        # speed drifts: the figure is the ten numbers' rate over the mean of both)
        await asyncio.sleep(6.5)  # let the pair/throughput buckets of the simulator refill
        from connectx.outbound.pacer import MAX_INFLIGHT  # the sender's bound on requests

        sim_pid = run.sim_proc.pid
        out["bare_one"] = await bare_client(
            sim, PNIDS[:1], min(a.one, 20000), "190", MAX_INFLIGHT, sim_pid
        )
        ten_n = min(10 * a.ten, 50000)
        spied = a.profile / "bare.simulator.txt" if a.profile else None
        out["bare_ten_before"] = await bare_client(
            sim, PNIDS, ten_n, "191", MAX_INFLIGHT, sim_pid, spied
        )
        # the ceiling as measured until 2026-12-04 (64 in flight), for comparison
        out["bare_ten_64"] = await bare_client(sim, PNIDS, ten_n, "193", 64, sim_pid)
        # 3. ten numbers
        await queue(channels, a.ten, "ten")
        before = await stats(http, sim)
        base = int(before["accepted"])
        updates = row_updates(run.pg_db)
        worker = run.start("worker-ten", ["worker", "--concurrency", "1"])
        pids = {"worker": worker.pid, "simulator": run.sim_proc.pid}
        prof = a.profile / "ten.txt" if a.profile else None
        out["ten"] = await watch(
            http, sim, 10 * a.ten, base, a.timeout, pids, prof, run.pg_db, run.our_cpus
        )
        run.stop(worker)
        out["ten"]["left"] = await outbox_left()
        out["ten"]["extra_claims"] = await extra_claims() - out["one"]["extra_claims"]
        await asyncio.sleep(1.0)  # PostgreSQL's statistics are sent at most every 0.5 s
        if updates is not None:
            out["ten"]["row_updates"] = (row_updates(run.pg_db) or 0) - updates
        final = await stats(http, sim)
        out["ten"]["repeated"] = final["repeated_callback_data"] - out["one"]["repeated"]
        out["ten"]["rejected"] = {  # by the simulator during the phase, by error code
            code: n - before["rejected"].get(code, 0)
            for code, n in final["rejected"].items()
            if n > before["rejected"].get(code, 0)
        }
        after = final["accepted_by_number"]
        out["ten"]["by_number"] = sorted(
            after[p] - before["accepted_by_number"].get(p, 0) for p in after
        )
        await asyncio.sleep(2.0)
        out["bare_ten_after"] = await bare_client(sim, PNIDS, ten_n, "192", MAX_INFLIGHT, sim_pid)
        out["in_flight"] = MAX_INFLIGHT
        out["ceiling_one"] = out["bare_one"]["rate"]
        out["ceiling_ten"] = (out["bare_ten_before"]["rate"] + out["bare_ten_after"]["rate"]) / 2
    run.stop(run.sim_proc)
    out["load_after"] = load_average()
    if not a.kill:  # --kill 0: no kill phase (a quicker run while developing)
        return out
    # 4. kill -9 halfway, restart; serve takes the status callbacks
    port = free_port()
    serve = run.start("serve", ["serve", "--no-migrate", "--port", str(port)])
    wait_http(f"http://127.0.0.1:{port}/readyz")
    sim = run.simulator("sent", callback=f"http://127.0.0.1:{port}/webhooks/whatsapp")
    os.environ["CONNECTX_GRAPH_BASE_URL"] = run.env["CONNECTX_GRAPH_BASE_URL"] = sim
    reset_settings()
    async with aiohttp.ClientSession() as http:
        await queue({PNIDS[1]: channels[PNIDS[1]]}, a.kill, "kill")
        victim = run.start("worker-victim", ["worker", "--concurrency", "1"])
        while int((await stats(http, sim))["accepted"]) < a.kill // 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        victim.kill()
        victim.wait(10)
        at_kill = int((await stats(http, sim))["accepted"])
        worker = run.start("worker-again", ["worker", "--concurrency", "1"])
        deadline = time.monotonic() + a.timeout
        while await outbox_left() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        final = await stats(http, sim)
        run.stop(worker)
        out["kill"] = {
            "queued": a.kill,
            "accepted_at_kill": at_kill,
            "accepted": final["accepted"],
            "repeated_callback_data": final["repeated_callback_data"],
            "left": await outbox_left(),
        }
    run.stop(serve)
    out["load_after"] = load_average()
    return out


def markdown(r: dict[str, Any], args: argparse.Namespace) -> str:
    one, ten = r["one"], r["ten"]
    kill = r.get("kill") or {  # --kill 0: no kill phase
        "queued": 0,
        "accepted_at_kill": 0,
        "accepted": 0,
        "repeated_callback_data": 0,
        "left": 0,
    }
    before, after, b64 = r["bare_ten_before"], r["bare_ten_after"], r["bare_ten_64"]
    once = kill["accepted"] == kill["queued"] and not kill["repeated_callback_data"]
    verdict = "exactly once" if once else "NOT exactly once"
    lines = [
        "# Outbound sender benchmark",
        "",
        f"`.venv/bin/python bench/outbound.py --db {args.db} --one {args.one} --ten {args.ten} "
        f"--kill {args.kill}{'' if args.pin else ' --no-pin'}`; load average "
        f"{r['load_before']} before, {r['load_after']} after. Simulator numbers at {RATE} "
        f"messages/s each. "
        + (
            f"CPUs: the simulator on {r['cpus']['simulator']}, everything else (bench client, "
            f"worker, serve, the bench database's PostgreSQL backends) on {r['cpus']['others']}."
            if r["cpus"]["simulator"]
            else "CPUs: all shared (--no-pin)."
        ),
        "",
        "| phase | measured | ceiling | ratio | goal |",
        "|---|---|---|---|---|",
        f"| one number, {one['accepted']:,} messages | {one['rate']:.0f}/s | allowed {RATE}/s | "
        f"{one['rate'] / RATE:.2f} | ≥ 0.98 |",
        f"| bare aiohttp client, one number | {r['ceiling_one']:.0f}/s | allowed {RATE}/s | "
        f"{r['ceiling_one'] / RATE:.2f} | (the simulator's own limit) |",
        f"| ten numbers, {ten['accepted']:,} messages | {ten['rate']:.0f}/s | bare client "
        f"{r['ceiling_ten']:.0f}/s | {ten['rate'] / r['ceiling_ten']:.2f} | ≥ 0.8 |",
        f"| SIGKILL halfway ({kill['accepted_at_kill']:,} accepted at the kill), restarted | "
        f"{kill['accepted']:,} accepted for {kill['queued']:,} queued, "
        f"{kill['repeated_callback_data']} repeated | — | {verdict} | exactly once |",
        "",
        f"Rows left unsent: one {one['left']}, ten {ten['left']}, kill {kill['left']}; "
        f"sent twice (repeated callback data): one {one['repeated']}, ten {ten['repeated']}. "
        f"Queueing {args.one:,} outbox rows took {r['queue_s']:.1f} s. "
        f"Ten numbers, accepted per number: {ten['by_number']}.",
        "",
        f"Ten-number ceiling: the bare client ({r['in_flight']} in flight, as the sender) "
        f"{before['rate']:.0f}/s before the ten-number phase and {after['rate']:.0f}/s after "
        f"it (ratios {ten['rate'] / before['rate']:.2f} and {ten['rate'] / after['rate']:.2f}); "
        f"the figure is against their mean. With 64 in flight (the ceiling until 2026-12-04) "
        f"{b64['rate']:.0f}/s before the phase (ratio {ten['rate'] / b64['rate']:.2f}). "
        f"Ten numbers: rows claimed again after a failed attempt {ten.get('extra_claims', 0)}, "
        f"refused by the simulator {ten.get('rejected', {})}"
        + (
            f", outbox row updates {ten['row_updates']:,} for {ten['accepted']:,} sent (2 each "
            "when none is put back unsent)."
            if "row_updates" in ten
            else "."
        ),
        "",
        "CPU per accepted message (user + system, all threads; the worker and the simulator over "
        "the same 10-90 % window; much less load-dependent than the rates):",
        "",
        "| phase | sender worker | simulator | PostgreSQL server |",
        "|---|---|---|---|",
        f"| one number, sender | {one['worker_cpu_ms_per_msg']:.3f} ms | "
        f"{one['simulator_cpu_ms_per_msg']:.3f} ms | "
        f"{one.get('database_cpu_ms_per_msg', 0):.3f} ms |",
        f"| ten numbers, sender | {ten['worker_cpu_ms_per_msg']:.3f} ms | "
        f"{ten['simulator_cpu_ms_per_msg']:.3f} ms | "
        f"{ten.get('database_cpu_ms_per_msg', 0):.3f} ms |",
        "",
        "| ceiling phase | bare client | simulator |",
        "|---|---|---|",
    ]
    for label, b in (
        (f"one number, {r['in_flight']} in flight", r["bare_one"]),
        (f"ten numbers, {r['in_flight']} in flight, before", before),
        (f"ten numbers, {r['in_flight']} in flight, after", after),
        ("ten numbers, 64 in flight, before", b64),
    ):
        lines.append(
            f"| {label} | {b['client_cpu_ms_per_msg']:.3f} ms | "
            f"{b.get('simulator_cpu_ms_per_msg', 0):.3f} ms |"
        )
    for name, phase in (("one number", one), ("ten numbers", ten)):
        if "database_cpu_ms_per_msg" in phase:
            lines.append(
                f"\nPostgreSQL server processes of the bench database, {name}: "
                f"{phase['database_cpu_ms_per_msg']:.3f} ms per message."
            )
        if "worker_threads_ms_per_msg" in phase:
            parts = ", ".join(f"{k} {v:g}" for k, v in phase["worker_threads_ms_per_msg"].items())
            lines.append(f"\nWorker CPU ms per message by thread, {name}: {parts}.")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--one", type=int, default=100_000, help="messages on one number")
    parser.add_argument("--ten", type=int, default=10_000, help="messages per number, ten numbers")
    parser.add_argument("--kill", type=int, default=5_000, help="messages in the SIGKILL phase")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give the simulator (Meta) half the CPUs and everything else the other half "
        "(default: on; --no-pin: everything shares every CPU, as until 2026-12-04)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the worker's steady window into DIR/{one,ten}.txt (and the simulator's "
        "into DIR/{one,ten,bare}.simulator.txt)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the children on the way out
    run = Run(args)
    try:
        results = asyncio.run(phases(run))
    finally:
        run.close()
    text = markdown(results, args)
    print(text)
    print(json.dumps(results, indent=1, default=str), file=sys.stderr)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
