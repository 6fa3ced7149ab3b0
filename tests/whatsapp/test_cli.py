"""``connectx webhooks``: the operator sees flagged events (never their content) and queues
them again, e.g. once the number they were for is connected."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from typer.testing import CliRunner

from connectx.cli import app as cli
from connectx.intake import processor
from connectx.models.message import Message
from tests.whatsapp.support import (
    DISPLAY_B,
    PNID_B,
    WABA_B,
    connect,
    count,
    delivered,
    drain,
    for_number,
    load,
)
from tests.workspaces.helpers import Caller


async def run(*args: str) -> str:
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def test_flagged_events_are_listed_and_can_be_processed_again(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    processor.stop_embedded()
    await delivered(client, b'{"not json')
    await delivered(client, for_number(load("message_text"), PNID_B, WABA_B))
    await drain()
    assert "processed  1" in await run("webhooks", "status")
    flagged = await run("webhooks", "flagged")
    assert "malformed" in flagged and "unrouted=1" in flagged
    assert "Hello" not in flagged and "16505551234" not in flagged

    await connect(owner, pnid=PNID_B, waba=WABA_B, display=DISPLAY_B, verify_token=None)
    unrouted_id = next(line.split()[0] for line in flagged.splitlines() if "unrouted=1" in line)
    assert f"queued again: {unrouted_id}" in await run("webhooks", "retry", unrouted_id)
    await drain()
    assert await count(Message) == 1
    assert "queued again: none" in await run("webhooks", "retry", "--failed")
