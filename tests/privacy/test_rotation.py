"""``connectx keys rotate``: the master key and the scope keys rotate while the service keeps
reading (another process runs the command; this one is the running service)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from connectx.config import get_settings, reset_settings
from connectx.db.session import unit_of_work
from connectx.kit import crypto
from connectx.kit.crypto import CryptoError
from connectx.models.account import User
from connectx.models.crypto_key import CryptoKey
from connectx.privacy import keys_repository as keys_repo
from connectx.privacy import keystore, vault
from connectx.privacy.vault import Vault
from tests.privacy.support import cli, cli_here
from tests.support.factories import make_user

PEOPLE = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Katherine Johnson", "katherine@example.com"),
]


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This process (and the commands it runs) read the master key from a key file."""
    path = tmp_path / "master.key"
    monkeypatch.delenv("CONNECTX_MASTER_KEY")
    monkeypatch.setenv("CONNECTX_MASTER_KEY_FILE", str(path))
    reset_settings()
    vault.reset_caches()
    yield path
    monkeypatch.undo()
    reset_settings()
    vault.reset_caches()


def _id_of(encoded: str) -> str:
    return crypto.master_key_id(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


async def _seed() -> list[User]:
    users = [await make_user(email=email, name=name) for name, email in PEOPLE]
    async with unit_of_work() as db:
        await Vault(db).encrypt(3, "contact:1", "contacts.name", "Customer One")
    return users


async def _names(users: list[User]) -> list[str]:
    async with unit_of_work() as db:
        v = Vault(db)
        return [await v.decrypt(None, f"user:{u.id}", "users.name", u.name_enc) for u in users]


async def _keys() -> list[CryptoKey]:
    async with keystore.session() as ks:
        return list((await ks.execute(select(CryptoKey).order_by(CryptoKey.id))).scalars())


class Reader:
    """The running service: reads everyone's name again and again, as a process whose cache is
    cold (each round forgets unwrapped keys, so every read goes through the key store)."""

    def __init__(self, users: list[User]) -> None:
        self.users = users
        self.reads = 0
        self.errors: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        expected = [name for name, _ in PEOPLE]
        while not self._stop.is_set():
            vault.reset_caches()
            try:
                assert await _names(self.users) == expected
                self.reads += 1
            except Exception as exc:  # recorded, the test fails on any
                self.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.01)

    def start(self) -> Reader:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


async def test_rotation_with_a_key_file_keeps_reads_working(key_file: Path) -> None:
    users = await _seed()
    async with unit_of_work() as db:
        index_before = await Vault(db).blind_index("email", "ada@example.com")
    before = await _keys()
    [old_master] = crypto.load_master_keys(get_settings())
    old_id = crypto.master_key_id(old_master)

    reader = Reader(users).start()
    run = await cli("keys", "rotate")
    await asyncio.sleep(0.2)
    await reader.stop()
    assert run.code == 0, run.err
    assert reader.errors == [] and reader.reads > 0

    # The new master key was written first; the old one is still accepted.
    masters = crypto.load_master_keys(get_settings())
    assert len(masters) == 2 and masters[1] == old_master
    new_id = crypto.master_key_id(masters[0])
    assert f"master key {new_id} (file)" in run.out

    after = await _keys()
    roots = [k for k in after if k.kind in ("scope", "index", "audit") and k.wrapped]
    assert roots and all(k.master_id == new_id for k in roots)
    for scope in ("platform", "ws:3"):
        versions = sorted((k.version, k.wrapped is not None, k.active) for k in after
                          if k.kind == "scope" and k.scope == scope)  # fmt: skip
        assert versions == [(1, False, False), (2, True, True)], scope  # old material destroyed
    new_scopes = {k.id for k in after if k.kind == "scope" and k.wrapped}
    subjects = [k for k in after if k.kind == "subject"]
    assert subjects and all(k.parent_id in new_scopes for k in subjects)
    # Subject keys keep their ids, so ciphertexts written before the rotation still name them.
    assert {k.id for k in subjects} == {k.id for k in before if k.kind == "subject"}

    vault.reset_caches()
    assert await _names(users) == [name for name, _ in PEOPLE]
    async with unit_of_work() as db:
        v = Vault(db)
        assert await v.blind_index("email", "ada@example.com") == index_before
        blob = await v.encrypt(None, "user:77", "users.name", "After Rotation")
        assert await v.decrypt(None, "user:77", "users.name", blob) == "After Rotation"

    # The old master key wraps nothing any more: prune it; everything still reads.
    pruned = await cli_here("keys", "prune-masters")
    assert pruned.code == 0 and old_id in pruned.out
    assert crypto.load_master_keys(get_settings()) == [masters[0]]
    vault.reset_caches()
    assert await _names(users) == [name for name, _ in PEOPLE]

    status = await cli_here("keys", "status")
    assert f"master {new_id} (current)" in status.out and "subject keys live: 5" in status.out


