"""Raw webhook bodies at rest: masked, compressed, sealed.

What intake stores of a delivery is the body as received with card numbers masked
(:mod:`connectx.intake.masking`), compressed, and sealed under its day's key
(``webhook_day:<date>``, retention/day_keys.py). Webhook JSON repeats its keys in every update:
a batch of 50 updates (~12 kB) packs to ~1.6 kB (Zstandard level 1) or ~2.2 kB (LZ4), a single
update (~0.5 kB) to ~0.45 kB. The bytes written per event, to SQLite's WAL and data file or to
PostgreSQL's heap and WAL, shrink by as much: with bodies stored as received, a SQLite group
commit of 128 batch-50 events took 12-14 ms, most of it writing (session 16).

Two codecs, chosen by where the compressing runs (intake/batcher.py, ``_sealing``):

* **SQLite, bodies of** :data:`ON_THREAD_FROM` **or more: Zstandard**, the group's large bodies
  in one call (``multi_compress_to_buffer``) that lets go of the GIL, on the database's thread
  in the group commit's own trip, beside the busy event loop (~10.7 µs a 12 kB body there,
  against LZ4's ~4 µs on the loop). Alternating pairs at batch 50: +1 to +14 % POSTs/s in
  seven pairs (bench/results/intake-2026-12-05n.md).
* **Everything else: LZ4**, body by body on the loop: small bodies (a group call costs more
  than LZ4 saves them), and every body on PostgreSQL (python-lz4 lets go of the GIL for each
  body, so it cannot share a thread with a busy loop; a trip to a thread of its own for the
  group cost PostgreSQL more than it saved, -9 % in two pairs).

The codec is named in the label the vault binds into each ciphertext's associated data
(``webhook_events.body#zstd``, ``webhook_events.body#lz4``): a sealed body says, unforgeably,
how it is to be read, and either database reads both (:func:`open_body`). Bodies sealed as
received, under the plain label (before session 16, and in backups of then), still open as what
they are. The purpose check reads the label without its ``#`` suffix (privacy/purpose.py).

Compression before encryption lets a ciphertext's length depend on its content's redundancy.
Someone who could both read stored lengths and have text of theirs batched by Meta into the
same delivery as another customer's could, over very many tries, learn about that text
(CRIME-style). The plaintext size is stored beside the body (``body_size``) anyway, and a reader
of the database's lengths already has its rows' metadata; accepted, and written down here.
"""

from __future__ import annotations

import threading
from typing import Protocol, cast

import lz4.block
import zstandard

from connectx.kit.crypto import CryptoError, KeyDestroyed
from connectx.privacy.vault import Sealer, Vault

COLUMN = "webhook_events.body"  # the purpose label; bodies sealed as received carry it alone
ZSTD = f"{COLUMN}#zstd"  # bodies sealed compressed: Zstandard frames
LZ4 = f"{COLUMN}#lz4"  # ... LZ4 blocks, the size in front
PACKED = ZSTD  # what seal_many writes
# Bodies this large or larger are compressed on SQLite's database thread (Zstandard); smaller ones
# with LZ4 on the loop, where it costs ~0.2-0.5 µs a body (a Zstandard group call costs ~20 µs
# plus ~3 µs a small body: a batch-1 delivery of ~0.5 kB gains nothing from the trip).
ON_THREAD_FROM = 4096


class Packer(Protocol):
    """A codec for a group's bodies, named by the label its bodies are sealed under."""

    label: str

    def pack_many(self, bodies: list[bytes]) -> list[bytes]: ...


class ZstdPacker:
    """Compresses a group of bodies in one call that lets go of the GIL for all of them
    (zstandard's ``multi_compress_to_buffer``), so it runs beside a busy event loop on another
    thread. Not for two threads at once: one per writer."""

    label = ZSTD

    def __init__(self) -> None:
        self._zstd = zstandard.ZstdCompressor(level=1)

    def pack_many(self, bodies: list[bytes]) -> list[bytes]:
        if not bodies:
            return []
        inputs = cast("list[bytes | bytearray | memoryview]", bodies)  # (no copy: typing only)
        packed = self._zstd.multi_compress_to_buffer(inputs, threads=0)
        return [packed[i].tobytes() for i in range(len(packed))]


class Lz4Packer:
    """Compresses each body with LZ4: faster where the compressing holds up the event loop."""

    label = LZ4

    def pack_many(self, bodies: list[bytes]) -> list[bytes]:
        return [bytes(lz4.block.compress(body)) for body in bodies]


_local = threading.local()  # a decompressor per thread (making one cost ~17 µs, using it ~1.5)


def _unzstd(data: bytes) -> bytes:
    found: zstandard.ZstdDecompressor | None = getattr(_local, "zstd", None)
    if found is None:
        found = _local.zstd = zstandard.ZstdDecompressor()
    return found.decompress(data)


def _unlz4(data: bytes) -> bytes:
    return bytes(lz4.block.decompress(data))


_UNPACK = ((ZSTD, _unzstd), (LZ4, _unlz4))
_first = _UNPACK[0]  # the codec that opened the last body (open_body)


def seal_group(sealer: Sealer, packer: Packer, bodies: list[bytes]) -> list[bytes]:
    """Compress and seal bodies; ``sealer`` is their day's, for ``packer.label``. No await: on
    any thread."""
    return sealer.seal_many(packer.pack_many(bodies))


async def seal_many(vault: Vault, subject: str, bodies: list[bytes]) -> list[bytes]:
    """Compress and seal bodies received on the day of ``subject``."""
    packer = ZstdPacker()
    return seal_group(await vault.sealer(None, subject, packer.label), packer, bodies)


async def open_body(vault: Vault, subject: str, blob: bytes) -> bytes:
    """The body (as stored: masked) of a sealed raw webhook, compressed (either codec) or
    sealed as received. The codec that opened the last body is tried first (a database's
    bodies are mostly of one: each other label tried costs a failed AES-GCM check).

    Raises :class:`KeyDestroyed` when its day's key is gone and :class:`CryptoError` when it
    opens under none of the labels."""
    global _first
    first = _first
    for codec in (first, *(c for c in _UNPACK if c is not first)):
        label, unpack = codec
        try:
            opened = unpack(await vault.decrypt_bytes(None, subject, label, blob))
        except KeyDestroyed:
            raise
        except CryptoError:
            continue
        _first = codec
        return opened
    return await vault.decrypt_bytes(None, subject, COLUMN, blob)  # sealed as received
