"""Erasure, the issue's "done when": after erasing Zara as a customer of business A, a byte scan
of the database files (SQLite file and WAL, or pg_dump), of the media store and of a backup taken
before finds none of her values readable; her data in an earlier backup cannot be opened, and
restoring it erases her again; the same person at business B, the other customers and the
per-day message counts are untouched."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectx.backups.service import _unseal
from connectx.db.engine import dispose_engines
from connectx.db.session import unit_of_work
from connectx.kit.crypto import KeyDestroyed
from connectx.media import store
from connectx.models.audit import AuditEvent
from connectx.models.contact import Contact
from connectx.models.media import MediaFile
from connectx.models.message import Message
from connectx.models.webhook_event import WebhookEvent
from connectx.privacy.rights import Outcome, Right, Subject, execute
from connectx.privacy.vault import Vault
from tests.privacy import rights_world as w
from tests.privacy.support import backup_bytes, database_bytes, retire_webhook_keys, tree_bytes
from tests.retention.support import run_cli
from tests.support.factories import signed_in
from tests.whatsapp.support import PNID_A, WABA_A, delivered, drain, rows


def _hers() -> list[bytes]:
    return [
        *w.ZARA.values(),
        w.ZARA.phone.encode(),
        w.CAPTION.encode(),
        w.REPLY.encode(),
        w.ATTRIBUTE[1].encode(),
        w.NOTE.encode(),
        b"zara-photo-of-receipt",
    ]


def _readable(blob: bytes) -> list[bytes]:
    return [v for v in _hers() if v in blob]


async def _open_raw(blob: bytes, received_at: datetime) -> str:
    from connectx.intake.batcher import day_subject
    from connectx.intake.raw_body import open_body

    return (await open_body(Vault(), day_subject(received_at), blob)).decode()


async def _raw_bodies() -> dict[int, tuple[bytes, str, datetime]]:
    """Every raw webhook holding a body: id -> (sealed bytes, what they open to, received)."""
    async with unit_of_work() as db:
        found = (
            await db.execute(
                select(WebhookEvent.id, WebhookEvent.received_at, WebhookEvent.body_enc).where(
                    WebhookEvent.body_enc.is_not(None)
                )
            )
        ).all()
    return {i: (blob, await _open_raw(blob, at), at) for i, at, blob in found}


def _mentions_her(body: str) -> bool:
    return w.ZARA.wa_id in body or w.ZARA.bsuid in body


async def _contact(contact_id: int) -> Contact:
    async with unit_of_work() as db:
        return (await db.execute(select(Contact).where(Contact.id == contact_id))).scalar_one()


async def _view(owner: Any, contact_id: int) -> dict[str, Any]:
    r = await owner.get(f"/api/v1/contacts/{contact_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_erasure_leaves_nothing_of_hers_readable_anywhere(
    rights_world: w.World, tmp_path: Path
) -> None:
    world = rights_world
    zara = world.contacts["zara"]
    counts_a = await w.messages_per_day(world.ws_a)
    counts_b = await w.messages_per_day(world.ws_b)
    others = {
        key: await _view(o, world.contacts[key])
        for key, o in (("omar", world.owner_a), ("zara_b", world.owner_b), ("yusuf", world.owner_b))
    }
    async with unit_of_work() as db:  # an archive of hers waits for download
        access = await execute(db, Right.ACCESS, world.subject)
        # (her photo's file by its row: the media directory is shared by the tests of a worker)
        photo_key = (
            await db.execute(
                select(MediaFile.storage_key).where(MediaFile.message_id == world.photo_message)
            )
        ).scalar_one()
    assert photo_key is not None and (store.media_dir() / photo_key).exists()
    made = await run_cli("backup", "create", "--dir", str(tmp_path / "backups"))
    assert made.exit_code == 0, made.output
    [earlier] = sorted((tmp_path / "backups").glob("connectx-2*.cxbak"))
    async with unit_of_work() as db:
        old = (await db.execute(select(Contact).where(Contact.id == zara))).scalar_one()
        old_name = old.name_enc
    raw_before = await _raw_bodies()  # byte for byte what the backup holds of them
    hers_raw = {i for i, (_, plain, _) in raw_before.items() if _mentions_her(plain)}
    assert hers_raw and set(raw_before) - hers_raw  # hers, and others' of the same day

    async with unit_of_work() as db:
        result = await execute(db, Right.ERASURE, world.subject, actor="user:1", request_id=9)
    assert result.outcome is Outcome.PARTIAL
    kept = " ".join(k.what for k in result.kept)
    assert "consent decisions" in kept and "opt-outs" in kept
    assert any("Meta" in n for n in result.notices)
    assert result.counts["raw_webhooks"] >= 2 and result.counts["archives"] == 1

    # The live database (files and WAL, or a dump), the key store, the media store.
    assert _readable(await database_bytes()) == []
    assert _readable(tree_bytes(store.media_dir())) == []
    assert not (store.media_dir() / photo_key).exists()
    row = await _contact(zara)
    assert row.phone_enc is None and row.name_enc is None and row.phone_index is None
    info = await Vault().key_info(world.ws_a, world.subject.ref)
    assert info is not None and info.destroyed
    with pytest.raises(KeyDestroyed):
        await Vault().decrypt(world.ws_a, world.subject.ref, "contacts.name", old_name)
    async with unit_of_work() as db:
        bodies = (
            await db.execute(
                select(Message.body_enc, Message.raw_enc).where(Message.contact_id == zara)
            )
        ).all()
        assert bodies and all(b is None and r is None for b, r in bodies)
        raw = (await db.execute(select(WebhookEvent.body_enc))).scalars().all()
        assert sum(1 for b in raw if b is None) == result.counts["raw_webhooks"]

    # Raw webhook bodies: hers are cleared; the keys of their days are retired once no process
    # can still seal under them (a job due after the key cache TTL).
    await retire_webhook_keys()

    # The backup taken before: nothing of hers in clear, and her sealed values no longer open.
    unpacked = tmp_path / "unpacked"
    await asyncio.to_thread(_unseal, earlier, unpacked)
    backup = await backup_bytes(unpacked)
    assert _readable(backup) == []
    # ... her raw webhook bodies there (those very bytes) no longer open either,
    for event_id, (blob, _, at) in raw_before.items():
        assert blob in backup or blob.hex().encode() in backup
        if event_id in hers_raw:
            with pytest.raises(KeyDestroyed):
                await _open_raw(blob, at)
    # ... while every other live raw body of those days was re-sealed and still opens.
    raw_after = await _raw_bodies()
    assert set(raw_after) == set(raw_before) - hers_raw
    for event_id, (_, plain, _) in raw_after.items():
        assert plain == raw_before[event_id][1]
    old_photo = unpacked / "media" / photo_key
    assert old_photo.exists()
    with pytest.raises(KeyDestroyed):
        chunks = store.open_chunks(Vault(), world.ws_a, zara, photo_key, base=unpacked / "media")
        await anext(chunks)

    # Everybody else as before; the counts survive.
    for key, owner in (
        ("omar", world.owner_a),
        ("zara_b", world.owner_b),
        ("yusuf", world.owner_b),
    ):
        assert await _view(owner, world.contacts[key]) == others[key], key
    assert others["zara_b"]["name"] == w.ZARA.name  # the same person at business B is untouched
    assert await w.messages_per_day(world.ws_a) == counts_a
    assert await w.messages_per_day(world.ws_b) == counts_b
    gone = await _view(world.owner_a, zara)
    assert gone["name"] is None and gone["phone"] is None

    async with unit_of_work() as db:
        actions = set(
            (
                await db.execute(
                    select(AuditEvent.action).where(
                        AuditEvent.action.in_(("keys.subject_destroyed", "privacy.right_executed"))
                    )
                )
            ).scalars()
        )
    assert actions == {"keys.subject_destroyed", "privacy.right_executed"}
    async with unit_of_work() as db:
        retired = (
            await db.execute(
                select(AuditEvent.subject).where(AuditEvent.action == "keys.subject_destroyed")
            )
        ).scalars()
        assert {s for s in retired if s and s.startswith("webhook_day:")}
    assert access.artifact_id is not None

    # Restoring the earlier backup erases her again (the erasure log is the key store).
    restored = await run_cli("backup", "restore", str(earlier), "--yes")
    assert restored.exit_code == 0, restored.output
    await dispose_engines()
    row = await _contact(zara)
    assert row.phone_enc is None and row.name_enc is None and row.bsuid_index is None
    assert _readable(await database_bytes()) == []
    world.owner_b.csrf = await signed_in(world.owner_b.client, world.owner_b.email)
    assert (await _view(world.owner_b, world.contacts["zara_b"]))["name"] == w.ZARA.name

    # Intake goes on under the day's new key (the restore kept the live key store).
    omars = await rows(Message, Message.contact_id == world.contacts["omar"])
    await delivered(world.owner_a.client, w._message(w.OMAR, PNID_A, WABA_A))
    assert set(await drain()) <= {"processed", "malformed"}
    assert len(await rows(Message, Message.contact_id == world.contacts["omar"])) == len(omars) + 1


async def test_a_legal_hold_refuses_erasure_and_changes_nothing(rights_world: w.World) -> None:
    world = rights_world
    placed = await run_cli(
        "retention", "hold", "place", "--subject", world.subject.ref, "--reason", "case 2026-31"
    )
    assert placed.exit_code == 0, placed.output
    async with unit_of_work() as db:
        result = await execute(db, Right.ERASURE, world.subject)
    assert result.outcome is Outcome.REFUSED
    assert [k.basis for k in result.kept] == ["legal_hold"]
    assert (await _view(world.owner_a, world.contacts["zara"]))["name"] == w.ZARA.name
    info = await Vault().key_info(world.ws_a, world.subject.ref)
    assert info is not None and not info.destroyed


async def test_an_account_holder_is_erased_unless_they_alone_own_a_workspace(
    rights_world: w.World, app: Any
) -> None:
    world = rights_world
    from connectx.accounts import service as accounts
    from tests.workspaces.helpers import person

    owner = Subject.user(world.owner_a.user.id)
    async with unit_of_work() as db:
        with pytest.raises(Exception, match="only owner") as refused:
            await execute(db, Right.ERASURE, owner)
    assert getattr(refused.value, "status", None) == 409

    member = await person(app)
    subject = Subject.user(member.user.id)
    async with unit_of_work() as db:
        result = await execute(db, Right.ERASURE, subject, actor="operator")
    assert result.outcome is Outcome.PARTIAL
    assert "Meta" not in " ".join(result.notices)
    async with unit_of_work() as db:
        assert await accounts.find_user_by_email(db, member.email) is None
    info = await Vault().key_info(None, subject.ref)
    assert info is not None and info.destroyed
    assert member.email.encode() not in await database_bytes()
