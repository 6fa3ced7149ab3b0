"""A workspace chooses how long message content is kept (within bounds); the daily run removes
content past it, keeps the message's metadata, and leaves other workspaces alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.channel import Channel, MetaApp
from connectx.models.contact import Contact
from connectx.models.conversation import Conversation
from connectx.models.media import MediaFile
from connectx.models.message import Message
from connectx.privacy.vault import Vault
from tests.retention.support import events, media_file, run_cli
from tests.workspaces.helpers import join, owner_of

_n = 0


async def _message(workspace_id: int, text: str) -> int:
    """A received WhatsApp message with sealed content (rows as intake stores them)."""
    global _n
    _n += 1
    now = clock.now()
    async with unit_of_work() as db:
        app = MetaApp(app_id=f"app-{_n}", created_at=now, updated_at=now)
        db.add(app)
        await db.flush()
        channel = Channel(
            workspace_id=workspace_id,
            meta_app_id=app.id,
            phone_number_id=f"pn-{_n}",
            display_phone_number="+971 4 000 0000",
            waba_id=f"waba-{_n}",
            status="active",
            created_by="system",
            created_at=now,
            updated_at=now,
        )
        contact = Contact(workspace_id=workspace_id, created_at=now, updated_at=now)
        db.add_all([channel, contact])
        await db.flush()
        conversation = Conversation(
            workspace_id=workspace_id,
            channel_id=channel.id,
            contact_id=contact.id,
            status="open",
            opened_at=now,
            last_message_at=now,
            created_at=now,
            updated_at=now,
        )
        db.add(conversation)
        await db.flush()
        body = await Vault(db).encrypt(workspace_id, f"contact:{contact.id}", "messages.body", text)
        message = Message(
            workspace_id=workspace_id,
            channel_id=channel.id,
            conversation_id=conversation.id,
            contact_id=contact.id,
            phone_number_id=channel.phone_number_id,
            wamid=f"wamid.{_n}",
            direction="in",
            type="text",
            status="received",
            status_rank=0,
            body_enc=body,
            media_id="media-1",
            sent_at=now,
            created_at=now,
        )
        db.add(message)
        await db.flush()
        return message.id


async def _get(message_id: int) -> Message:
    async with unit_of_work() as db:
        return (await db.execute(select(Message).where(Message.id == message_id))).scalar_one()


async def test_message_content_follows_the_workspaces_chosen_period(app: Any) -> None:
    owner, ws = await owner_of(app, "Short Memory LLC")
    other, other_ws = await owner_of(app, "Long Memory LLC")
    mine = await _message(ws, "my order number is 4411")
    theirs = await _message(other_ws, "please call me back")
    my_media, my_file = await media_file(ws, mine)
    _, their_file = await media_file(other_ws, theirs)

    schedule = (await owner.get("/api/v1/workspace/retention")).json()
    content = next(p for p in schedule if p["retention_class"] == "message_content")
    assert content["days"] is None and content["workspace_may_set"] is True
    assert (content["min_days"], content["max_days"]) == (7, 3650)

    r = await owner.client.put(
        "/api/v1/workspace/retention/message_content", json={"days": 30}, headers=owner.h
    )
    assert r.status_code == 200, r.text
    assert r.json()["days"] == 30 and r.json()["workspace_days"] == 30
    assert "30 days after the message was sent" in r.json()["description"]
    [set_event] = await events("retention.period_set")
    assert set_event.workspace_id == ws
    assert set_event.data == {"class": "message_content", "days": 30}

    clock.advance(timedelta(days=29))
    assert (await run_cli("retention", "run")).exit_code == 0
    assert (await _get(mine)).body_enc is not None

    clock.advance(timedelta(days=2))
    result = await run_cli("retention", "run")
    assert result.exit_code == 0, result.output
    gone, kept = await _get(mine), await _get(theirs)
    assert gone.body_enc is None and gone.media_id is None
    assert (gone.wamid, gone.direction, gone.status) == (f"wamid.{_n - 1}", "in", "received")
    assert kept.body_enc is not None and kept.media_id == "media-1"
    anonymised = {e.data["table"]: e for e in await events("retention.anonymised")}
    assert set(anonymised) == {"messages", "media_files"}
    assert {e.workspace_id for e in anonymised.values()} == {ws}
    assert anonymised["messages"].data["count"] == 1
    assert anonymised["media_files"].data["files"] == 1
    # The media file itself is gone; the other workspace's stays.
    assert not my_file.exists() and their_file.exists()
    async with unit_of_work() as db:
        media = (await db.execute(select(MediaFile).where(MediaFile.id == my_media))).scalar_one()
    assert media.storage_key is None and media.sha256 is None
    assert other is not None


async def test_periods_outside_the_bounds_or_for_fixed_classes_are_refused(app: Any) -> None:
    owner, _ = await owner_of(app, "Bounded Co")
    for cls, days, words in (
        ("message_content", 3, "between 7 and 3650 days"),
        ("message_content", 99999, "between 7 and 3650 days"),
        ("session", 10, "same for every workspace"),
        ("no_such_class", 10, "Unknown retention class"),
    ):
        r = await owner.client.put(
            f"/api/v1/workspace/retention/{cls}", json={"days": days}, headers=owner.h
        )
        assert r.status_code == 422, r.text
        assert words in r.json()["detail"]
    agent = await join(app, owner, "agent")
    r = await agent.client.put(
        "/api/v1/workspace/retention/message_content", json={"days": 30}, headers=agent.h
    )
    assert r.status_code == 403
    assert await events("retention.period_set") == []


async def test_the_pages_show_the_schedule(app: Any) -> None:
    owner, _ = await owner_of(app, "Paged Co")
    public = await owner.client.get("/privacy/retention")
    assert public.status_code == 200
    assert "90 days after the attempt" in public.text
    assert "each business may choose 7\u20133650 days" in public.text
    page = await owner.client.get("/workspace/retention")
    assert page.status_code == 200 and 'name="retention_class" value="message_content"' in page.text
    r = await owner.client.post(
        "/workspace/retention",
        data={"retention_class": "message_content", "days": "3", "csrf_token": owner.csrf},
    )
    assert r.status_code == 422 and "between 7 and 3650 days" in r.text
    r = await owner.client.post(
        "/workspace/retention",
        data={"retention_class": "message_content", "days": "400", "csrf_token": owner.csrf},
    )
    assert r.status_code == 303
    page = await owner.client.get("/workspace/retention")
    assert 'value="400"' in page.text and "400 days after the message was sent" in page.text
    # Clearing the period goes back to the default (kept while the workspace exists).
    r = await owner.client.post(
        "/workspace/retention",
        data={"retention_class": "message_content", "days": "", "csrf_token": owner.csrf},
    )
    assert r.status_code == 303
    r = await owner.client.put(
        "/api/v1/workspace/retention/message_content", json={"days": None}, headers=owner.h
    )
    assert r.status_code == 200 and r.json()["days"] is None
    assert len(await events("retention.period_cleared")) == 2
    api = (await owner.client.get("/api/v1/retention/schedule")).json()
    assert {p["retention_class"] for p in api} >= {"usage_log", "message_content", "session"}
