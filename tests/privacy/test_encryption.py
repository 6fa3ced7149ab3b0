"""Encryption at rest (policy §7) with crypto-shredding: envelope keys, associated data, the key
store kept out of data backups, the unwrapped-key cache."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from connectx.audit import repository as audit_repo
from connectx.config import get_settings
from connectx.db.session import unit_of_work
from connectx.kit import clock, crypto
from connectx.kit.crypto import CryptoError, KeyDestroyed
from connectx.mail import service as mail
from connectx.models.account import User
from connectx.models.audit import AuditEvent
from connectx.models.crypto_key import CryptoKey
from connectx.models.mail import MailMessage
from connectx.privacy import keystore, vault
from connectx.privacy.vault import Vault
from tests.privacy.support import (
    KeyStoreStatements,
    cli_here,
    database_bytes,
    is_postgres,
    restore_data_backup,
    restore_keystore_backup,
    take_data_backup,
    take_keystore_backup,
)
from tests.support.factories import make_user


async def _user(user_id: int) -> User:
    async with unit_of_work() as db:
        return (await db.execute(select(User).where(User.id == user_id))).scalar_one()


async def _open(user: User, column: str = "users.name") -> str:
    async with unit_of_work() as db:
        return await Vault(db).decrypt(None, f"user:{user.id}", column, user.name_enc)


async def test_round_trip_of_text_and_bytes_in_both_scopes() -> None:
    async with unit_of_work() as db:
        v = Vault(db)
        for workspace_id in (None, 7):
            for value in ("Ada Lovelace", "", "Zoë Ålander 李小龙 🙂"):
                blob = await v.encrypt(workspace_id, "contact:5", "contacts.name", value)
                assert await v.decrypt(workspace_id, "contact:5", "contacts.name", blob) == value
            raw = bytes(range(256))
            blob = await v.encrypt(workspace_id, "contact:5", "messages.media", raw)
            assert await v.decrypt_bytes(workspace_id, "contact:5", "messages.media", blob) == raw
        # The same plaintext seals differently every time (random nonce).
        a = await v.encrypt(None, "user:1", "users.name", "Ada")
        b = await v.encrypt(None, "user:1", "users.name", "Ada")
        assert a != b and b"Ada" not in a


async def test_every_ciphertext_names_the_subject_key_that_sealed_it() -> None:
    async with unit_of_work() as db:
        v = Vault(db)
        ada = await v.encrypt(None, "user:1", "users.name", "Ada")
        grace = await v.encrypt(None, "user:2", "users.name", "Grace")
        in_ws = await v.encrypt(3, "user:1", "contacts.name", "Ada")
        info_ada = await v.key_info(None, "user:1")
        info_grace = await v.key_info(None, "user:2")
        info_ws = await v.key_info(3, "user:1")
    assert info_ada and info_grace and info_ws
    assert crypto.key_id_of(ada) == info_ada.id
    assert crypto.key_id_of(grace) == info_grace.id
    assert crypto.key_id_of(in_ws) == info_ws.id
    assert len({info_ada.id, info_grace.id, info_ws.id}) == 3  # one key per subject and scope


@pytest.mark.parametrize("cold_cache", [False, True])
async def test_associated_data_binds_scope_subject_and_column(cold_cache: bool) -> None:
    async with unit_of_work() as db:
        v = Vault(db)
        blob = await v.encrypt(None, "user:1", "users.name", "Ada Lovelace")
        await v.encrypt(None, "user:2", "users.name", "Grace Hopper")
        await v.encrypt(4, "user:1", "users.name", "x")
        if cold_cache:
            vault.reset_caches()
        with pytest.raises(CryptoError):  # moved to another column of the same person
            await v.decrypt(None, "user:1", "users.phone", blob)
        with pytest.raises(CryptoError):  # moved to another person's row
            await v.decrypt(None, "user:2", "users.name", blob)
        with pytest.raises(CryptoError):  # moved into a workspace
            await v.decrypt(4, "user:1", "users.name", blob)
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        with pytest.raises(CryptoError):
            await v.decrypt(None, "user:1", "users.name", tampered)
        assert await v.decrypt(None, "user:1", "users.name", blob) == "Ada Lovelace"


async def test_no_plaintext_personal_data_in_the_database_files(client) -> None:
    """Seed known values through the product (sign-up, a workspace invitation, the mail outbox)
    and scan every byte the databases hold: the SQLite files, or pg_dump's output."""
    from tests.support.factories import signed_in

    name, email, phone = "Zebulon Quartermaine", "zebulon.q@example.org", "+971 50 765 4321"
    address = "17 Cherry Tree Lane, Jumeirah"
    invitee = "invitee.hidden@example.net"
    r = await client.post(
        "/api/v1/auth/signup",
        json={
            "name": name,
            "email": email,
            "phone": phone,
            "password": "copper-kettle-morning-31",
            "billing_address": address,
        },
    )
    assert r.status_code == 201, r.text
    owner = await make_user(email="owner.person@example.com", name="Orla Ownerson")
    csrf = await signed_in(client, "owner.person@example.com")
    h = {"X-CSRF-Token": csrf}
    r = await client.post("/api/v1/workspaces", json={"name": "Acme Trading"}, headers=h)
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/workspace/invitations", json={"email": invitee, "role": "agent"}, headers=h
    )
    assert r.status_code == 201, r.text
    assert owner.id

    dump = await database_bytes()
    needles = [name, "Quartermaine", email, "zebulon.q", "+971507654321", "507654321",
               "Cherry Tree", invitee, "invitee.hidden", "Orla Ownerson",
               "owner.person@example.com"]  # fmt: skip
    for needle in needles:
        raw = needle.encode()
        assert raw not in dump, f"{needle!r} is stored in plaintext"
        assert raw.hex().encode() not in dump, f"{needle!r} is stored in plaintext (bytea hex)"
    # The scan can fail: the same files do hold the non-personal business name.
    assert b"Acme Trading" in dump


