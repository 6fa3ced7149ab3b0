"""The background runtime: Dramatiq carries wake-ups (a job id), the database carries the work.

* Embedded (``CONNECTX_BROKER_URL`` unset): an in-process StubBroker and a Dramatiq Worker run
  inside ``connectx serve``; a committed job wakes it directly.
* Distributed (``amqp://…`` → RabbitMQ, ``redis://…`` → Redis): web processes only publish
  wake-ups; ``connectx worker`` processes consume them.

Every process that runs work also runs the reconciler, which re-wakes due jobs nobody woke
recently (a lost message, a retry whose backoff ended, a lease left by a dead worker). A
``connectx worker`` without a broker is driven by the reconciler alone (polling), so a separate
worker works on SQLite too.

Async actors run on Dramatiq's event-loop thread (the AsyncIO middleware); database engines are
per event loop, so that loop gets its own engine, disposed when the worker stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.broker import Broker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, Middleware

from connectx.config import Settings
from connectx.db.engine import dispose_engines
from connectx.jobs import periodic, queue, runner

log = logging.getLogger(__name__)

ACTOR = "jobs.run"
BUILTIN_TASK_MODULES = (
    "connectx.mail.tasks",
    "connectx.retention.tasks",
    "connectx.backups.tasks",
    "connectx.policies.tasks",
    "connectx.media.tasks",
    "connectx.inbox.tasks",
    "connectx.messages.tasks",
    "connectx.privacy.rights.tasks",
    "connectx.privacy.requests.tasks",
    "connectx.templates_wa.tasks",
)


def load_task_modules(settings: Settings) -> list[str]:
    """Import the modules whose ``@task`` handlers this process must know."""
    names = [*BUILTIN_TASK_MODULES, *settings.task_modules]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise RuntimeError(
                f"cannot import task module {name!r} (check CONNECTX_TASK_MODULES): {exc}"
            ) from exc
    return names


def broker_kind(settings: Settings) -> str:
    url = settings.broker_url
    if not url:
        return "in-process"
    if url.startswith(("amqp://", "amqps://")):
        return "rabbitmq"
    if url.startswith(("redis://", "rediss://", "unix://")):
        return "redis"
    raise ValueError(
        "CONNECTX_BROKER_URL must start with amqp:// or amqps:// (RabbitMQ) "
        "or redis:// or rediss:// (Redis)"
    )


def build_broker(settings: Settings, middleware: list[Middleware]) -> Broker:
    kind = broker_kind(settings)
    if kind == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=settings.broker_url, middleware=middleware)
    if kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=settings.broker_url, middleware=middleware, namespace="connectx")
    return StubBroker(middleware=middleware)


async def _run(job_id: int) -> None:
    """The one actor. Its message is a wake-up; retries are the job row's, not Dramatiq's."""
    try:
        await runner.run_job(int(job_id))
    except Exception as exc:  # the database was unreachable, say; the reconciler retries later
        log.error("job %s could not be run: %s", job_id, type(exc).__name__)


class _Reconciler(Middleware):
    """Starts the reconciler on the worker's event loop at boot; stops it, then closes that
    loop's Graph session and database engine, at shutdown (before the AsyncIO middleware closes
    the loop).

    Between passes it sleeps until the next one or until told to stop (an event set on its own
    loop), without waking in between: every wake-up of a thread of the web process takes the GIL
    from the event loop serving webhooks (a 0.1 s stop check cost it ~10 hand-overs a second)."""

    def __init__(self, interval_s: float, wake: queue.Waker) -> None:
        self.interval_s = interval_s
        self.wake = wake
        self.future: concurrent.futures.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()  # set on the reconciler's loop only

    async def _forever(self) -> None:
        while not self._stop.is_set():
            try:
                await runner.reconcile(self.wake)
            except Exception as exc:
                log.warning("reconciler pass failed: %s", type(exc).__name__)
            try:
                await periodic.tick()  # daily retention, scheduled backups (jobs/periodic.py)
            except Exception as exc:
                log.warning("periodic schedules not checked: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._stop.wait()

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        thread = get_event_loop_thread()
        assert thread is not None
        self._loop, self._stop = thread.loop, asyncio.Event()
        self.future = asyncio.run_coroutine_threadsafe(self._forever(), thread.loop)

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # (its loop has closed)
                self._loop.call_soon_threadsafe(self._stop.set)
        if self.future is not None:
            try:
                self.future.result(timeout=10)
            except concurrent.futures.TimeoutError:
                self.future.cancel()
            except Exception as exc:
                log.warning("reconciler stopped with %s", type(exc).__name__)
            self.future = None

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        thread = get_event_loop_thread()
        if thread is not None:
            try:
                thread.run_coroutine(_close_loop_resources())
            except Exception as exc:
                log.warning("could not close the worker's database engine: %s", type(exc).__name__)


async def _close_loop_resources() -> None:
    """What jobs opened on the worker's loop: its Graph session (media, templates, notices) and
    its database engine."""
    from connectx.outbound import graph

    await graph.close()
    await dispose_engines()


class Runtime:
    """A broker, the ``jobs.run`` actor, and (when ``work``) a Dramatiq worker and reconciler."""

    def __init__(
        self,
        settings: Settings,
        *,
        work: bool,
        concurrency: int | None = None,
        poll_ms: int = 500,
    ) -> None:
        self.settings = settings
        self.kind = broker_kind(settings)
        self.work = work
        self.concurrency = max(1, concurrency or settings.worker_concurrency)
        self.poll_ms = poll_ms
        self._reconciler = _Reconciler(settings.reconcile_interval_s, self.wake)
        middleware: list[Middleware] = [AsyncIO(), self._reconciler] if work else []
        self.broker = build_broker(settings, middleware)
        self.actor: dramatiq.Actor[[int], Any] = dramatiq.Actor(
            _run,
            broker=self.broker,
            actor_name=ACTOR,
            queue_name=settings.broker_queue,
            priority=0,
            options={},
        )
        self.worker: dramatiq.Worker | None = None

    def start(self) -> None:
        load_task_modules(self.settings)
        queue.set_waker(self.wake)
        if self.work:
            self.worker = dramatiq.Worker(
                self.broker, worker_threads=self.concurrency, worker_timeout=self.poll_ms
            )
            try:
                self.worker.start()
            except BaseException:
                queue.set_waker(None)
                raise

    def stop(self, timeout_s: float = 30) -> None:
        """Stop taking work, let running jobs finish (up to ``timeout_s``), close the broker.
        A job still running after that keeps its lease and is claimed again once it ends."""
        if queue.current_waker() == self.wake:
            queue.set_waker(None)
        if self.worker is not None:
            self.worker.stop(timeout=int(timeout_s * 1000))
            self.worker = None
        self.broker.close()

    def publish(self, job_id: int) -> None:
        self.actor.send(job_id)

    async def wake(self, job_id: int) -> None:
        """The waker: publish a job id (blocking network I/O goes to a thread)."""
        if self.kind == "in-process":
            self.publish(job_id)
        else:
            await asyncio.to_thread(self.publish, job_id)


_embedded: Runtime | None = None


async def start_embedded(settings: Settings) -> None:
    """Called by the web app's lifespan. Without a broker, run work in this process (unless
    CONNECTX_EMBEDDED_WORKER=false); with one, only publish wake-ups for ``connectx worker``."""
    global _embedded
    if _embedded is not None:
        return
    if settings.broker_url:
        runtime = Runtime(settings, work=False)
    elif settings.embedded_worker:
        runtime = Runtime(settings, work=True, poll_ms=settings.embedded_poll_ms)
    else:
        load_task_modules(settings)  # nothing wakes: separate workers find jobs by polling
        return
    await asyncio.to_thread(runtime.start)
    _embedded = runtime
    log.info("background runtime started (broker: %s, work here: %s)", runtime.kind, runtime.work)


async def stop_embedded() -> None:
    global _embedded
    runtime, _embedded = _embedded, None
    if runtime is not None:
        await asyncio.to_thread(runtime.stop)


def embedded() -> Runtime | None:
    return _embedded