async def test_rotation_with_the_master_key_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = await _seed()
    first = await cli_here("keys", "rotate", "--no-scopes")
    assert first.code == 0, first.err
    line = next(ln for ln in first.out.splitlines() if "CONNECTX_MASTER_KEY=" in ln)
    value = line.split("CONNECTX_MASTER_KEY=", 1)[1].strip()
    new_key, old_key = value.split(",")
    assert old_key == os.environ["CONNECTX_MASTER_KEY"].rstrip("=")
    assert all(k.master_id != _id_of(new_key) for k in await _keys())

    # Operators configure "new,old" everywhere; this process too (without restarting: it reads
    # its key source again when it meets a key wrapped by a master key it has not loaded).
    monkeypatch.setenv("CONNECTX_MASTER_KEY", value)
    reset_settings()
    reader = Reader(users).start()
    second = await cli("keys", "rotate", "--no-scopes")
    await asyncio.sleep(0.2)
    await reader.stop()
    assert second.code == 0, second.err
    assert reader.errors == [] and reader.reads > 0
    new_id = _id_of(new_key)
    roots = [k for k in await _keys() if k.kind in ("scope", "index", "audit") and k.wrapped]
    assert roots and all(k.master_id == new_id for k in roots)
    assert "removing them from CONNECTX_MASTER_KEY" in second.out

    # Now the old key can go.
    monkeypatch.setenv("CONNECTX_MASTER_KEY", new_key)
    reset_settings()
    vault.reset_caches()
    assert await _names(users) == [name for name, _ in PEOPLE]

    # Without the key that wraps them, keys cannot be opened: the master key really changed.
    monkeypatch.setenv("CONNECTX_MASTER_KEY", old_key)
    reset_settings()
    vault.reset_caches()
    with pytest.raises(CryptoError):
        await _names(users)
    monkeypatch.undo()
    reset_settings()
    vault.reset_caches()


async def test_scope_rotation_alone_moves_every_subject_key_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In-process and batch by batch, so reads interleave with every half-rotated state."""
    from connectx.privacy import rotation

    users = await _seed()
    monkeypatch.setattr(rotation, "BATCH", 1)
    async with unit_of_work() as db:
        v = Vault(db)
        blobs = {i: await v.encrypt(8, f"contact:{i}", "contacts.name", f"c{i}") for i in range(6)}
    reader = Reader(users).start()
    result = await rotation.rotate_scopes()
    await reader.stop()
    assert reader.errors == [] and reader.reads > 0
    assert (result.scopes, result.subjects) == (3, 3 + 1 + 6)  # platform, ws:3, ws:8
    vault.reset_caches()
    async with unit_of_work() as db:
        v = Vault(db)
        for i, blob in blobs.items():
            assert await v.decrypt(8, f"contact:{i}", "contacts.name", blob) == f"c{i}"
    again = await rotation.rotate_scopes()
    assert (again.scopes, again.subjects) == (3, 10)
    versions = [(k.version, k.wrapped is not None) for k in await _keys()
                if k.kind == "scope" and k.scope == "ws:8"]  # fmt: skip
    assert sorted(versions) == [(1, False), (2, False), (3, True)]


async def test_index_and_audit_keys_are_read_while_a_rotation_holds_their_rows() -> None:
    """Blind indexes (every sign-in and contact lookup) and the audit chain's key are read
    without a lock: a master-key rotation re-wrapping their rows does not make them wait. (On
    PostgreSQL they were read FOR SHARE, so a cold cache waited for the re-wrap to commit.)"""
    v = Vault()
    index = await v.blind_index("email", "ada@example.com")
    chain = await vault.audit_chain_key()
    vault.reset_caches()  # a process whose cache is cold (or whose entries' TTL ran out)
    async with keystore.session() as ks:
        # What re-wrapping under a new master key does first (rotation.rewrap_roots).
        locked = await keys_repo.roots_not_under(ks, "a-new-master", 100)
        assert {k.kind for k in locked} == {"index", "audit"}
        async with asyncio.timeout(5):
            assert await v.blind_index("email", "ada@example.com") == index
            assert await vault.audit_chain_key() == chain
