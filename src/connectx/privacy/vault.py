"""Envelope encryption with crypto-shredding.

The master key (environment or key file, never in the database) wraps one key per scope (each
workspace, and the platform for account holders), which wraps one data key per subject (a contact,
a user). Values are sealed with AES-256-GCM under the subject's key; the associated data binds
scope, subject and column so a ciphertext cannot be moved to another row or field. Destroying a
subject's key erases that subject's data everywhere it was copied, backups included, as long as
key material is kept out of data backups (see docs/privacy-encryption.md).

Unwrapped keys are cached per process so hot paths do not unwrap on every value.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import get_settings
from connectx.kit import clock, crypto
from connectx.kit.crypto import CryptoError, KeyDestroyed
from connectx.models.crypto_key import CryptoKey
from connectx.privacy import keys_repository as repo

PLATFORM = "platform"

_lock = threading.Lock()
_keys: dict[int, bytes] = {}  # key id -> unwrapped key
_subject_ids: dict[tuple[str, str], int] = {}  # (scope, subject) -> key id


def scope_of(workspace_id: int | None) -> str:
    return PLATFORM if workspace_id is None else f"ws:{workspace_id}"


@lru_cache(maxsize=1)
def _masters() -> tuple[tuple[str, bytes], ...]:
    return tuple((crypto.master_key_id(k), k) for k in crypto.load_master_keys(get_settings()))


def reset_caches() -> None:
    """Forget unwrapped keys (after rotation, erasure in another process, or in tests)."""
    with _lock:
        _keys.clear()
        _subject_ids.clear()
    _masters.cache_clear()


def _aad(scope: str, subject: str, column: str) -> bytes:
    return f"cx1|{scope}|{subject}|{column}".encode()


def _wrap_aad(key: CryptoKey) -> bytes:
    return f"wrap|{key.kind}|{key.scope}|{key.subject}|{key.version}".encode()


class Vault:
    """Per-transaction access to the key hierarchy."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    # -- keys ------------------------------------------------------------------------------
    def _master(self, master_id: str | None) -> bytes:
        for mid, key in _masters():
            if mid == master_id:
                return key
        raise CryptoError("the master key that wrapped this key is not configured")

    async def _unwrapped(self, key: CryptoKey) -> bytes:
        cached = _keys.get(key.id)
        if cached is not None:
            return cached
        if key.wrapped is None:
            raise KeyDestroyed(f"key {key.id} was destroyed")
        if key.parent_id is None:
            kek = self._master(key.master_id)
        else:
            parent = await repo.get(self.db, key.parent_id)
            if parent is None:
                raise CryptoError("parent key missing")
            kek = await self._unwrapped(parent)
        raw = crypto.unwrap(kek, key.wrapped, _wrap_aad(key))
        with _lock:
            _keys[key.id] = raw
        return raw

    async def _create(self, kind: str, scope: str, subject: str, parent: CryptoKey | None) -> None:
        raw = crypto.new_key()
        row = CryptoKey(
            kind=kind, scope=scope, subject=subject, version=1, active=True, created_at=clock.now()
        )
        if parent is None:
            row.master_id, master = _masters()[0]
            row.wrapped = crypto.wrap(master, raw, _wrap_aad(row))
        else:
            row.parent_id = parent.id
            row.wrapped = crypto.wrap(await self._unwrapped(parent), raw, _wrap_aad(row))
        try:
            async with self.db.begin_nested():
                await repo.insert(self.db, row)
        except IntegrityError:
            return  # created concurrently by another transaction; the caller reads it back

    async def _root(self, kind: str, scope: str) -> CryptoKey:
        key = await repo.find(self.db, kind, scope)
        if key is None:
            await self._create(kind, scope, "", None)
            key = await repo.find(self.db, kind, scope)
        assert key is not None
        return key

    async def subject_key(self, workspace_id: int | None, subject: str) -> tuple[int, bytes]:
        scope = scope_of(workspace_id)
        key_id = _subject_ids.get((scope, subject))
        if key_id is not None and key_id in _keys:
            return key_id, _keys[key_id]
        key = await repo.find(self.db, "subject", scope, subject)
        if key is None:
            await self._create("subject", scope, subject, await self._root("scope", scope))
            key = await repo.find(self.db, "subject", scope, subject)
            assert key is not None
        if key.wrapped is None:
            raise KeyDestroyed(f"{subject} was erased")
        raw = await self._unwrapped(key)
        with _lock:
            _subject_ids[(scope, subject)] = key.id
        return key.id, raw

    # -- values ----------------------------------------------------------------------------
    async def encrypt(
        self, workspace_id: int | None, subject: str, column: str, value: str | bytes
    ) -> bytes:
        key_id, key = await self.subject_key(workspace_id, subject)
        data = value.encode() if isinstance(value, str) else value
        return crypto.seal(key, key_id, data, _aad(scope_of(workspace_id), subject, column))

    async def decrypt_bytes(
        self, workspace_id: int | None, subject: str, column: str, blob: bytes
    ) -> bytes:
        key_id = crypto.key_id_of(blob)
        key = _keys.get(key_id)
        if key is None:
            row = await repo.get(self.db, key_id)
            if row is None or row.wrapped is None:
                raise KeyDestroyed(f"{subject} was erased")
            key = await self._unwrapped(row)
        return crypto.open_sealed(key, blob, _aad(scope_of(workspace_id), subject, column))

    async def decrypt(
        self, workspace_id: int | None, subject: str, column: str, blob: bytes
    ) -> str:
        return (await self.decrypt_bytes(workspace_id, subject, column, blob)).decode()

    async def destroy_subject(self, workspace_id: int | None, subject: str) -> int:
        """Crypto-shred: every ciphertext of this subject becomes unreadable, in every copy."""
        scope = scope_of(workspace_id)
        ids = await repo.destroy(self.db, scope, subject)
        with _lock:
            for key_id in ids:
                _keys.pop(key_id, None)
            _subject_ids.pop((scope, subject), None)
        return len(ids)

    async def blind_index(self, kind: str, value: str) -> bytes:
        """Keyed HMAC of a normalised value, for equality lookups without plaintext."""
        key = await self._unwrapped(await self._root("index", PLATFORM))
        return crypto.keyed_hash(key, f"{kind}|{value}")
