from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from connectx.config import get_settings
from connectx.kit import logging as cx_logging


def worker(
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        "-c",
        min=1,
        help="Jobs run at the same time (default CONNECTX_WORKER_CONCURRENCY).",
    ),
    shutdown_timeout: float = typer.Option(
        30.0, help="Seconds to let running jobs finish on SIGTERM/SIGINT before exiting."
    ),
) -> None:
    """Run background jobs: consume wake-ups from CONNECTX_BROKER_URL (or, without a broker,
    poll the database) and reconcile jobs left behind. Stops gracefully on SIGTERM or SIGINT."""
    from connectx.jobs.runtime import Runtime

    settings = get_settings()
    cx_logging.configure(settings.log_level, settings.log_json)
    try:
        runtime = Runtime(settings, work=True, concurrency=concurrency)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        runtime.start()
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    source = (
        f"{runtime.kind} queue {settings.broker_queue!r}"
        if settings.broker_url
        else f"polling the database every {settings.reconcile_interval_s:g}s"
    )
    from connectx.intake.processor import ProcessorThread

    # Stored WhatsApp webhook events are processed here too (docs/whatsapp-inbound.md).
    webhooks = ProcessorThread()
    webhooks.start()
    from connectx.outbound.pacer import PacerThread

    # Outbox rows are sent from here too (docs/outbound.md).
    sender = PacerThread()
    sender.start()
    typer.echo(f"connectx worker: {runtime.concurrency} at a time, {source}", err=True)
    while not stop.wait(0.5):
        pass
    typer.echo("connectx worker: stopping (letting running jobs finish)", err=True)
    sender.stop(timeout_s=shutdown_timeout)
    webhooks.stop(timeout_s=shutdown_timeout)
    runtime.stop(timeout_s=shutdown_timeout)
    typer.echo("connectx worker: stopped", err=True)
