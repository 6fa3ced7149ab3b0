"""Raw webhook bodies are stored compressed, then sealed; bodies sealed as received still open."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
import zstandard

from connectx.db.engine import get_engine
from connectx.db.session import unit_of_work
from connectx.intake import processor, raw_body
from connectx.intake import repository as intake_repo
from connectx.intake.batcher import day_subject
from connectx.kit import clock
from connectx.kit.crypto import CryptoError, key_id_of
from connectx.models.channel import MetaApp
from connectx.models.message import Message
from connectx.models.webhook_event import WebhookEvent
from connectx.privacy import purpose
from connectx.privacy.rights import raw_webhooks
from connectx.privacy.vault import Vault
from tests.whatsapp.support import deliver, delivered, drain, load, rows


def _many_messages(n: int) -> dict[str, Any]:
    payload = load("message_text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] = [{**value["messages"][0], "id": f"wamid.many.{i}"} for i in range(n)]
    return payload


async def _only_event() -> WebhookEvent:
    (event,) = await rows(WebhookEvent)
    return event


async def test_a_stored_body_is_compressed_and_opens_to_the_bytes_received(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    body = json.dumps(_many_messages(60)).encode()
    await delivered(client, body)
    event = await _only_event()
    assert event.body_size == len(body) > 8_000
    assert event.body_enc is not None and len(event.body_enc) < len(body) / 4  # was ~len + 30
    opened = await raw_body.open_body(Vault(), day_subject(event.received_at), event.body_enc)
    assert opened == body
    assert await drain() == {"processed": 1}
    assert len(await rows(Message)) == 60


async def test_the_label_the_ciphertext_is_bound_to_names_the_codec() -> None:
    """A compressed body does not open as a body stored as received (nor the reverse), and the
    purpose check reads both labels as the same column."""
    subject = day_subject(clock.now())
    vault = Vault()
    (packed,) = await raw_body.seal_many(vault, subject, [b'{"object": "x"}'])
    with pytest.raises(CryptoError):
        await vault.decrypt_bytes(None, subject, raw_body.COLUMN, packed)
    plain = await vault.encrypt(None, subject, raw_body.COLUMN, b'{"object": "x"}')
    with pytest.raises(CryptoError):
        await vault.decrypt_bytes(None, subject, raw_body.PACKED, plain)
    assert await raw_body.open_body(vault, subject, plain) == b'{"object": "x"}'
    declared = purpose.category_of(raw_body.COLUMN)
    assert declared is not None and purpose.category_of(raw_body.PACKED) == declared


async def _stored_as_received(body: bytes) -> int:
    """A raw event row as intake wrote it before bodies were compressed; returns its id."""
    (app,) = await rows(MetaApp)
    at = clock.now()
    sealed = await Vault().encrypt(None, day_subject(at), raw_body.COLUMN, body)
    await intake_repo.commit_new([(clock.micros_of(at), app.id, sealed, len(body))])
    return int((await _only_event()).id)


@pytest.mark.parametrize("messages", [40, 2])
async def test_sqlite_compresses_large_bodies_on_its_database_thread_and_the_rest_on_the_loop(
    client: httpx.AsyncClient,
    channel: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    messages: int,
) -> None:
    """SQLite: a body of 4 kB or more with Zstandard on the driver's thread, in the group
    commit's trip (beside the loop); a smaller one, and every body on PostgreSQL, with LZ4 on
    the loop. The stored body opens under that codec's label alone."""
    seen: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()
    for packer in (raw_body.ZstdPacker, raw_body.Lz4Packer):

        def recording(self: Any, bodies: list[bytes], real: Any = packer.pack_many) -> Any:
            seen.append((self.label, threading.get_ident() == loop_thread))
            return real(self, bodies)

        monkeypatch.setattr(packer, "pack_many", recording)
    body = json.dumps(_many_messages(messages)).encode()
    assert (len(body) >= raw_body.ON_THREAD_FROM) == (messages == 40)
    await delivered(client, body)
    on_thread = get_engine().dialect.name == "sqlite" and len(body) >= raw_body.ON_THREAD_FROM
    label = raw_body.ZSTD if on_thread else raw_body.LZ4
    assert seen == [(label, not on_thread)]
    event = await _only_event()
    assert event.body_enc is not None
    subject = day_subject(event.received_at)
    vault = Vault()
    await vault.decrypt_bytes(None, subject, label, event.body_enc)  # (raises under another)
    other = raw_body.LZ4 if on_thread else raw_body.ZSTD
    with pytest.raises(CryptoError):
        await vault.decrypt_bytes(None, subject, other, event.body_enc)
    assert await raw_body.open_body(vault, subject, event.body_enc) == body


