"""The media store: files sealed in AES-GCM chunks under a contact's subject key.

Layout: ``<data dir>/media/<workspace id>/<random name>.cxm``. A file is the magic ``CXM1``
followed by frames ``<4-byte big-endian length><sealed chunk>``; each chunk holds up to
``CHUNK_BYTES`` of the plaintext and is sealed by the vault with associated data naming the
file, the chunk's index and whether it is the last one, so chunks cannot be reordered, swapped
between files, dropped or the file cut short without the open failing. Plaintext never touches
the disk: chunks are sealed as they arrive and written to ``<name>.part``, renamed when complete.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from connectx.config import get_settings
from connectx.kit.crypto import CryptoError
from connectx.privacy.vault import Vault

MAGIC = b"CXM1"
CHUNK_BYTES = 1024 * 1024
_LEN = struct.Struct(">I")


def media_dir() -> Path:
    return get_settings().data_dir / "media"


def path_of(storage_key: str, base: Path | None = None) -> Path:
    root = (base or media_dir()).resolve()
    path = (root / storage_key).resolve()
    if root not in path.parents:
        raise CryptoError("a media storage key points outside the media directory")
    return path


def subject_of(contact_id: int) -> str:
    return f"contact:{contact_id}"


def _column(storage_key: str, index: int, last: bool) -> str:
    return f"media_files.content:{storage_key}:{index}:{'end' if last else 'more'}"


class SealedWriter:
    """Seal bytes as they arrive; :meth:`finish` makes the file visible, :meth:`abort` drops
    it. Media files are sealed under ``contact:<id>`` in the media directory; other sealed files
    (privacy exports) name their own ``subject`` and ``base`` directory."""

    def __init__(
        self,
        vault: Vault,
        workspace_id: int | None,
        contact_id: int | None,
        *,
        subject: str | None = None,
        base: Path | None = None,
    ) -> None:
        self.vault = vault
        self.workspace_id = workspace_id
        self.subject = subject or subject_of(contact_id or 0)
        self.storage_key = f"{workspace_id or 'platform'}/{secrets.token_hex(16)}.cxm"
        self.path = path_of(self.storage_key, base)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._part = self.path.with_name(self.path.name + ".part")
        self._file: BinaryIO | None = open(self._part, "wb")  # noqa: SIM115 (closed in finish/abort)
        self._file.write(MAGIC)
        self._buffer = bytearray()
        self._index = 0

    async def _seal(self, chunk: bytes, last: bool) -> None:
        assert self._file is not None
        blob = await self.vault.encrypt(
            self.workspace_id, self.subject, _column(self.storage_key, self._index, last), chunk
        )
        self._file.write(_LEN.pack(len(blob)))
        self._file.write(blob)
        self._index += 1

    async def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            chunk = bytes(self._buffer[:CHUNK_BYTES])
            del self._buffer[:CHUNK_BYTES]
            await self._seal(chunk, last=False)

    async def finish(self) -> str:
        """Seal the rest as the last chunk and move the file into place; its storage key."""
        await self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self._part, self.path)
        return self.storage_key

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._part.unlink(missing_ok=True)


async def open_chunks(
    vault: Vault,
    workspace_id: int | None,
    contact_id: int | None,
    storage_key: str,
    *,
    subject: str | None = None,
    base: Path | None = None,
) -> AsyncIterator[bytes]:
    """The plaintext of a sealed file, chunk by chunk. Raises :class:`KeyDestroyed` when the
    contact was erased and :class:`CryptoError` when the file was altered or cut short."""
    subject = subject or subject_of(contact_id or 0)
    f = await asyncio.to_thread(path_of(storage_key, base).open, "rb")
    try:

        async def read(n: int) -> bytes:
            return await asyncio.to_thread(f.read, n)

        if await read(len(MAGIC)) != MAGIC:
            raise CryptoError("not a sealed media file")
        index = 0
        header = await read(_LEN.size)
        while header:
            if len(header) != _LEN.size:
                raise CryptoError("sealed media file is cut short")
            (length,) = _LEN.unpack(header)
            blob = await read(length)
            if len(blob) != length:
                raise CryptoError("sealed media file is cut short")
            header = await read(_LEN.size)
            last = not header
            yield await vault.decrypt_bytes(
                workspace_id, subject, _column(storage_key, index, last), blob
            )
            index += 1
        if index == 0:
            raise CryptoError("sealed media file is empty")
    finally:
        f.close()


def delete(storage_key: str | None, base: Path | None = None) -> None:
    if storage_key:
        path_of(storage_key, base).unlink(missing_ok=True)
