"""What the platform's PostgreSQL connections are doing, sampled (issue 3: where does the lag go?).

    .venv/bin/python bench/pg_activity.py --database 'connectx_bench_%' --every 0.02 &
    .venv/bin/python bench/intake.py --db postgres --phases fixed --duration 15
    kill -INT %1     # prints the histogram

Every ``--every`` seconds reads ``pg_stat_activity`` of the databases matching ``--database`` (a
LIKE pattern; bench/intake.py names its database ``connectx_bench_<pid>``) and counts each
connection's (state, wait event type, wait event, first 100 characters of its statement). On
SIGINT or SIGTERM prints the counts, most frequent first. "active" with no wait event is the
server working on a statement; "idle in transaction" with ClientRead is the server waiting for
the client (the platform's process working between statements). Statements only, never their
parameters. Sampling every 20 ms costs the server a little: compare runs sampled alike.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal

import asyncpg

QUERY = """
SELECT state, coalesce(wait_event_type, '-'), coalesce(wait_event, '-'),
       left(regexp_replace(query, '\\s+', ' ', 'g'), 100)
FROM pg_stat_activity WHERE datname LIKE $1 AND pid <> pg_backend_pid()
"""


async def sample(dsn: str, pattern: str, every: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    conn = await asyncpg.connect(dsn)
    counts: collections.Counter[tuple[str, ...]] = collections.Counter()
    samples = 0
    try:
        while not stop.is_set():
            samples += 1
            for state, kind, event, statement in await conn.fetch(QUERY, pattern):
                counts[("idle",) if state == "idle" else (state, kind, event, statement)] += 1
            await asyncio.sleep(every)
    finally:
        await conn.close()
    print(f"samples: {samples}")
    for key, n in counts.most_common(40):
        print(n, " | ".join(k or "" for k in key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="connectx_bench_%", help="a LIKE pattern")
    parser.add_argument("--every", type=float, default=0.02, help="seconds between samples")
    args = parser.parse_args()
    asyncio.run(sample(args.dsn, args.database, args.every))


if __name__ == "__main__":
    main()