async def test_destroying_a_subject_key_erases_their_data_in_a_backup_taken_earlier() -> None:
    """Crypto-shredding through a backup: back up the data, erase one person, restore the old
    backup: the erased person's fields stay unreadable, everybody else's are intact."""
    ada = await make_user(email="ada@example.com", name="Ada Lovelace")
    grace = await make_user(email="grace@example.com", name="Grace Hopper")
    async with unit_of_work() as db:
        await mail.send(
            db,
            to="ada@example.com",
            subject="Your receipt",
            body="Thanks Ada",
            kind="receipt",
            subject_ref=f"user:{ada.id}",
            user_id=ada.id,
        )
    assert await _open(await _user(ada.id)) == "Ada Lovelace"

    backup = await take_data_backup()

    async with unit_of_work() as db:
        assert await Vault(db).destroy_subject(None, f"user:{ada.id}", actor="operator") == 1
        # The erasure itself is audited, by id.
    with pytest.raises(KeyDestroyed):
        await _open(await _user(ada.id))

    await restore_data_backup(backup)
    vault.reset_caches()  # as a process started after the restore

    restored_ada = await _user(ada.id)  # the row is back, with its ciphertexts...
    assert restored_ada.name_enc
    async with unit_of_work() as db:
        v = Vault(db)
        for column, blob in (
            ("users.name", restored_ada.name_enc),
            ("users.email", restored_ada.email_enc),
            ("users.phone", restored_ada.phone_enc),
        ):
            with pytest.raises(KeyDestroyed):  # ...but they cannot be read by anyone
                await v.decrypt(None, f"user:{ada.id}", column, blob)
            assert await v.decrypt_or_none(None, f"user:{ada.id}", column, blob) is None
        [message] = (await db.execute(select(MailMessage))).scalars().all()
        with pytest.raises(KeyDestroyed):
            await mail.open_message(db, message)
        # Grace, in the same backup, is untouched.
        restored_grace = (await db.execute(select(User).where(User.id == grace.id))).scalar_one()
        assert (
            await v.decrypt(None, f"user:{grace.id}", "users.name", restored_grace.name_enc)
            == "Grace Hopper"
        )
        assert (
            await v.decrypt(None, f"user:{grace.id}", "users.email", restored_grace.email_enc)
            == "grace@example.com"
        )
        # The restored data holds no key material at all: keys live in the key store.
        tables = await db.run_sync(lambda s: s.get_bind().dialect.get_table_names(s.connection()))
        assert "crypto_keys" not in tables


