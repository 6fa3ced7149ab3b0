"""Reactions (and their removal), edits and revokes apply to the message they name, whichever
arrives first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.whatsapp.support import batch, delivered, drain, load
from tests.workspaces.helpers import Caller


async def original(owner: Caller) -> dict[str, Any]:
    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    r = await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")
    return next(m for m in r.json()["items"] if m["wamid"] == "wamid.TEXT1")


@pytest.mark.parametrize("original_first", [True, False])
async def test_reaction_then_its_removal(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any], original_first: bool
) -> None:
    steps = [load("message_text"), load("effect_reaction")]
    if not original_first:
        steps.reverse()
    for step in steps:
        await delivered(client, step)
        await drain()
    assert (await original(owner))["reaction"] == "\N{THUMBS UP SIGN}"
    await delivered(client, load("effect_reaction_removed"))
    await drain()
    assert (await original(owner))["reaction"] is None
    # A late redelivery of the older reaction does not bring it back.
    late = load("effect_reaction")
    late["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.REACT_LATE"
    await delivered(client, late)
    await drain()
    assert (await original(owner))["reaction"] is None


@pytest.mark.parametrize("original_first", [True, False])
async def test_edit_replaces_the_text(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any], original_first: bool
) -> None:
    steps = [load("message_text"), load("effect_edit")]
    if not original_first:
        steps.reverse()
    await delivered(client, batch(*steps))  # even within one POST
    await drain()
    message = await original(owner)
    assert message["body"] == "Hello, is my parcel on its way?"
    assert message["edited_at"] is not None


@pytest.mark.parametrize("original_first", [True, False])
async def test_revoke_erases_the_content_and_its_edits(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any], original_first: bool
) -> None:
    steps = [load("message_text"), load("effect_edit"), load("effect_revoke")]
    if not original_first:
        steps.reverse()
    for step in steps:
        await delivered(client, step)
        await drain()
    message = await original(owner)
    assert message["body"] is None and message["revoked_at"] is not None
    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    r = await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")
    edit = next(m for m in r.json()["items"] if m["type"] == "edit")
    assert edit["body"] is None and edit["target_wamid"] == "wamid.TEXT1"
