"""A customer's message moves its conversation's and contact's activity forward in the database
(last message, last inbound message: the 24-hour window), and an older message delivered late
never moves them back. (The processor writes these for a whole batch at once.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from connectx.models.contact import Contact
from connectx.models.conversation import Conversation
from tests.whatsapp.support import delivered, drain, load, rows

SENT = datetime.fromtimestamp(1767225600, UTC)  # message_text.json's timestamp


def _message(wamid: str, timestamp: int) -> dict[str, Any]:
    payload = load("message_text")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["timestamp"] = wamid, str(timestamp)
    return payload


async def test_activity_moves_forward_and_never_back(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    await delivered(client, _message("wamid.activity.1", 1767225600))
    await drain()
    (contact,) = await rows(Contact)
    (conversation,) = await rows(Conversation)
    assert contact.last_inbound_at == SENT
    assert conversation.last_inbound_at == conversation.last_message_at == SENT
    first_update = conversation.updated_at

    await delivered(client, _message("wamid.activity.0", 1767225600 - 3600))  # older, late
    await drain()
    (contact,) = await rows(Contact)
    (conversation,) = await rows(Conversation)
    assert contact.last_inbound_at == SENT
    assert conversation.last_inbound_at == conversation.last_message_at == SENT
    assert conversation.updated_at >= first_update

    await delivered(client, _message("wamid.activity.2", 1767225600 + 60))
    await drain()
    (contact,) = await rows(Contact)
    (conversation,) = await rows(Conversation)
    later = datetime.fromtimestamp(1767225600 + 60, UTC)
    assert contact.last_inbound_at == later
    assert conversation.last_inbound_at == conversation.last_message_at == later