async def test_restoring_an_old_key_store_backup_does_not_bring_an_erased_person_back() -> None:
    """The key store has its own backups. One taken before an erasure still holds the key:
    ``connectx keys reapply-erasures`` (part of the key-store restore procedure) destroys again
    every key the audit log records as destroyed."""
    ada = await make_user(email="ada@example.com", name="Ada Lovelace")
    grace = await make_user(email="grace@example.com", name="Grace Hopper")
    key_backup = await take_keystore_backup()
    async with unit_of_work() as db:
        await Vault(db).destroy_subject(None, f"user:{ada.id}", actor="operator")

    await restore_keystore_backup(key_backup)
    vault.reset_caches()
    assert await _open(await _user(ada.id)) == "Ada Lovelace"  # the danger this step removes

    run = await cli_here("keys", "reapply-erasures")
    assert run.code == 0 and "1 keys destroyed again" in run.out, run.out + run.err
    vault.reset_caches()
    with pytest.raises(KeyDestroyed):
        await _open(await _user(ada.id))
    assert await _open(await _user(grace.id)) == "Grace Hopper"
    assert "0 keys destroyed again" in (await cli_here("keys", "reapply-erasures")).out


async def test_erasure_is_audited_by_id_and_a_returning_subject_gets_a_new_key() -> None:
    ada = await make_user(email="ada@example.com", name="Ada Lovelace")
    ref = f"user:{ada.id}"
    async with unit_of_work() as db:
        v = Vault(db)
        old = await v.key_info(None, ref)
        await v.destroy_subject(None, ref, actor="user:99")
        await audit_repo.write_pending(db)  # the entry is written at commit, or before a read
        events = (
            (
                await db.execute(
                    select(AuditEvent).where(AuditEvent.action == "keys.subject_destroyed")
                )
            )
            .scalars()
            .all()
        )
        assert [(e.actor, e.subject) for e in events] == [("user:99", ref)]
        assert await v.destroy_subject(None, ref) == 0  # nothing left to destroy
        # New data for the same subject id (SQLite reuses ids) gets a new key version; the old
        # ciphertexts stay unreadable.
        blob = await v.encrypt(None, ref, "users.name", "Someone New")
        new = await v.key_info(None, ref)
        assert old and new and new.version == old.version + 1 and not new.destroyed
        assert await v.decrypt(None, ref, "users.name", blob) == "Someone New"
    with pytest.raises(KeyDestroyed):
        await _open(await _user(ada.id))


async def test_blind_index_is_keyed_stable_and_not_a_plain_hash() -> None:
    import hashlib

    async with unit_of_work() as db:
        v = Vault(db)
        a = await v.blind_index("email", "ada@example.com")
        vault.reset_caches()
        b = await v.blind_index("email", "ada@example.com")
        other = await v.blind_index("email", "grace@example.com")
        kind = await v.blind_index("phone", "ada@example.com")
    assert a == b and a != other and a != kind and len(a) == 32
    assert a != hashlib.sha256(b"ada@example.com").digest()
    assert a != hashlib.sha256(b"email|ada@example.com").digest()


async def test_unwrapped_keys_are_cached_and_an_erasure_elsewhere_is_seen_within_the_ttl() -> None:
    async with unit_of_work() as db:
        v = Vault(db)
        blob = await v.encrypt(None, "user:1", "users.name", "Ada")
        await keystore.ensure_schema()
        counter = KeyStoreStatements()
        try:
            for _ in range(200):  # the hot path: no key-store round trip, no unwrapping
                assert await v.decrypt(None, "user:1", "users.name", blob) == "Ada"
                await v.encrypt(None, "user:1", "users.name", "Ada")
            assert counter.count == 0

            vault.reset_caches()  # a cold process reads the key store once, then caches
            await v.decrypt(None, "user:1", "users.name", blob)
            cold = counter.count
            assert cold > 0
            await v.decrypt(None, "user:1", "users.name", blob)
            assert counter.count == cold
        finally:
            counter.close()

    # Another process destroys the key (straight in the key store): this process keeps its
    # cached copy only until the TTL runs out.
    async with keystore.engine().begin() as conn:
        await conn.execute(
            update(CryptoKey).where(CryptoKey.subject == "user:1").values(wrapped=None)
        )
    async with unit_of_work() as db:
        assert await Vault(db).decrypt(None, "user:1", "users.name", blob) == "Ada"
        clock.advance(timedelta(seconds=get_settings().key_cache_ttl_s + 1))
        with pytest.raises(KeyDestroyed):
            await Vault(db).decrypt(None, "user:1", "users.name", blob)


