"""Warming the decrypted-key cache for a batch of subjects in one key-store transaction (the
intake processor does it for a batch's people): the keys it loads open their values, an erased
subject stays erased."""

from __future__ import annotations

import pytest

from connectx.db.session import unit_of_work
from connectx.kit.crypto import KeyDestroyed
from connectx.privacy import keystore
from connectx.privacy import vault as vault_module
from connectx.privacy.vault import Vault, reset_caches
from tests.privacy.support import KeyStoreStatements


async def test_warm_loads_many_keys_at_once_and_never_an_erased_one() -> None:
    async with unit_of_work() as db:
        v = Vault(db)
        sealed = {
            f"contact:{i}": await v.encrypt(7, f"contact:{i}", "contacts.name", f"name {i}")
            for i in range(1, 4)
        }
        await v.destroy_subject(7, "contact:3")
    reset_caches()
    v = Vault()
    assert await v.warm(7, [*sealed, "contact:99"]) == 2  # 3 is erased, 99 has no key
    assert await v.warm(7, list(sealed)) == 0  # already warm: no key-store trip
    trips = 0
    real = vault_module.keystore.session

    def counting():  # type: ignore[no-untyped-def]
        nonlocal trips
        trips += 1
        return real()

    vault_module.keystore.session = counting  # type: ignore[assignment]
    try:
        for i in (1, 2):
            subject = f"contact:{i}"
            assert await v.decrypt(7, subject, "contacts.name", sealed[subject]) == f"name {i}"
    finally:
        vault_module.keystore.session = real  # type: ignore[assignment]
    assert trips == 0  # opened from the cache the warm-up filled
    with pytest.raises(KeyDestroyed):
        await v.decrypt(7, "contact:3", "contacts.name", sealed["contact:3"])


async def test_warming_many_keys_reads_their_scope_key_once() -> None:
    """What made a cold cache slow: unwrapping each subject key read the row of the scope key
    that wraps it again, one key-store round trip per person. The scope key is read once."""
    subjects = [f"contact:{i}" for i in range(1, 31)]
    async with unit_of_work() as db:
        v = Vault(db)
        sealed = [await v.encrypt(8, s, "contacts.name", f"name of {s}") for s in subjects]
    reset_caches()
    await keystore.ensure_schema()
    counter = KeyStoreStatements()
    try:
        assert await Vault().warm(8, subjects) == 30
        warmed = counter.count
        for subject, blob in zip(subjects, sealed, strict=True):
            assert await Vault().decrypt(8, subject, "contacts.name", blob) == f"name of {subject}"
        assert counter.count == warmed  # opened from the cache
    finally:
        counter.close()
    # the subject keys' versions, the scope key's row (and BEGIN where the driver sends one)
    assert warmed <= 3, warmed


async def test_reading_keys_that_exist_takes_no_write_lock() -> None:
    """Opening a value and finding a subject's existing key read the key store in a read-only
    transaction: on SQLite they go on while another transaction holds the key store's write
    lock (they took it themselves, and so waited up to the 30 s busy timeout behind it)."""
    import asyncio

    from sqlalchemy import text

    v = Vault()
    sealed = await v.encrypt(7, "contact:1", "contacts.name", "Ada")
    reset_caches()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with keystore.session() as db:
            await db.execute(text("SELECT 1"))  # BEGIN IMMEDIATE on SQLite
            holding.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await holding.wait()
    try:
        async with asyncio.timeout(5):
            assert await v.decrypt(7, "contact:1", "contacts.name", sealed) == "Ada"
            reset_caches()
            key_id, _ = await v.subject_key(7, "contact:1")
            info = await v.key_info(7, "contact:1")
        assert info is not None and info.id == key_id
    finally:
        release.set()
        await task
