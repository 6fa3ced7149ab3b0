"""``connectx simulator``: run the local fake of Meta's WhatsApp Cloud API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from connectx.simulator.settings import DEFAULT_CALLBACK, DEFAULT_PORT, DEFAULT_VERSION, build


def simulator(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        exists=True,
        dir_okay=False,
        help="A JSON or YAML file: apps, numbers, customers, templates, rates, webhook "
        "behaviour (see docs/simulator.md). Options below override it.",
    ),
    host: str | None = typer.Option(None, help="Address to bind (default: 127.0.0.1)."),
    port: int | None = typer.Option(None, help=f"Port (default: {DEFAULT_PORT})."),
    graph_version: str | None = typer.Option(
        None,
        "--graph-version",
        help=f"The Graph API version prefix served (default: {DEFAULT_VERSION}).",
    ),
    public_url: str | None = typer.Option(
        None, help="Base of the media URLs handed out (default: the address asked)."
    ),
    callback_url: str | None = typer.Option(
        None,
        help=f"Where webhooks go: the platform's /webhooks/whatsapp (default: {DEFAULT_CALLBACK}).",
    ),
    app_id: str | None = typer.Option(None, help="The (first) Meta app's id."),
    app_secret: str | None = typer.Option(
        None, help="The app secret that signs webhooks (X-Hub-Signature-256)."
    ),
    verify_token: str | None = typer.Option(None, help="The webhook verify token."),
    phone_number_id: str | None = typer.Option(None, help="The (first) number's phone number id."),
    display_phone_number: str | None = typer.Option(None, help="Its display number, +E.164."),
    waba_id: str | None = typer.Option(None, help="Its WhatsApp Business Account id."),
    access_token: str | None = typer.Option(None, help="Its Bearer access token."),
    throughput: int | None = typer.Option(
        None, help="Its messages per second (1-1000) (default: 80); over it: error 130429."
    ),
    pair_interval: float | None = typer.Option(
        None, help="Pair rate: one message per this many seconds to one user (default: 6)."
    ),
    pair_burst: int | None = typer.Option(
        None, help="Pair rate: messages allowed in a burst to one user (default: 5)."
    ),
    window_errors: str | None = typer.Option(
        None,
        help="131047 outside the 24-hour window: 'sync' (in the response, default) or "
        "'webhook' (accepted, then a failed status).",
    ),
    statuses: str | None = typer.Option(
        None,
        help="Status callbacks for sent messages: none, sent, delivered or read (default: read).",
    ),
    status_delay_ms: int | None = typer.Option(
        None, help="Delay between sent, delivered and read callbacks (default: 200)."
    ),
    status_shuffle: float | None = typer.Option(
        None, help="Chance (0-1) a message's statuses arrive in reverse order (default: 0)."
    ),
    status_duplicate: float | None = typer.Option(
        None, help="Chance (0-1) each status callback is sent twice (default: 0)."
    ),
    batch_max: int | None = typer.Option(
        None, help="Updates per webhook POST, up to 1000 (default: 1)."
    ),
    batch_window_ms: int | None = typer.Option(
        None, help="How long to wait to fill a batch (default: 0)."
    ),
    webhook_concurrency: int | None = typer.Option(
        None, help="Webhook POSTs in flight at once (default: 4)."
    ),
    template_review: str | None = typer.Option(
        None, help="New templates become: approve, pending or reject (default: approve)."
    ),
    media_url_ttl: float | None = typer.Option(
        None, help="Seconds a media download URL stays valid (default: 300)."
    ),
    state_file: Path | None = typer.Option(
        None, help="Keep state in this JSON file across restarts (default: memory only)."
    ),
    seed: int | None = typer.Option(None, help="Seed for the out-of-order/duplicate chaos."),
    demo_data: bool | None = typer.Option(
        None,
        "--demo-data/--no-demo-data",
        help="Seed demo customers and templates when the config has none (default: on).",
    ),
    log_level: str = typer.Option("info", help="Uvicorn's log level."),
) -> None:
    """Run the local fake of Meta's WhatsApp Cloud API: the Graph endpoints the platform calls
    (messages, media, templates) with Meta's rules and errors, signed webhooks from simulated
    customers, and a customer-phone page at http://HOST:PORT/phone."""
    import uvicorn

    from connectx.simulator.app import create_app

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "graph_version": graph_version,
        "public_url": public_url,
        "callback_url": callback_url,
        "window_errors": window_errors,
        "template_review": template_review,
        "media_url_ttl_s": media_url_ttl,
        "state_file": str(state_file) if state_file else None,
        "seed": seed,
        "demo_data": demo_data,
        "pair_rate": {"interval_s": pair_interval, "burst": pair_burst},
        "statuses": {
            "progress": statuses,
            "delay_ms": status_delay_ms,
            "shuffle": status_shuffle,
            "duplicate": status_duplicate,
        },
        "batching": {"max_updates": batch_max, "window_ms": batch_window_ms},
        "webhooks": {"concurrency": webhook_concurrency},
    }
    try:
        settings = build(
            config,
            overrides,
            app={"app_id": app_id, "app_secret": app_secret, "verify_token": verify_token},
            number={
                "phone_number_id": phone_number_id,
                "display_phone_number": display_phone_number,
                "waba_id": waba_id,
                "access_token": access_token,
                "throughput": throughput,
            },
        )
    except ValueError as exc:
        typer.echo(f"simulator: the configuration is not valid:\n{exc}", err=True)
        raise typer.Exit(2) from None
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(f"ConnectX simulator (Graph {settings.graph_version}) on {base}")
    typer.echo(f"  customer phone: {base}/phone   webhooks to: {settings.callback_url}")
    for n in settings.numbers:
        typer.echo(
            f"  number {n.display_phone_number}: phone_number_id={n.phone_number_id} "
            f"waba_id={n.waba_id} app_id={n.app_id} throughput={n.throughput}/s"
        )
    typer.echo(
        f"  platform: CONNECTX_GRAPH_BASE_URL={base} CONNECTX_GRAPH_API_VERSION="
        f"{settings.graph_version}"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
    )
