"""Raw webhook bodies at rest: masked, compressed, sealed.

What intake stores of a delivery is the body as received with card numbers masked
(:mod:`connectx.intake.masking`), compressed with LZ4 (block format, the size in front), and
sealed under its day's key (``webhook_day:<date>``, retention/day_keys.py). Webhook JSON
repeats its keys in every update: a batch of 50 updates (~12 kB) packs to ~2 kB, a single
update (~0.5 kB) to ~0.45 kB, at ~3.6 and ~0.8 µs (bench/results/intake-2026-12-05h.md). The
bytes written per event, to SQLite's WAL and data file or to PostgreSQL's heap and WAL, shrink
by as much: with bodies stored as received, a SQLite group commit of 128 batch-50 events took
12-14 ms, most of it writing (session 16).

The codec is named in the label the vault binds into each ciphertext's associated data
(``webhook_events.body#lz4``): a sealed body says, unforgeably, how it is to be read. Bodies
sealed as received, under the plain label (before session 16, and in backups of then), still
open as what they are. The purpose check reads the label without its ``#`` suffix
(privacy/purpose.py).

Compression before encryption lets a ciphertext's length depend on its content's redundancy.
Someone who could both read stored lengths and have text of theirs batched by Meta into the
same delivery as another customer's could, over very many tries, learn about that text
(CRIME-style). The plaintext size is stored beside the body (``body_size``) anyway, and a reader
of the database's lengths already has its rows' metadata; accepted, and written down here.
"""

from __future__ import annotations

import lz4.block

from connectx.kit.crypto import CryptoError, KeyDestroyed
from connectx.privacy.vault import Vault

COLUMN = "webhook_events.body"  # the purpose label; bodies sealed as received carry it alone
PACKED = f"{COLUMN}#lz4"  # bodies sealed compressed


def pack(body: bytes) -> bytes:
    return bytes(lz4.block.compress(body))


def unpack(data: bytes) -> bytes:
    return bytes(lz4.block.decompress(data))


async def seal_many(vault: Vault, subject: str, bodies: list[bytes]) -> list[bytes]:
    """Compress and seal bodies received on the day of ``subject``."""
    return await vault.encrypt_many(None, subject, PACKED, [pack(body) for body in bodies])


async def open_body(vault: Vault, subject: str, blob: bytes) -> bytes:
    """The body (as stored: masked) of a sealed raw webhook, compressed or sealed as received.

    Raises :class:`KeyDestroyed` when its day's key is gone and :class:`CryptoError` when it
    opens under neither label."""
    try:
        packed = await vault.decrypt_bytes(None, subject, PACKED, blob)
    except KeyDestroyed:
        raise
    except CryptoError:
        return await vault.decrypt_bytes(None, subject, COLUMN, blob)  # sealed as received
    return unpack(packed)