async def test_a_group_of_large_and_small_bodies_is_stored_in_the_order_received(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """One group commit of mixed sizes (two codecs on SQLite): ids follow arrival."""
    from connectx.intake import batcher as batcher_module

    processor.stop_embedded()
    (app,) = await rows(MetaApp)
    bodies = [json.dumps(_many_messages(n)).encode() for n in (40, 1, 2, 40, 1)]
    writer = batcher_module.GroupCommitBatcher()
    try:
        await asyncio.gather(*(writer.submit(app.id, body) for body in bodies))
    finally:
        await writer.close()
    stored = await rows(WebhookEvent, order_by=WebhookEvent.id)
    vault = Vault()
    opened = [
        await raw_body.open_body(vault, day_subject(e.received_at), e.body_enc or b"")
        for e in stored
    ]
    assert opened == bodies


async def test_a_body_compressed_with_lz4_is_processed_on_either_database(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """What PostgreSQL writes, and SQLite wrote before Zstandard (sessions 16-20)."""
    (app,) = await rows(MetaApp)
    at = clock.now()
    body = json.dumps(_many_messages(4)).encode()
    packer = raw_body.Lz4Packer()
    sealer = await Vault().sealer(None, day_subject(at), packer.label)
    (sealed,) = raw_body.seal_group(sealer, packer, [body])
    await intake_repo.commit_new([(clock.micros_of(at), app.id, sealed, len(body))])
    assert await raw_body.open_body(Vault(), day_subject(at), sealed) == body
    assert await drain() == {"processed": 1}
    assert len(await rows(Message)) == 4


def test_a_zstandard_group_opens_body_by_body() -> None:
    bodies = [json.dumps(_many_messages(n)).encode() for n in (1, 7, 50)] + [b"", b"{}"]
    packed = raw_body.ZstdPacker().pack_many(bodies)
    assert [zstandard.ZstdDecompressor().decompress(p) for p in packed] == bodies
    assert raw_body.ZstdPacker().pack_many([]) == []


async def test_a_body_sealed_as_received_is_processed(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    await _stored_as_received(json.dumps(_many_messages(3)).encode())
    assert await drain() == {"processed": 1}
    assert len(await rows(Message)) == 3


async def test_re_sealing_a_day_moves_bodies_sealed_as_received_to_the_compressed_form(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    body = json.dumps(_many_messages(20)).encode()
    await _stored_as_received(body)
    event = await _only_event()
    assert event.body_enc is not None
    subject = day_subject(event.received_at)
    async with unit_of_work() as db:
        await raw_webhooks.retire(db, subject, [key_id_of(event.body_enc)], actor="test")
    moved = await _only_event()
    assert moved.body_enc is not None and key_id_of(moved.body_enc) != key_id_of(event.body_enc)
    assert len(moved.body_enc) < len(body) / 2
    vault = Vault()
    assert await vault.decrypt_bytes(None, subject, raw_body.PACKED, moved.body_enc) != body
    assert await raw_body.open_body(vault, subject, moved.body_enc) == body


async def test_erasure_reads_raw_bodies_that_are_not_utf8(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """A malformed delivery (kept for inspection) is bytes, not text: the scrub of an erasure
    looks for the person's identifiers in it without decoding it (it raised before)."""
    assert (await deliver(client, b'\xff\xfe{"wa_id": "16505551234"}')).status_code == 200
    assert (await deliver(client, b'{"wa_id": "16505559999"}')).status_code == 200
    assert await drain() == {"malformed": 1, "processed": 1}
    async with unit_of_work() as db:
        assert await raw_webhooks.scrub(db, ["16505551234"], actor="test") == 1
    kept = await rows(WebhookEvent, order_by=WebhookEvent.id)
    assert [e.body_enc is None for e in kept] == [True, False]


async def test_the_codec_that_opened_the_last_body_is_tried_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every label is still tried, but a run of one codec's bodies costs one AES-GCM check a
    body, not a failed one first."""
    subject = day_subject(clock.now())
    vault = Vault()
    sealed = {}
    for packer in (raw_body.ZstdPacker(), raw_body.Lz4Packer()):
        sealer = await vault.sealer(None, subject, packer.label)
        sealed[packer.label] = raw_body.seal_group(sealer, packer, [b'{"n": 1}', b'{"n": 2}'])
    tried: list[str] = []
    real = Vault.decrypt_bytes

    async def counting(self: Vault, ws: Any, subj: str, column: str, blob: bytes) -> bytes:
        tried.append(column)
        return await real(self, ws, subj, column, blob)

    await raw_body.open_body(vault, subject, sealed[raw_body.ZSTD][0])  # Zstandard last
    monkeypatch.setattr(Vault, "decrypt_bytes", counting)
    for label in (raw_body.LZ4, raw_body.ZSTD):
        for n, blob in enumerate(sealed[label], 1):
            tried.clear()
            assert await raw_body.open_body(vault, subject, blob) == b'{"n": %d}' % n
            assert tried[-1] == label and len(tried) == (2 if n == 1 else 1)
