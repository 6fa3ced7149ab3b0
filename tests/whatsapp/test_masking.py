"""Card numbers typed into WhatsApp messages are masked before anything is stored."""

from __future__ import annotations

from typing import Any

import httpx

from connectx.db.session import unit_of_work
from connectx.intake.batcher import BODY_COLUMN, day_subject
from connectx.messages.service import RAW
from connectx.models.message import Message
from connectx.models.webhook_event import WebhookEvent
from connectx.privacy.vault import Vault
from tests.whatsapp.support import delivered, drain, load, rows
from tests.workspaces.helpers import Caller

CARD = "4111 1111 1111 1111"


async def test_a_card_number_in_a_message_is_masked_everywhere_it_is_kept(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    payload = load("message_image")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["image"]["caption"] = f"my card is {CARD}, exp 09/27"
    await delivered(client, payload)
    await drain()

    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    (shown,) = (await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")).json()[
        "items"
    ]
    assert shown["body"] == "my card is **** **** **** 1111, exp 09/27"
    # Identifiers that look like long numbers are left alone.
    assert shown["media"]["id"] == "1003383421387256"

    (row,) = await rows(Message)
    (event,) = await rows(WebhookEvent)
    async with unit_of_work() as db:
        vault = Vault(db)
        raw = await vault.decrypt(row.workspace_id, f"contact:{row.contact_id}", RAW, row.raw_enc)
        body = await vault.decrypt(
            None, day_subject(event.received_at), BODY_COLUMN, event.body_enc
        )
    for stored in (raw, body):
        assert CARD not in stored and "**** **** **** 1111" in stored
    assert '"phone_number_id":"106540352242922"' in body  # routing ids untouched