async def test_an_erasure_in_this_process_takes_effect_at_once() -> None:
    async with unit_of_work() as db:
        v = Vault(db)
        blob = await v.encrypt(5, "contact:9", "contacts.name", "Customer")
        assert await v.decrypt(5, "contact:9", "contacts.name", blob) == "Customer"
        await v.destroy_subject(5, "contact:9")
        with pytest.raises(KeyDestroyed):
            await v.decrypt(5, "contact:9", "contacts.name", blob)


async def test_the_key_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectx.config import reset_settings

    monkeypatch.setenv("CONNECTX_KEY_CACHE_SIZE", "10")
    reset_settings()
    try:
        async with unit_of_work() as db:
            v = Vault(db)
            blobs = [await v.encrypt(None, f"user:{i}", "users.name", f"n{i}") for i in range(40)]
            assert vault.cached_key_count() <= 10
            for i, blob in enumerate(blobs):  # evicted keys are simply read again
                assert await v.decrypt(None, f"user:{i}", "users.name", blob) == f"n{i}"
    finally:
        monkeypatch.delenv("CONNECTX_KEY_CACHE_SIZE")
        reset_settings()


async def test_the_key_store_is_apart_from_the_data_database() -> None:
    async with unit_of_work() as db:
        await Vault(db).encrypt(None, "user:1", "users.name", "Ada")
        data_tables = await db.run_sync(
            lambda s: s.get_bind().dialect.get_table_names(s.connection())
        )
    assert "crypto_keys" not in data_tables
    async with keystore.session() as ks:
        n = (await ks.execute(select(func.count()).select_from(CryptoKey))).scalar_one()
    assert n >= 2  # the platform scope key and user:1's key
    if is_postgres():
        assert keystore.describe().endswith("schema keystore")
    else:
        assert keystore.describe().endswith("keystore.db")


def test_cached_key_objects_agree_with_the_primitives_and_nonces_never_repeat() -> None:
    raw = crypto.new_key()
    key = crypto.Key(raw)
    assert key.keyed_hash("phone|+15551234567") == crypto.keyed_hash(raw, "phone|+15551234567")
    assert key.keyed_hash("phone|+15551234567") == key.keyed_hash("phone|+15551234567")
    assert crypto.open_sealed(raw, key.seal(7, b"body", b"aad"), b"aad") == b"body"
    assert key.open(crypto.seal(raw, 7, b"body", b"aad"), b"aad") == b"body"
    with pytest.raises(CryptoError):
        key.open(key.seal(7, b"body", b"aad"), b"other aad")
    nonces = [crypto.new_nonce() for _ in range(5000)]  # many refills of the pool
    assert len(set(nonces)) == 5000 and all(len(n) == crypto.NONCE_BYTES for n in nonces)
    # a forked child starts with an empty pool: it never hands out the parent's next nonces
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.write(write_end, crypto.new_nonce())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write_end)
    from_child = os.read(read_end, 64)
    os.close(read_end)
    assert len(from_child) == crypto.NONCE_BYTES
    assert crypto.new_nonce() != from_child


def test_sealing_many_at_once_is_sealing_each_and_its_nonces_never_repeat() -> None:
    """Key.seal_many (a group commit's bodies): each ciphertext opens as seal's does, under its
    own nonce, across refills of the nonce pool and mixed with single takes."""
    key = crypto.Key(crypto.new_key())
    values = [os.urandom(n % 300) for n in range(700)]  # more than a pool's 341 nonces
    sealed = key.seal_many(9, values, b"aad")
    assert [key.open(blob, b"aad") for blob in sealed] == values
    assert [crypto.key_id_of(blob) for blob in sealed] == [9] * len(values)
    with pytest.raises(CryptoError):
        key.open(sealed[0], b"other aad")
    nonces = [blob[9 : 9 + crypto.NONCE_BYTES] for blob in sealed]
    for size in (1, 5, 340, 341, 342, 0, 1000):
        nonces += [crypto.new_nonce()]
        nonces += [
            blob[9 : 9 + crypto.NONCE_BYTES] for blob in key.seal_many(9, [b"x"] * size, b"")
        ]
    assert len(set(nonces)) == len(nonces)
    assert key.seal_many(9, [], b"aad") == []
