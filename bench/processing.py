"""Webhook processing cost per event, in this process, without HTTP (issue 3, "Speed").

    .venv/bin/python bench/processing.py --db sqlite --events 2000 --claim 50
    .venv/bin/python bench/processing.py --db postgres --events 2000 --claim 1 --profile p.out

Stores ``--events`` raw webhook events the way intake does (bench/intake.py's bodies: one inbound
text message then the sent/delivered/read callbacks of an outbound message, ``--batch`` updates
per event), then runs the processor over them with claims of ``--claim`` events, as the
embedded processor or a ``connectx worker`` does, with the after-commit listeners a server
registers (real-time events, round-robin assignment). It reports what does not depend on the
machine's load: **CPU seconds of this process per event** (``time.process_time``; SQLite runs
in this process, PostgreSQL's own CPU is not counted), **SQL statements per event** and
**transactions (COMMITs) per event**, beside wall time. ``--profile`` writes a cProfile file.

A claim of 1 or 4 is what a processor gets when intake keeps interrupting it (SQLite turns,
``intake/turns.py``); 50 is a whole batch.

``--instructions`` counts instead the **instructions executed per event** in this process
(valgrind's callgrind, instrumenting the measured phase only; Debian's ``valgrind``): on these
shared machines CPU time varies by ±10 % between runs of the same code, while the instruction
count repeats to ~0.1 %, so a change of a few per cent can be seen in one run of each tree
(session 25). It runs ~40x slower: a few hundred events are enough.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
sys.path.insert(0, str(ROOT / "bench"))


class Counts:
    def __init__(self) -> None:
        self.statements = 0
        self.commits = 0

    def attach(self, engine: Any) -> None:
        from sqlalchemy import event

        def on_execute(*_: Any) -> None:
            self.statements += 1

        def on_commit(*_: Any) -> None:
            self.commits += 1

        event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
        event.listen(engine.sync_engine, "commit", on_commit)


async def store(lines: list[tuple[str, bytes]]) -> None:
    """Store bodies as the webhook endpoint does (group commits of 256), not measured."""
    from sqlalchemy import select

    from connectx.db.session import unit_of_work
    from connectx.intake.batcher import GroupCommitBatcher
    from connectx.models.channel import MetaApp

    async with unit_of_work() as db:
        app_id = (await db.execute(select(MetaApp.id))).scalars().first()
    assert app_id is not None
    batcher = GroupCommitBatcher()
    await asyncio.gather(*(batcher.submit(app_id, body) for _, body in lines))
    await batcher.close()


async def _server_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving this benchmark's database (the
    server is local; other databases' backends are not counted)."""
    from intake import cpu_s  # bench/intake.py
    from sqlalchemy import text

    from connectx.db.session import read_only

    async with read_only() as db:
        pids = (
            await db.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        ).scalars()
        return {pid: cpu_s(pid) for pid in pids}


async def main_async(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import intake as bench_intake  # bench/intake.py

    from connectx.db.engine import get_engine
    from connectx.inbox import tasks as _inbox_tasks  # noqa: F401 (registers the listeners)
    from connectx.intake import processor

    counts = Counts()
    counts.attach(get_engine())
    if args.max_items:  # the update budget's ceiling (memory: what one claim decodes at most)
        processor.MAX_ITEMS = args.max_items
    if os.environ.get(UNDER_CALLGRIND):  # ~50x slower: the time budget would cut transactions
        from connectx.intake.dispatch import BatchProcessor

        BatchProcessor._time_to_stop = lambda self, elapsed: False  # type: ignore[method-assign]

    async def process_all() -> int:
        total = 0
        limit = args.claim or None  # the default: what a server claims
        while n := await processor.process_available(limit=limit):
            total += n
        return total

    # As in a server: its processor (and its sender) quiet the garbage collector at start.
    try:
        from connectx.kit.collector import quiet_garbage_collector
    except ImportError:  # an older tree (before/after runs): its server's sender did it
        from connectx.outbound.pacer import quiet_garbage_collector
    quiet_garbage_collector()
    warm = work / "warm.txt"
    bench_intake.build_bodies(warm, args.contacts * 4, 1, args.contacts, 0)
    await store(bench_intake.read_bodies(warm))
    await process_all()  # new contacts, compiled statements, warm caches: not measured

    bodies = work / "bodies.txt"
    updates = args.events * args.batch
    posts = bench_intake.build_bodies(bodies, updates, args.batch, args.contacts, 7)
    await store(bench_intake.read_bodies(bodies))
    counts.statements = counts.commits = 0
    rss_before = _vm("VmRSS")
    _reset_peak()  # peak RSS from here
    # CPU time of this thread (the event loop: Python, SQLAlchemy, crypto) as the profiler's
    # clock, so the profile is a CPU breakdown, not wall time on a shared machine.
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    spy = _spy(args.spy) if args.spy else None
    server = await _server_cpu() if args.db == "postgres" else {}
    cpu, wall, loop_cpu = time.process_time(), time.perf_counter(), time.thread_time()
    if profiler:
        profiler.enable()
    _callgrind("on")
    done = await process_all()
    _callgrind("off")
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if spy:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    loop_cpu = time.thread_time() - loop_cpu
    server_cpu = 0.0
    if args.db == "postgres":
        after = await _server_cpu()
        server_cpu = sum(after[pid] - server.get(pid, 0.0) for pid in after)
    return {
        "events": posts,
        "processed": done,
        "updates": posts * args.batch,
        "cpu_ms_per_event": 1000 * cpu / posts,
        "wall_ms_per_event": 1000 * wall / posts,
        "loop_cpu_ms_per_event": 1000 * loop_cpu / posts,
        "server_cpu_ms_per_event": 1000 * server_cpu / posts,
        "cpu_us_per_update": 1e6 * cpu / (posts * args.batch),
        "statements_per_event": counts.statements / posts,
        "commits_per_event": counts.commits / posts,
        "updates_per_cpu_s": posts * args.batch / cpu if cpu else 0.0,
        "rss_mb_before": rss_before,
        "peak_rss_mb": _vm("VmHWM"),
    }


def _callgrind(state: str) -> None:
    """Switch callgrind's instrumentation of this process on or off (when run under it)."""
    if os.environ.get(UNDER_CALLGRIND):
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True)


