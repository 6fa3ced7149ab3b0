"""New customers' data keys are made together: a batch of first messages from new customers
costs one key-store transaction for all their keys, not one each (issue 6, "intake within 10 %"
of the first message of a new customer). Each still gets a key of their own, their values open
with it, and an id reserved for a contact that was not created is never handed out."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from connectx.contacts.service import Contacts, subject_of
from connectx.db.session import unit_of_work
from connectx.intake import dispatch, processor
from connectx.integrations.whatsapp.schemas import Identity, Profile
from connectx.models.contact import Contact
from connectx.models.crypto_key import CryptoKey
from connectx.privacy import keystore
from connectx.privacy import vault as vault_module
from connectx.privacy.vault import Vault
from tests.privacy.rights_support import make_workspace
from tests.whatsapp.support import batch, delivered, drain, load, rows


def _first_messages(n: int, start: int = 0) -> dict[str, Any]:
    payloads = []
    for i in range(start, start + n):
        payload = copy.deepcopy(load("message_text"))
        value = payload["entry"][0]["changes"][0]["value"]
        phone = f"1650555{i:04d}"
        value["contacts"][0].update(
            wa_id=phone, user_id=f"US.9{i:019d}", profile={"name": f"Customer {i}"}
        )
        message = value["messages"][0]
        message.update({"from": phone, "from_user_id": f"US.9{i:019d}", "id": f"wamid.new.{i}"})
        payloads.append(payload)
    return batch(*payloads)


@contextmanager
def key_store_transactions() -> Iterator[list[int]]:
    opened = [0]
    real = keystore.session

    def counting():  # type: ignore[no-untyped-def]
        opened[0] += 1
        return real()

    vault_module.keystore.session = counting  # type: ignore[assignment]
    try:
        yield opened
    finally:
        vault_module.keystore.session = real  # type: ignore[assignment]


async def _subject_keys() -> int:
    async with keystore.session() as ks:
        found = await ks.execute(CryptoKey.__table__.select().where(CryptoKey.kind == "subject"))
        return len(found.all())


async def test_a_batch_of_new_customers_gets_its_keys_in_one_key_store_transaction(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()  # this test drives processing itself
    # one transaction per batch, however slow the machine (a batch cut short by the time
    # budget continues in another transaction, which reserves again for those not yet created)
    monkeypatch.setattr(dispatch.BatchProcessor, "_time_to_stop", lambda self, elapsed: False)
    await delivered(client, _first_messages(2, start=100))  # scope and index keys exist now
    await drain()
    before = await _subject_keys()
    await delivered(client, _first_messages(12))
    with key_store_transactions() as opened:
        await drain()
    contacts = [c for c in await rows(Contact, order_by=Contact.id) if c.id > 2]
    assert len(contacts) == 12
    assert await _subject_keys() == before + 12
    # one to warm returning customers' keys (none here), one for the twelve new keys
    assert opened[0] <= 2, opened[0]
    vault_module.reset_caches()  # read back from the key store: each has a key of its own
    v = Vault()
    names, key_ids = set(), set()
    for c in contacts:
        assert c.name_enc is not None
        names.add(await v.decrypt(c.workspace_id, subject_of(c.id), "contacts.name", c.name_enc))
        info = await v.key_info(c.workspace_id, subject_of(c.id))
        assert info is not None and info.version == 1
        key_ids.add(info.id)
    assert names == {f"Customer {i}" for i in range(12)}
    assert len(key_ids) == 12


async def test_one_person_seen_twice_is_one_reservation_and_unused_ids_are_never_reused() -> None:
    ws = await make_workspace()
    same = [Identity(phone="+16505550001"), Identity(phone="+16505550001", bsuid="US.1")]
    async with unit_of_work() as db:
        contacts = Contacts(db)
        assert await contacts.prefetch(ws, [*same, Identity(phone="+16505550002")]) == []
        reserved = list(contacts._reserved[ws])
        assert len(reserved) == 2  # two people
        first = await contacts.resolve(ws, same[0], Profile(name="One"))
        assert first is not None and first.id == reserved[0]
        # the second reserved id is not used in this transaction
    async with unit_of_work() as db:
        later = await Contacts(db).resolve(ws, Identity(phone="+16505550003"))
        assert later is not None
    assert later.id > reserved[1]
    info = await Vault().key_info(ws, subject_of(reserved[0]))
    assert info is not None and info.version == 1


async def test_a_batch_continued_over_many_transactions_makes_each_key_once(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()
    await delivered(client, _first_messages(1, start=100))
    await drain()
    before = await _subject_keys()
    # every transaction stops after one update: twelve transactions for the batch, each
    # reserving for the people not created yet; ids left over are used by the next ones
    monkeypatch.setattr(dispatch.BatchProcessor, "_time_to_stop", lambda self, elapsed: True)
    await delivered(client, _first_messages(12))
    with key_store_transactions() as opened:
        await drain()
    contacts = await rows(Contact, order_by=Contact.id)
    assert len(contacts) == 13
    assert await _subject_keys() == before + 12
    assert opened[0] <= 3, opened[0]  # the first transaction made them all


async def test_returning_and_new_people_of_a_batch_share_one_key_store_transaction() -> None:
    """A processing batch with people who wrote before (their keys expired from the cache) and
    new people: loading the ones and making the others is one key-store transaction."""
    ws = await make_workspace()
    sealed: dict[int, bytes] = {}
    async with unit_of_work() as db:
        for i in range(3):
            c = await Contacts(db).resolve(
                ws, Identity(phone=f"+1650555300{i}"), Profile(name=f"Returning {i}")
            )
            assert c is not None and c.name_enc is not None
            sealed[c.id] = c.name_enc
    vault_module.reset_caches()  # a restart, or the cache TTL ran out
    returning = [Identity(phone=f"+1650555300{i}") for i in range(3)]
    new = [Identity(phone=f"+1650555400{i}") for i in range(4)]
    async with unit_of_work() as db:
        contacts = Contacts(db)
        await contacts.vault.blind_index("phone", "+1")  # the blind-index key: not the point
        with key_store_transactions() as opened:
            assert await contacts.prefetch(ws, [*returning, *new]) == sorted(sealed)
        assert opened[0] == 1
        reserved = list(contacts._reserved[ws])
        assert len(reserved) == 4
        with key_store_transactions() as opened:  # everybody's key is in the cache now
            for cid, blob in sealed.items():
                name = await contacts.vault.decrypt(ws, subject_of(cid), "contacts.name", blob)
                assert name.startswith("Returning")
            for cid in reserved:
                await contacts.vault.encrypt(ws, subject_of(cid), "contacts.name", "New")
        assert opened[0] == 0
    for cid in reserved:
        info = await Vault().key_info(ws, subject_of(cid))
        assert info is not None and info.version == 1
