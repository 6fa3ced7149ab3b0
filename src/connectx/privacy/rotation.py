"""Key rotation without downtime (``connectx keys rotate``; docs/privacy-encryption.md).

* **Master key.** With a key file: a new key is written first (the old ones stay accepted), then
  every key wrapped by the master key (scope, blind-index and audit keys) is re-wrapped under it.
  With ``CONNECTX_MASTER_KEY``: the command prints a new value to configure ("new,old"); once every
  process runs with it, the same command re-wraps. Processes that meet a key wrapped by a master
  key they have not loaded read their key source again, so nothing has to restart.
* **Scope keys** (one per workspace, one for the platform): a new version is created and made
  active, every subject key under the old version is re-wrapped under the new one in small
  batches, then the old version's material is destroyed. Subject keys keep their ids, so every
  ciphertext stays readable throughout; a reader that meets a half-rotated row reads it again.

Blind-index and audit-chain keys are re-wrapped, never replaced: replacing them would change every
index and break the chain's verification.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import get_settings
from connectx.kit import clock, crypto
from connectx.models.crypto_key import CryptoKey
from connectx.privacy import keys_repository as repo
from connectx.privacy import keystore
from connectx.privacy.vault import forget_keys, masters, remember_key, unwrap, wrap_aad

BATCH = 500


@dataclass
class MasterRotation:
    mode: str  # "file" | "environment"
    current_id: str
    rewrapped: int = 0
    # Environment mode, first step: the value to set CONNECTX_MASTER_KEY to on every process.
    configure: str | None = None
    # Master keys no live key uses any more (safe to remove from the configuration).
    unused: list[str] = field(default_factory=list)


@dataclass
class ScopeRotation:
    scopes: int = 0
    subjects: int = 0


async def rewrap_roots() -> int:
    """Re-wrap every live key held by an older master key under the current one."""
    current_id, current = masters(reload=True)[0]
    total = 0
    while True:
        async with keystore.session() as db:
            rows = await repo.roots_not_under(db, current_id, BATCH)
            for row in rows:
                raw = await unwrap(db, row)
                row.wrapped = crypto.wrap(current, raw, wrap_aad(row))
                row.master_id = current_id
            await db.flush()
        total += len(rows)
        if len(rows) < BATCH:
            return total


async def _unused_masters() -> list[str]:
    async with keystore.session() as db:
        in_use = await repo.master_ids_in_use(db)
    return [mid for mid, _ in masters()[1:] if mid not in in_use]


async def rotate_master() -> MasterRotation:
    settings = get_settings()
    configured = masters(reload=True)
    if settings.master_key:
        async with keystore.session() as db:
            in_use = await repo.master_ids_in_use(db)
        if any(mid != configured[0][0] for mid in in_use):
            done = await rewrap_roots()
            return MasterRotation(
                "environment", configured[0][0], done, unused=await _unused_masters()
            )
        new = crypto.new_key()
        value = ",".join(crypto.encode_key(k) for k in [new, *(k for _, k in configured)])
        return MasterRotation("environment", crypto.master_key_id(new), configure=value)
    path = settings.master_key_file or settings.data_dir / "master.key"
    new = crypto.new_key()
    crypto.write_key_file(path, [new, *(k for _, k in configured)])
    current_id = masters(reload=True)[0][0]
    done = await rewrap_roots()
    return MasterRotation("file", current_id, done, unused=await _unused_masters())


async def prune_masters() -> list[str]:
    """Key-file mode: drop master keys no live key uses (never the current one)."""
    settings = get_settings()
    if settings.master_key:
        raise ValueError("master keys come from CONNECTX_MASTER_KEY: edit it there")
    unused = set(await _unused_masters())
    if unused:
        path = settings.master_key_file or settings.data_dir / "master.key"
        keep = [k for mid, k in masters(reload=True) if mid not in unused]
        crypto.write_key_file(path, keep)
        masters(reload=True)
    return sorted(unused)


async def rotate_scope(scope: str) -> int:
    """Give ``scope`` a new key version and move its subject keys under it; returns how many
    subject keys were re-wrapped."""
    async with keystore.session() as db:
        live = await repo.live_scope_keys(db, scope)
        if not live:
            return 0
        latest = await repo.latest(db, "scope", scope)
        assert latest is not None
        new = CryptoKey(
            kind="scope",
            scope=scope,
            subject="",
            version=latest.version + 1,
            active=True,
            created_at=clock.now(),
        )
        new.master_id, current = masters(reload=True)[0]
        new_raw = crypto.new_key()
        new.wrapped = crypto.wrap(current, new_raw, wrap_aad(new))
        old_ids = [row.id for row in live]
        await repo.deactivate(db, old_ids)
        await repo.insert(db, new)
    remember_key(new.id, new_raw)

    async def move(db: AsyncSession, limit: int) -> int:
        children = await repo.live_children(db, old_ids, limit)
        for child in children:
            raw = await unwrap(db, child)
            child.wrapped = crypto.wrap(new_raw, raw, wrap_aad(child))
            child.parent_id = new.id
        await db.flush()
        return len(children)

    moved = 0
    while True:
        async with keystore.session() as db:
            n = await move(db, BATCH)
        moved += n
        if n < BATCH:
            break
    # Retire: lock the old versions first (a subject key being created under one holds a share
    # lock until it commits), move any latecomer, then destroy the old material.
    async with keystore.session() as db:
        await repo.live_scope_keys(db, scope)
        while (n := await move(db, BATCH)) > 0:
            moved += n
        await repo.retire(db, old_ids)
    forget_keys(old_ids)
    return moved


async def rotate_scopes() -> ScopeRotation:
    async with keystore.session() as db:
        scopes = await repo.scopes(db)
    result = ScopeRotation()
    for scope in scopes:
        result.subjects += await rotate_scope(scope)
        result.scopes += 1
    return result


@dataclass
class KeyStatus:
    keystore: str
    masters_configured: list[str]
    masters_in_use: dict[str, int]
    counts: list[tuple[str, bool, int]]


async def status() -> KeyStatus:
    async with keystore.session() as db:
        in_use = await repo.master_ids_in_use(db)
        counts = await repo.counts(db)
    return KeyStatus(
        keystore=keystore.describe(),
        masters_configured=[mid for mid, _ in masters(reload=True)],
        masters_in_use=in_use,
        counts=counts,
    )