UNDER_CALLGRIND = "CONNECTX_BENCH_UNDER_CALLGRIND"


def _instructions(argv: list[str], events: int) -> None:
    """Run this benchmark again under callgrind and print its instructions per event."""
    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as out:
        found = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                __file__,
                *argv,
            ],
            env={**os.environ, UNDER_CALLGRIND: "1", "PYTHONMALLOC": "malloc"},
            capture_output=True,
            text=True,
            check=True,
        )
    print(found.stdout.strip())
    collected = re.search(r"Collected : (\d+)", found.stderr)
    if collected is None:
        sys.exit("callgrind reported no instruction count")
    print(f"instructions_per_event={int(collected.group(1)) // events}")


def _reset_peak() -> None:
    """Reset this process's VmHWM to its current RSS (Linux)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _vm(field: str) -> float:
    """This process's /proc status field (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _spy(path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling this process (all threads, on-CPU only) for the measured phase only,
    as collapsed stacks (``--format raw``): unlike cProfile it does not inflate code that makes
    many small calls."""
    spy = subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(os.getpid()),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            path,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached before the clock starts
    return spy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=2000, help="events (POSTs) to process")
    parser.add_argument("--batch", type=int, default=1, help="updates per event")
    parser.add_argument(
        "--claim",
        type=int,
        default=0,
        help="events claimed per transaction (default: the server's)",
    )
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument(
        "--max-items", type=int, default=0, help="the processor's MAX_ITEMS (default: its own)"
    )
    parser.add_argument("--profile", help="write a cProfile file here (CPU clock of the loop)")
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the PostgreSQL database (EXPLAIN it after)"
    )
    parser.add_argument("--spy", help="write py-spy's collapsed stacks of the measured phase")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per event under valgrind's callgrind (deterministic)",
    )
    args = parser.parse_args()
    if args.instructions:
        _instructions([a for a in sys.argv[1:] if a != "--instructions"], args.events)
        return

    work = Path(tempfile.mkdtemp(prefix="connectx-proc-bench-"))
    os.environ.update(
        {
            "CONNECTX_DATA_DIR": str(work / "data"),
            "CONNECTX_BACKUP_SCHEDULE": "false",
            "CONNECTX_LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("CONNECTX_BROKER_URL", None)
    os.environ.pop("CONNECTX_REDIS_URL", None)
    dbname = None
    if args.db == "postgres":
        dbname = f"connectx_pbench_{os.getpid()}"
        subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {dbname}"], check=True)
        os.environ["CONNECTX_DATABASE_URL"] = (
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
        )
    try:
        connectx = str(VENV_BIN / "connectx")
        subprocess.run([connectx, "migrate"], check=True, capture_output=True)
        subprocess.run([connectx, "demo"], check=True, capture_output=True)
        import uvloop

        result = uvloop.run(main_async(args, work))
        label = f"{args.db} batch {args.batch} claim {args.claim or 'default'}"
        print(
            label,
            " ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
            ),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if dbname and args.keep_db:
            print(f"kept database {dbname}")
        elif dbname:
            subprocess.run(
                ["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"],
                check=False,
            )


if __name__ == "__main__":
    main()
