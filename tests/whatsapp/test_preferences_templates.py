"""Marketing stop/resume from Meta's user_preferences webhook reaches the consent ledger; template
status, quality and category updates are recorded once each."""

from __future__ import annotations

from typing import Any

import httpx

from connectx.db.session import unit_of_work
from connectx.models.channel import TemplateUpdate
from connectx.models.contact import ContactPreferenceEvent
from connectx.privacy import consent
from tests.whatsapp.support import count, delivered, drain, load, rows
from tests.workspaces.helpers import Caller


async def test_stop_and_resume_are_recorded_in_the_consent_ledger(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("user_preferences_stop"))
    await delivered(client, load("user_preferences_stop"))  # redelivered: recorded once
    await drain()
    (person,) = (await owner.get("/api/v1/contacts")).json()["items"]
    subject = f"contact:{person['id']}"
    async with unit_of_work() as db:
        state = await consent.current_state(db, subject, "marketing", "whatsapp")
    assert state.decided and not state.granted
    assert state.source == "whatsapp_user_preferences"

    await delivered(client, load("user_preferences_resume"))
    await drain()
    async with unit_of_work() as db:
        assert await consent.is_granted(db, subject, "marketing", "whatsapp")
        history = await consent.history(db, subject, "marketing", "whatsapp")
    assert [h.granted for h in history] == [False, True]
    assert history[0].wording == "User requested to stop marketing messages"
    events = await rows(ContactPreferenceEvent, order_by=ContactPreferenceEvent.id)
    assert [(e.category, e.value) for e in events] == [
        ("marketing_messages", "stop"),
        ("marketing_messages", "resume"),
    ]


async def test_template_updates_are_recorded_once_for_the_workspace_of_the_waba(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("templates"))
    await delivered(client, load("templates"))
    await drain()
    updates = await rows(TemplateUpdate, order_by=TemplateUpdate.id)
    assert [u.field for u in updates] == [
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
    ]
    status, quality, category = updates
    assert (status.event, status.template_name, status.language) == (
        "APPROVED",
        "order_update",
        "en_US",
    )
    assert status.template_id == "1689556908129832"
    assert quality.new_quality == "YELLOW"
    assert category.new_category == "MARKETING"
    ws = (await owner.get("/api/v1/workspace")).json()["id"]
    assert {u.workspace_id for u in updates} == {ws}


async def test_template_updates_for_an_unknown_waba_are_kept_unrouted(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    from connectx.models.webhook_event import WebhookEvent

    payload = load("templates")
    payload["entry"][0]["id"] = "999000999000999"
    await delivered(client, payload)
    await drain()
    assert await count(TemplateUpdate, TemplateUpdate.workspace_id.is_(None)) == 3
    (event,) = await rows(WebhookEvent)
    assert event.unrouted == 3
