"""Contacts without activity: after the period (the operator's, or the workspace's own) the
daily run anonymises who they were, destroys their key and keeps every count; activity of any
kind, a legal hold on the contact or on the workspace, keeps them."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.consent import ConsentRecord
from connectx.models.contact import Contact, ContactPreferenceEvent
from connectx.models.conversation import Conversation
from connectx.models.inbox import ContactNameToken
from connectx.models.message import Message
from connectx.privacy.vault import Vault
from tests.retention.support import (
    contact_row,
    count,
    customer_writes,
    events,
    media_file,
    run_cli,
)
from tests.support.factories import signed_in
from tests.whatsapp.support import DISPLAY_B, PNID_B, WABA_B, connect, delivered, drain, load
from tests.workspaces.helpers import Caller, owner_of

IDENTITY = ("phone_index", "phone_enc", "bsuid_index", "bsuid_enc", "name_enc", "profile_enc")


async def _again(owner: Caller) -> Caller:
    """Signed in again (sessions end while years pass)."""
    owner.csrf = await signed_in(owner.client, owner.email)
    return owner


async def _totals() -> tuple[int, int, int]:
    return await count(Contact), await count(Conversation), await count(Message)


async def test_an_idle_contact_is_anonymised_and_its_key_destroyed_while_counts_stay(
    app: Any,
) -> None:
    owner, ws = await owner_of(app, "Quiet Customers LLC")
    await connect(owner)
    quiet = await customer_writes(owner, "16505550101", "Quentin Quiet")
    chatty = await customer_writes(owner, "16505550102", "Chloe Chatty")
    [quiet_before] = [
        m
        for m in (await owner.get("/api/v1/conversations")).json()["items"]
        if m["contact"]["id"] == quiet.id
    ]
    async with unit_of_work() as db:
        message_id = (
            await db.execute(select(Message.id).where(Message.contact_id == quiet.id))
        ).scalar_one()
    _, media_path = await media_file(ws, message_id)
    before = await _totals()

    # Two years on, Chloe writes again; Quentin does not.
    clock.advance(timedelta(days=730))
    await customer_writes(owner, "16505550102", "Chloe Chatty")
    assert (await run_cli("retention", "run")).exit_code == 0
    assert (await contact_row(quiet.id)).phone_enc is not None  # 2 years: not yet

    # Three years and a day after Quentin's last message.
    clock.advance(timedelta(days=366))
    dry = await run_cli("retention", "run", "--dry-run", "--rule", "contacts")
    line = next(ln for ln in dry.output.splitlines() if ln.startswith("contacts"))
    assert line.split()[1:4] == ["contact_inactivity", "anonymise", "1"], dry.output
    assert (await contact_row(quiet.id)).phone_enc is not None

    result = await run_cli("retention", "run")
    assert result.exit_code == 0, result.output
    gone, kept = await contact_row(quiet.id), await contact_row(chatty.id)
    assert all(getattr(gone, name) is None for name in IDENTITY)
    assert kept.phone_enc is not None and kept.name_enc is not None
    async with unit_of_work() as db:
        bodies = (
            await db.execute(
                select(Message.contact_id, func.count(Message.body_enc)).group_by(
                    Message.contact_id
                )
            )
        ).all()
    assert dict(bodies) == {quiet.id: 0, chatty.id: 2}
    assert not media_path.exists()
    # Crypto-shredded: the key is gone, so every copy (backups too) is unreadable.
    assert (await Vault().key_info(ws, f"contact:{quiet.id}")).destroyed
    assert not (await Vault().key_info(ws, f"contact:{chatty.id}")).destroyed
    # Counts survive: the contact, its conversation and its message rows stay, nameless.
    assert await _totals() == (before[0], before[1], before[2] + 1)
    await _again(owner)
    listed = {
        c["contact"]["id"]: c["contact"]
        for c in (await owner.get("/api/v1/conversations")).json()["items"]
    }
    assert listed[quiet.id] == {"id": quiet.id, "name": None, "phone": None}
    assert listed[chatty.id]["name"] == "Chloe Chatty"
    assert quiet_before["contact"]["name"] == "Quentin Quiet"  # as it was before

    [event] = [e for e in await events("retention.anonymised") if e.data["rule"] == "contacts"]
    assert event.workspace_id is None and event.subject is None
    # The inventory-driven sweep of the other tables that name the contact (inbox name-search
    # tokens, read markers, ...) reports its own count beside the fixed ones: Quentin's name
    # tokens are among what it removed, Chloe's stay.
    assert event.data.pop("inventory") >= 1
    async with unit_of_work() as db:
        tokens = dict(
            (
                await db.execute(
                    select(ContactNameToken.contact_id, func.count()).group_by(
                        ContactNameToken.contact_id
                    )
                )
            ).all()
        )
    assert quiet.id not in tokens and tokens[chatty.id] >= 1
    assert event.data == {
        "rule": "contacts",
        "table": "contacts",
        "class": "contact_inactivity",
        "count": 1,
        "contacts": 1,
        "messages": 1,
        "files": 1,
        "keys_destroyed": 1,
    }
    destroyed = (await events("keys.subject_destroyed"))[-1]
    assert destroyed.data["reason"] == "retention" and destroyed.data["count"] == 1

    # A later run finds nothing more to do; the customer writing again is a new contact.
    again = await run_cli("retention", "run", "--dry-run", "--rule", "contacts")
    assert (
        next(ln for ln in again.output.splitlines() if ln.startswith("contacts")).split()[3] == "0"
    )
    back = await customer_writes(owner, "16505550101", "Quentin Quiet")
    assert back.id != quiet.id and back.phone_enc is not None


async def test_activity_holds_and_a_workspaces_own_period(app: Any) -> None:
    owner, ws = await owner_of(app, "Short Period LLC")
    other, other_ws = await owner_of(app, "Default Period LLC")
    await connect(owner)
    await connect(other, pnid=PNID_B, waba=WABA_B, display=DISPLAY_B)
    held = await customer_writes(owner, "16505550201", "Hilda Held")
    decided = await customer_writes(owner, "16505550202", "Dora Decided")
    plain = await customer_writes(owner, "16505550203", "Paul Plain")
    elsewhere = await customer_writes(other, "16505550204", "Olga Other", number_b=True)

    r = await owner.client.put(
        "/api/v1/workspace/retention/contact_inactivity", json={"days": 180}, headers=owner.h
    )
    assert r.status_code == 200, r.text
    bad = await owner.client.put(
        "/api/v1/workspace/retention/contact_inactivity", json={"days": 30}, headers=owner.h
    )
    assert bad.status_code == 422 and "between 180 and 3650 days" in bad.text

    # Dora stops marketing messages after 100 days: a consent decision is activity.
    clock.advance(timedelta(days=100))
    stop = copy.deepcopy(load("user_preferences_stop"))
    value = stop["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = "16505550202"
    value["user_preferences"][0].update(
        {"wa_id": "16505550202", "timestamp": int(clock.now().timestamp())}
    )
    await delivered(owner.client, stop)
    await drain()
    placed = await run_cli(
        "retention", "hold", "place", "--subject", f"contact:{held.id}", "--reason", "claim 88"
    )
    assert placed.exit_code == 0, placed.output

    clock.advance(timedelta(days=90))  # 190 days after the first messages
    result = await run_cli("retention", "run", "--no-progress")
    assert result.exit_code == 0, result.output
    assert (await contact_row(plain.id)).phone_enc is None  # past the workspace's 180 days
    assert (await contact_row(held.id)).phone_enc is not None  # held
    assert (await contact_row(decided.id)).phone_enc is not None  # decided 90 days ago
    assert (await contact_row(elsewhere.id)).phone_enc is not None  # default: 3 years
    line = next(ln for ln in result.output.splitlines() if ln.startswith("contacts"))
    assert line.split()[3:5] == ["1", "1"]  # one anonymised, one kept by the hold
    [event] = [e for e in await events("retention.anonymised") if e.data["rule"] == "contacts"]
    assert event.workspace_id == ws

    # A hold on the whole workspace keeps Dora past her period too.
    ws_hold = await run_cli(
        "retention", "hold", "place", "--workspace", str(ws), "--reason", "inquiry 9"
    )
    assert ws_hold.exit_code == 0
    clock.advance(timedelta(days=200))
    assert (await run_cli("retention", "run")).exit_code == 0
    assert (await contact_row(decided.id)).phone_enc is not None
    assert (await contact_row(held.id)).phone_enc is not None

    for line in (await run_cli("retention", "hold", "list")).output.splitlines():
        hold_id = line.split()[0]
        assert (await run_cli("retention", "hold", "release", hold_id)).exit_code == 0
    assert (await run_cli("retention", "run")).exit_code == 0
    assert (await contact_row(decided.id)).phone_enc is None
    assert (await contact_row(held.id)).phone_enc is None
    assert (await contact_row(elsewhere.id)).phone_enc is not None
    assert other_ws != ws

    # Dora's opt-out (day 100) is proof for six years, now that she is anonymous; then it goes.
    subject = ConsentRecord.subject == f"contact:{decided.id}"
    assert await count(ConsentRecord, subject) == 1
    assert await count(ContactPreferenceEvent) == 1
    clock.advance(timedelta(days=6 * 365 + 100 - 390 - 1))  # a day short of six years
    assert (await run_cli("retention", "run")).exit_code == 0
    assert await count(ContactPreferenceEvent) == 1 and await count(ConsentRecord, subject) == 1
    clock.advance(timedelta(days=2))
    assert (await run_cli("retention", "run")).exit_code == 0
    assert await count(ContactPreferenceEvent) == 0 and await count(ConsentRecord, subject) == 0
