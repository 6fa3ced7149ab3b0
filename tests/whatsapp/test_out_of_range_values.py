"""A signed webhook with one value no column can hold (a number beyond a float's range such as
``1e400``, an error code beyond 32 bits, an id longer than any of Meta's): that value reads as
absent, and everything else of the event is stored. (Each of these failed the whole event, on
PostgreSQL or on both databases, and after five attempts parked it: the other messages of the
POST were lost to a ``failed`` event.)"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from tests.whatsapp.support import delivered, drain, load
from tests.whatsapp.test_corpus import messages_via_api
from tests.workspaces.helpers import Caller

INF = "__INF__"  # written into the body as 1e400 (json.dumps cannot)
LONG_ID = "wamid." + "A" * 300


def _status(**over: Any) -> dict[str, Any]:
    status = {
        "id": "wamid.OUT1",
        "status": "failed",
        "timestamp": "1767225603",
        "recipient_id": "16505551234",
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    return status | over


CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "error code 1e400": ("status", _status(errors=[{"code": INF}])),
    "error code beyond 64 bits": ("status", _status(errors=[{"code": 10**20}])),
    "error code beyond 32 bits": ("status", _status(errors=[{"code": 3_000_000_000}])),
    "pricing 1e400": ("status", _status(status="sent", pricing={"billable": True, "x": INF})),
    "conversation 1e400": ("status", _status(status="sent", conversation={"id": "c", "x": INF})),
    "status id too long": ("status", _status(id=LONG_ID)),
    "message id too long": ("message", {"id": LONG_ID}),
    "reply-to id too long": ("message", {"context": {"id": LONG_ID}}),
    "media refs too long": (
        "message",
        {"type": "image", "image": {"id": "9" * 300, "mime_type": "m" * 300, "sha256": "s" * 300}},
    ),
    "reaction target too long": (
        "message",
        {"type": "reaction", "reaction": {"message_id": LONG_ID, "emoji": "x"}},
    ),
    "unsupported with error code 1e400": (
        "message",
        {"type": "unsupported", "errors": [{"code": INF, "title": "Unsupported"}]},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_value_no_column_can_hold_loses_nothing_else_of_the_event(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any], case: str
) -> None:
    kind, odd = CASES[case]
    payload = load("message_text")
    value = payload["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    if kind == "status":
        value["statuses"] = [odd]
    else:
        message = copy.deepcopy(good) | {"id": "wamid.ODD"} | odd
        value["messages"].append(message)
    await delivered(client, json.dumps(payload).replace(f'"{INF}"', "1e400").encode())
    assert await drain() == {"processed": 1}
    assert good["id"] in {m["wamid"] for m in await messages_via_api(owner)}
