"""Run ``connectx worker`` as real separate processes, the way operators do."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
RABBITMQ_URL = os.environ.get("CONNECTX_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("CONNECTX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Workers:
    """Starts workers sharing the test's database (and broker queue, when one is set)."""

    logs: Path
    env: dict[str, str] = field(default_factory=dict)
    broker: str = "no-broker"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, **extra_env: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env, **extra_env}
        log = (self.logs / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "connectx", "worker", "--concurrency", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def output(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')}" for p in sorted(self.logs.iterdir())
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        with socket.create_connection(address, 2):
            return True
    except OSError:
        return False


def delete_rabbitmq_queues(queue: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(queue=name)
    finally:
        connection.close()


def delete_redis_queues(queue: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"connectx:*{queue}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


BROKERS = {
    "rabbitmq": (RABBITMQ_URL, 5672, "rabbitmq-server -detached", delete_rabbitmq_queues),
    "redis": (REDIS_URL, 6379, "redis-server --daemonize yes ...", delete_redis_queues),
}


@pytest.fixture(params=["no-broker", "rabbitmq", "redis"])
def workers(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workers]:
    """Worker processes on the test database: polling it without a broker (works on SQLite and
    PostgreSQL), or consuming RabbitMQ or Redis (with PostgreSQL: the distributed deployment),
    on a queue unique to this test so parallel runs never take each other's messages."""
    from connectx.config import reset_settings

    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "CONNECTX_TASK_MODULES": json.dumps(["tests.jobs.tasks"]),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "CONNECTX_JOB_LEASE_S": "30",  # the kill test shortens it for the worker it kills
        "CONNECTX_RECONCILE_INTERVAL_S": "0.3",
        "CONNECTX_LOG_JSON": "false",
    }
    queue = None
    broker = request.param
    if broker != "no-broker":
        if not os.environ.get("CONNECTX_TEST_DATABASE_URL"):
            pytest.skip(f"the {broker} variant runs with PostgreSQL (CONNECTX_TEST_DATABASE_URL)")
        url, port, start, _ = BROKERS[broker]
        if not reachable(url, port):
            pytest.fail(
                f"{broker} is not reachable at {url}: start it (`{start}`, "
                "see ../shared/reference/services.md)"
            )
        queue = f"cx_test_{uuid.uuid4().hex[:12]}"
        env["CONNECTX_BROKER_URL"] = url
        env["CONNECTX_BROKER_QUEUE"] = queue
    monkeypatch.delenv("CONNECTX_SMTP_URL", raising=False)
    # This test process publishes wake-ups like a web node would (its settings match the workers').
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    group = Workers(logs=logs, env=env, broker=broker)
    try:
        yield group
    finally:
        group.stop_all()
        if queue is not None:
            BROKERS[broker][3](queue)
        reset_settings()


def wait_exit(proc: subprocess.Popen[bytes], sig: int | None, timeout: float = 20) -> int:
    """Send ``sig`` (if any) and wait for the process to exit; its exit code."""
    if sig is not None:
        proc.send_signal(sig)
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"worker did not stop within {timeout}s of signal {sig}")
        time.sleep(0.05)
    return proc.returncode


SIGTERM = signal.SIGTERM
SIGINT = signal.SIGINT
SIGKILL = signal.SIGKILL
