"""Text that JSON can carry but UTF-8 cannot (an unpaired surrogate, ``"\\ud800"``) or that
PostgreSQL's text type refuses (NUL) in a signed webhook: the message is stored, never lost to a
failed event. The unpaired surrogate becomes U+FFFD, as UTF-8 decoders do."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.whatsapp.support import delivered, drain, load
from tests.whatsapp.test_corpus import messages_via_api
from tests.workspaces.helpers import Caller


@pytest.mark.parametrize("card", ["", " card 4111 1111 1111 1111"])  # masking rewrites the body
async def test_unpaired_surrogates_and_nul_in_a_webhook_are_stored(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any], card: str
) -> None:
    payload = load("message_text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["text"]["body"] = "Hi\ud800 there\x00 \ud83d\ude00" + card
    value["contacts"][0]["profile"]["name"] = "Sh\udc00eena"
    await delivered(client, payload)
    assert await drain() == {"processed": 1}
    (message,) = await messages_via_api(owner)
    assert message["body"].startswith("Hi\ufffd there\x00 \U0001f600")
    (contact,) = (await owner.get("/api/v1/contacts")).json()["items"]
    assert contact["name"] == "Sh\ufffdeena"
