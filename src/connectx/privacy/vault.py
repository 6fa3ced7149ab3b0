"""Envelope encryption with crypto-shredding.

The master key (environment or key file, never in a database) wraps one key per scope (each
workspace, and the platform for account holders), which wraps one data key per subject (a contact,
a user). Values are sealed with AES-256-GCM under the subject's key; the associated data binds
scope, subject and column so a ciphertext cannot be moved to another row or field; every
ciphertext names the key id that sealed it. Wrapped keys live in the key store
(:mod:`connectx.privacy.keystore`), apart from the data, so destroying a subject's key erases that
subject's data everywhere it was copied, data backups included (docs/privacy-encryption.md).

Unwrapped keys are cached per process for ``CONNECTX_KEY_CACHE_TTL_S`` seconds (an erasure or a
rotation done by another process is seen here within that time; in this process at once).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import get_settings
from connectx.kit import clock, crypto
from connectx.kit.crypto import CryptoError, KeyDestroyed
from connectx.models.crypto_key import CryptoKey
from connectx.privacy import keys_repository as repo
from connectx.privacy import keystore, purpose

__all__ = ["PLATFORM", "CryptoError", "KeyDestroyed", "Vault", "reset_caches", "scope_of"]

PLATFORM = "platform"

K = TypeVar("K")
V = TypeVar("V")


class _TtlCache(Generic[K, V]):
    """A small thread-safe cache whose entries expire (time from :mod:`connectx.kit.clock`, as
    POSIX seconds). A hit is one dictionary lookup and one clock read, without a lock (a dict
    read is atomic); writes take the lock. When full, the entry loaded longest ago goes first
    (an entry is re-loaded at least every TTL, so that is close to least recently used)."""

    def __init__(self) -> None:
        self._data: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if clock.seconds() >= hit[1]:
            with self._lock:
                if self._data.get(key) is hit:
                    del self._data[key]
            return None
        return hit[0]

    def put(self, key: K, value: V) -> None:
        settings = get_settings()
        expires = clock.seconds() + settings.key_cache_ttl_s
        with self._lock:
            self._data.pop(key, None)  # re-inserted last: it was loaded last
            self._data[key] = (value, expires)
            while len(self._data) > max(settings.key_cache_size, 1):
                del self._data[next(iter(self._data))]

    def pop(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


_keys: _TtlCache[int, crypto.Key] = _TtlCache()  # key id -> unwrapped key
_current: _TtlCache[tuple[str, str, str], int] = _TtlCache()  # (kind, scope, subject) -> key id
_master_lock = threading.Lock()
_master_keys: list[tuple[str, bytes]] = []


def scope_of(workspace_id: int | None) -> str:
    return PLATFORM if workspace_id is None else f"ws:{workspace_id}"


def reset_caches() -> None:
    """Forget unwrapped keys and master keys (after rotation, erasure elsewhere, or in tests)."""
    _keys.clear()
    _current.clear()
    with _master_lock:
        _master_keys.clear()


def cached_key_count() -> int:
    return len(_keys)


def remember_key(key_id: int, raw: bytes) -> crypto.Key:
    key = crypto.Key(raw)
    _keys.put(key_id, key)
    return key


def forget_keys(key_ids: list[int]) -> None:
    for key_id in key_ids:
        _keys.pop(key_id)


def masters(reload: bool = False) -> list[tuple[str, bytes]]:
    """(id, key) of the configured master keys, the current one first."""
    with _master_lock:
        if reload or not _master_keys:
            loaded = crypto.load_master_keys(get_settings())
            _master_keys[:] = [(crypto.master_key_id(k), k) for k in loaded]
        return list(_master_keys)


def master(master_id: str | None) -> bytes:
    for reload in (False, True):  # a key added by a rotation in another process: read again
        for mid, key in masters(reload):
            if mid == master_id:
                return key
    raise CryptoError(
        "the master key that wrapped this key is not configured "
        "(check CONNECTX_MASTER_KEY or the key file)"
    )


def _aad(scope: str, subject: str, column: str) -> bytes:
    return f"cx1|{scope}|{subject}|{column}".encode()


def wrap_aad(key: CryptoKey) -> bytes:
    return _wrap_aad(key.kind, key.scope, key.subject, key.version)


def _wrap_aad(kind: str, scope: str, subject: str, version: int) -> bytes:
    return f"wrap|{kind}|{scope}|{subject}|{version}".encode()


async def open_key(db: AsyncSession, key: CryptoKey) -> crypto.Key:
    """The unwrapped key of a key-store row (``db`` is a key-store session), through the cache.

    The key that wrapped it comes from the cache when this process holds it (a batch of subject
    keys under one scope key reads that scope key once, not once per subject). A key id's
    material never changes (rotation re-wraps the same bytes, erasure empties the row), so a
    cached wrapping key is always the right one for a row that names it; a subject key itself
    is checked in the row (destroyed or not) whenever it is not cached."""
    cached = _keys.get(key.id)
    if cached is not None:
        return cached
    if key.wrapped is None:
        raise KeyDestroyed(f"key {key.id} was destroyed")
    if key.parent_id is None:
        raw = crypto.unwrap(master(key.master_id), key.wrapped, wrap_aad(key))
    else:
        kek = _keys.get(key.parent_id)
        if kek is None:
            parent = await repo.get(db, key.parent_id)
            if parent is None or parent.wrapped is None:
                raise CryptoError(f"the key that wrapped key {key.id} is gone")
            kek = await open_key(db, parent)
        raw = kek.unwrap(key.wrapped, wrap_aad(key))
    return remember_key(key.id, raw)


async def unwrap(db: AsyncSession, key: CryptoKey) -> bytes:
    """The raw key of a key-store row (for re-wrapping), through the cache."""
    return (await open_key(db, key)).raw


async def _read_subject_key(
    db: AsyncSession, key_id: int, row: CryptoKey | None = None
) -> CryptoKey | None:
    """A subject key row (``row`` when the caller has just read it); read again when a rotation
    re-wrapped it under us."""
    for attempt in range(3):
        if row is None or attempt:
            row = await repo.get(db, key_id)
        if row is None or row.wrapped is None:
            return row
        try:
            await open_key(db, row)
        except CryptoError:
            parent = await repo.get(db, row.parent_id) if row.parent_id is not None else None
            if parent is not None and parent.wrapped is None:
                continue  # its scope key was just retired: the row now names the new one
            raise
        return row
    return await repo.get(db, key_id)


async def root_key(db: AsyncSession, kind: str, scope: str) -> CryptoKey:
    """The active key of ``kind`` for ``scope`` wrapped by the master key, created if missing.

    A scope key is share-locked (PostgreSQL) until the caller's key-store transaction ends: the
    caller wraps a subject key under it, and a scope rotation must not retire it before that
    child commits (the rotation's last step locks the old versions, then moves latecomers).
    Blind-index and audit keys are read without a lock: nothing is wrapped under them, they are
    never replaced (only re-wrapped under a new master key, the same bytes), so no write depends
    on the row staying as read (docs/privacy-encryption.md, "Locks")."""
    for _ in range(5):
        key = await repo.active_root(db, kind, scope, share=kind == "scope")
        if key is not None:
            return key
        previous = await repo.latest(db, kind, scope)
        raw = crypto.new_key()
        row = CryptoKey(
            kind=kind,
            scope=scope,
            subject="",
            version=(previous.version + 1) if previous else 1,
            active=True,
            created_at=clock.now(),
        )
        row.master_id, current = masters(reload=True)[0]
        row.wrapped = crypto.wrap(current, raw, wrap_aad(row))
        try:
            async with db.begin_nested():
                await repo.insert(db, row)
        except IntegrityError:
            continue  # created concurrently: read it back
        remember_key(row.id, raw)
        return row
    raise CryptoError(f"could not create the {kind} key of {scope}")


async def _root(kind: str, scope: str) -> crypto.Key:
    """A blind-index or audit key (cached; see :func:`root_key` on why no lock is taken). Read
    in a read-only key-store transaction (no SQLite write lock per cache TTL); created in a
    writing one the first time only."""
    cache_key = (kind, scope, "")
    key_id = _current.get(cache_key)
    if key_id is not None and (key := _keys.get(key_id)) is not None:
        return key
    async with keystore.session(read_only=True) as db:
        row = await repo.active_root(db, kind, scope)
        opened = await open_key(db, row) if row is not None else None
    if row is None or opened is None:
        async with keystore.session() as db:
            row = await root_key(db, kind, scope)
            opened = await open_key(db, row)
    _current.put(cache_key, row.id)
    return opened


@dataclass(frozen=True)
class KeyInfo:
    id: int
    version: int
    destroyed: bool


async def _insert_version(
    db: AsyncSession, scope: str, subject: str, previous: CryptoKey | None
) -> tuple[CryptoKey, crypto.Key] | None:
    """A new data key of ``subject`` after ``previous`` (wrapped under the scope's key), or None
    when another transaction inserted that version first."""
    parent = await root_key(db, "scope", scope)
    raw = crypto.new_key()
    row = CryptoKey(
        kind="subject",
        scope=scope,
        subject=subject,
        version=(previous.version + 1) if previous else 1,
        parent_id=parent.id,
        active=True,
        created_at=clock.now(),
    )
    row.wrapped = crypto.wrap((await open_key(db, parent)).raw, raw, wrap_aad(row))
    try:
        async with db.begin_nested():
            await repo.insert(db, row)
    except IntegrityError:
        return None
    return row, remember_key(row.id, raw)


@dataclass(frozen=True, slots=True)
class Sealer:
    """Seals values for one subject and column under a key already looked up: no await, so it
    runs on any thread (AES-GCM keys are stateless; nonces come from a locked pool)."""

    key_id: int
    key: crypto.Key
    aad: bytes

    def seal_many(self, values: list[bytes]) -> list[bytes]:
        return self.key.seal_many(self.key_id, values, self.aad)


class Vault:
    """Seal and open personal values; ``db`` is the caller's data session (for the audit event of
    an erasure). Key-store reads and writes happen in their own short transactions."""

    def __init__(self, db: AsyncSession | None = None) -> None:
        self.db = db

    # -- keys ------------------------------------------------------------------------------
    async def subject_key(self, workspace_id: int | None, subject: str) -> tuple[int, bytes]:
        """The subject's current data key (id, raw bytes), created on first use. After an
        erasure a subject that comes back (a new contact with the same id on SQLite, a
        returning customer) gets a new key version: what was sealed under the destroyed one
        stays unreadable."""
        key_id, key = await self._subject_key(scope_of(workspace_id), subject)
        return key_id, key.raw

    async def _subject_key(self, scope: str, subject: str) -> tuple[int, crypto.Key]:
        cache_key = ("subject", scope, subject)
        key_id = _current.get(cache_key)
        if key_id is not None and (key := _keys.get(key_id)) is not None:
            return key_id, key
        # A key that exists is read without the write lock (SQLite: a DEFERRED snapshot, so a
        # page that opens values does not queue behind every writer of the key store); only a
        # subject without a live key goes on to the writing transaction that creates one.
        async with keystore.session(read_only=True) as db:
            row = await repo.latest(db, "subject", scope, subject)
            if row is not None and row.wrapped is not None:
                row = await _read_subject_key(db, row.id, row)
            if row is not None and row.wrapped is not None:
                key = await open_key(db, row)
                _current.put(cache_key, row.id)
                return row.id, key
        async with keystore.session() as db:
            for _ in range(5):
                row = await repo.latest(db, "subject", scope, subject)
                if row is not None and row.wrapped is not None:
                    row = await _read_subject_key(db, row.id, row)
                if row is not None and row.wrapped is not None:
                    key = await open_key(db, row)
                    break
                made = await _insert_version(db, scope, subject, row)
                if made is None:
                    continue  # created concurrently by another transaction: read it back
                row, key = made
                break
            else:
                raise CryptoError(f"could not create the key of {subject}")
        _current.put(cache_key, row.id)
        return row.id, key

    async def warm(self, workspace_id: int | None, subjects: list[str]) -> int:
        """Load the current keys of many subjects in one key-store transaction (a batch's
        people, a page's contacts), so a hot path does not pay one key-store round trip per
        person once the cache has expired. Subjects without a key, erased ones and keys being
        re-wrapped by a rotation are left to the normal path. Returns how many were loaded."""
        loaded, _ = await self.prepare_keys(workspace_id, load=subjects)
        return loaded

    async def prepare_keys(
        self,
        workspace_id: int | None,
        *,
        load: Iterable[str] = (),
        create: Iterable[str] = (),
    ) -> tuple[int, int]:
        """Load the current keys of the ``load`` subjects and give the ``create`` subjects theirs,
        in **one** key-store transaction (a processing batch's returning and new people): one
        read of their key versions, the scope key read only when something is created, one
        insert of the new keys. A subject to create that already has a live key keeps it (it is
        loaded); an erased one gets a new version, as in :meth:`subject_key`; one to load that
        is erased or has no key is left to the normal path, as are keys being re-wrapped by a
        rotation or created concurrently elsewhere. Subjects already cached cost nothing; a
        batch with nobody to load or create opens no transaction. Returns (keys loaded, keys
        created)."""
        scope = scope_of(workspace_id)

        def uncached(subjects: Iterable[str]) -> set[str]:
            out = set()
            for s in subjects:
                key_id = _current.get(("subject", scope, s))
                if key_id is None or _keys.get(key_id) is None:
                    out.add(s)
            return out

        to_create = uncached(create)
        to_load = uncached(load) - to_create
        if not to_create and not to_load:
            return 0, 0
        loaded = 0
        fresh: list[tuple[dict[str, Any], bytes]] = []
        made: dict[str, int] = {}
        async with keystore.session() as db:
            newest: dict[str, CryptoKey] = {}
            for row in await repo.subject_versions(db, scope, sorted(to_load | to_create)):
                known = newest.get(row.subject)
                if known is None or row.version > known.version:
                    newest[row.subject] = row
            for subject, row in sorted(newest.items()):
                if row.wrapped is None:
                    continue  # erased: loading leaves it erased, creating makes a new version
                try:
                    await open_key(db, row)
                except CryptoError:
                    to_create.discard(subject)  # being re-wrapped: the normal path reads it
                    continue
                _current.put(("subject", scope, subject), row.id)
                to_create.discard(subject)
                if subject in to_load:
                    loaded += 1
            if to_create:
                parent = await root_key(db, "scope", scope)
                kek = await open_key(db, parent)
                now = clock.now()
                for subject in sorted(to_create):
                    previous = newest.get(subject)
                    version = (previous.version + 1) if previous else 1
                    raw = crypto.new_key()
                    aad = _wrap_aad("subject", scope, subject, version)
                    values = {
                        "kind": "subject",
                        "scope": scope,
                        "subject": subject,
                        "version": version,
                        "parent_id": parent.id,
                        "active": True,
                        "created_at": now,
                        "wrapped": kek.wrap(raw, aad),
                    }
                    fresh.append((values, raw))
                try:
                    async with db.begin_nested():
                        made = await repo.insert_subject_keys(db, [v for v, _ in fresh])
                except IntegrityError:
                    made = {}  # one was created concurrently: each goes the normal path
        for values, raw in fresh:
            subject = str(values["subject"])
            if subject in made:
                remember_key(made[subject], raw)
                _current.put(("subject", scope, subject), made[subject])
        return loaded, len(made)

    async def key_info(self, workspace_id: int | None, subject: str) -> KeyInfo | None:
        """The subject's newest key (for operators and tests); ``None`` if it never had one."""
        async with keystore.session(read_only=True) as db:
            row = await repo.latest(db, "subject", scope_of(workspace_id), subject)
        if row is None:
            return None
        return KeyInfo(row.id, row.version, row.wrapped is None)

    # -- values ----------------------------------------------------------------------------
    async def encrypt(
        self, workspace_id: int | None, subject: str, column: str, value: str | bytes
    ) -> bytes:
        """Seal ``value`` for ``subject``'s ``column`` ("users.name"); the result names its key."""
        scope = scope_of(workspace_id)
        key_id, key = await self._subject_key(scope, subject)
        data = value.encode() if isinstance(value, str) else value
        return key.seal(key_id, data, _aad(scope, subject, column))

    async def sealer(self, workspace_id: int | None, subject: str, column: str) -> Sealer:
        """A :class:`Sealer` of ``subject``'s ``column`` values: the key looked up now (one
        lookup for many values), the sealing left to the caller, on any thread (intake seals a
        group commit's large bodies on SQLite's database thread)."""
        scope = scope_of(workspace_id)
        key_id, key = await self._subject_key(scope, subject)
        return Sealer(key_id, key, _aad(scope, subject, column))

    async def decrypt_bytes(
        self, workspace_id: int | None, subject: str, column: str, blob: bytes
    ) -> bytes:
        """Open a value sealed by :meth:`encrypt` for the same scope, subject and column.

        Raises :class:`KeyDestroyed` when the subject was erased and :class:`CryptoError` when
        the ciphertext belongs to another subject or column or was altered."""
        purpose.check_open(column)  # marketing and analytics never open content (policy §4)
        scope = scope_of(workspace_id)
        key_id = crypto.key_id_of(blob)
        key = _keys.get(key_id)
        if key is None:
            async with keystore.session(read_only=True) as db:
                row = await _read_subject_key(db, key_id)
                if row is None:
                    raise CryptoError("the key that sealed this value is unknown")
                if row.kind != "subject" or row.scope != scope or row.subject != subject:
                    raise CryptoError("this value was sealed for another subject")
                if row.wrapped is None:
                    raise KeyDestroyed(f"{subject} was erased")
                key = await open_key(db, row)
        return key.open(blob, _aad(scope, subject, column))

    async def decrypt(
        self, workspace_id: int | None, subject: str, column: str, blob: bytes
    ) -> str:
        return (await self.decrypt_bytes(workspace_id, subject, column, blob)).decode()

    async def decrypt_or_none(
        self, workspace_id: int | None, subject: str, column: str, blob: bytes | None
    ) -> str | None:
        """Like :meth:`decrypt`, but ``None`` for a missing value or an erased subject."""
        if blob is None:
            return None
        try:
            return await self.decrypt(workspace_id, subject, column, blob)
        except KeyDestroyed:
            return None

    async def destroy_subject(
        self, workspace_id: int | None, subject: str, *, actor: str = "system"
    ) -> int:
        """Crypto-shred: every ciphertext of this subject becomes unreadable, in every copy of the
        data. Takes effect in the key store at once (even if the caller's transaction later rolls
        back); audited in the caller's transaction when the vault has one."""
        scope = scope_of(workspace_id)
        async with keystore.session() as db:
            ids = await repo.destroy_subject(db, scope, subject)
        for key_id in ids:
            _keys.pop(key_id)
        _current.pop(("subject", scope, subject))
        if self.db is not None and ids:
            from connectx.audit import service as audit

            await audit.record(
                self.db,
                actor=actor,
                action="keys.subject_destroyed",
                subject=subject,
                workspace_id=workspace_id,
                data={"key_ids": ids},
            )
        return len(ids)

    async def add_version(self, workspace_id: int | None, subject: str) -> int:
        """Give a shared subject (a day's raw webhooks) a new current key while its older
        versions stay readable: what is sealed from now on, in this process at once and in every
        other within the cache TTL, uses the new one, so the older ones can be retired with
        :meth:`destroy_keys` once nothing is sealed under them any more. Returns the new id."""
        scope = scope_of(workspace_id)
        async with keystore.session() as db:
            for _ in range(5):
                previous = await repo.latest(db, "subject", scope, subject)
                made = await _insert_version(db, scope, subject, previous)
                if made is None:
                    continue  # another version was added concurrently: add ours after it
                row, _ = made
                break
            else:
                raise CryptoError(f"could not add a key version of {subject}")
        _current.put(("subject", scope, subject), row.id)
        return row.id

    async def destroy_keys(
        self, workspace_id: int | None, subject: str, key_ids: list[int], *, actor: str = "system"
    ) -> list[int]:
        """Crypto-shred some versions of a subject's key (those :meth:`add_version` replaced):
        what they sealed, in every copy of the data, becomes unreadable. Audited like
        :meth:`destroy_subject` (``keys.subject_destroyed``, so a key-store restore destroys them
        again). Returns the ids destroyed now."""
        scope = scope_of(workspace_id)
        async with keystore.session() as db:
            mine = [
                k.id
                for k in await repo.subject_versions(db, scope, [subject])
                if k.id in set(key_ids)
            ]
            ids = await repo.destroy_ids(db, mine) if mine else []
        forget_keys(ids)
        if _current.get(("subject", scope, subject)) in ids:
            _current.pop(("subject", scope, subject))
        if self.db is not None and ids:
            from connectx.audit import service as audit

            await audit.record(
                self.db,
                actor=actor,
                action="keys.subject_destroyed",
                subject=subject,
                workspace_id=workspace_id,
                data={"key_ids": ids},
            )
        return ids

    async def blind_index(self, kind: str, value: str) -> bytes:
        """Keyed HMAC of a normalised value, for equality lookups without plaintext."""
        return (await _root("index", PLATFORM)).keyed_hash(f"{kind}|{value}")

    async def blind_indexes(self, kind: str, values: Iterable[str]) -> list[bytes]:
        """:meth:`blind_index` of many values of one kind (one key lookup), in their order."""
        key = await _root("index", PLATFORM)
        return [key.keyed_hash(f"{kind}|{value}") for value in values]


async def reapply_erasures(db: AsyncSession) -> int:
    """Destroy again every key the audit log says was destroyed (``keys.subject_destroyed``).
    Run after restoring the key store from a backup taken before those erasures, so that a
    key-store restore never brings an erased person back. Returns how many keys it destroyed."""
    from connectx.audit import repository as audit_repo

    key_ids: set[int] = set()
    for data in await audit_repo.data_of_action(db, "keys.subject_destroyed"):
        key_ids.update(int(k) for k in data.get("key_ids", []))
    if not key_ids:
        return 0
    async with keystore.session() as ks:
        destroyed = await repo.destroy_ids(ks, sorted(key_ids))
    forget_keys(destroyed)
    _current.clear()
    return len(destroyed)


async def audit_chain_key() -> bytes:
    """The key of the audit log's HMAC chain (in the key store, wrapped by the master key)."""
    return (await _root("audit", PLATFORM)).raw
