from __future__ import annotations

from typing import Any

from tests.whatsapp.support import deliver, drain, load


async def test_smoke(client: Any, channel: dict[str, Any], owner: Any) -> None:
    r = await deliver(client, load("message_text"))
    assert r.status_code == 200, r.text
    counts = await drain()
    assert counts == {"processed": 1}, counts
    r = await owner.get("/api/v1/conversations")
    assert r.status_code == 200, r.text
    print(r.json())
    conv = r.json()["items"][0]
    r = await owner.get(f"/api/v1/conversations/{conv['id']}/messages")
    print(r.json())
    assert r.json()["items"][0]["body"] == "Hello, is my order on its way?"
