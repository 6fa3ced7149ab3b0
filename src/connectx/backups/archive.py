"""The encrypted backup file: a gzip'd tar, sealed in chunks with AES-256-GCM.

Layout::

    b"CXBK1\\n" | 4-byte header length | header (JSON) | chunk* ;  chunk = 4-byte length | sealed

The header is plain JSON (what the backup is, when it was taken, which master key it needs; no
personal data) and is bound into every chunk as associated data, so it cannot be altered. Each
backup has its own key, derived with HKDF-SHA-256 from the current master key and a random salt
kept in the header: the master key alone (which must be kept anyway) opens a backup; nothing in
the backup opens it. Chunk ``i`` uses nonce ``i`` (the key is never reused across backups) and
associated data ``header | i | last``, so chunks cannot be reordered, dropped or cut off.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"CXBK1\n"
CHUNK = 1024 * 1024
_INFO = b"connectx backup v1"
_LEN = struct.Struct(">I")


class BackupError(Exception):
    """The file is not a ConnectX backup, was altered or cut short, or its key is missing."""


def derive_key(master: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(master)


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if last else 0)


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


class EncryptingWriter(io.RawIOBase):
    """A write-only file object: what is written is sealed chunk by chunk into ``out``."""

    def __init__(self, out: IO[bytes], key: bytes, header: bytes) -> None:
        super().__init__()
        self.out = out
        self.aead = AESGCM(key)
        self.header = header
        self.buffer = bytearray()
        self.index = 0
        self.finished = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.finished:
            raise ValueError("the backup is already sealed")
        view = bytes(data)
        self.buffer += view
        while len(self.buffer) > CHUNK:
            self._emit(bytes(self.buffer[:CHUNK]), last=False)
            del self.buffer[:CHUNK]
        return len(view)

    def _emit(self, plain: bytes, *, last: bool) -> None:
        sealed = self.aead.encrypt(_nonce(self.index), plain, _aad(self.header, self.index, last))
        self.out.write(_LEN.pack(len(sealed)))
        self.out.write(sealed)
        self.index += 1

    def finish(self) -> None:
        if not self.finished:
            self._emit(bytes(self.buffer), last=True)
            self.buffer.clear()
            self.finished = True

    def close(self) -> None:
        self.finish()
        super().close()


class DecryptingReader(io.RawIOBase):
    """A read-only file object over the sealed chunks; raises :class:`BackupError` on any
    tampering, truncation or trailing data."""

    def __init__(self, src: IO[bytes], key: bytes, header: bytes) -> None:
        super().__init__()
        self.src = src
        self.aead = AESGCM(key)
        self.header = header
        self.index = 0
        self.pending = b""
        self.done = False

    def readable(self) -> bool:
        return True

    def _next(self) -> None:
        raw_len = self.src.read(_LEN.size)
        if len(raw_len) < _LEN.size:
            raise BackupError("the backup is cut short (its last part is missing)")
        (size,) = _LEN.unpack(raw_len)
        sealed = self.src.read(size)
        if len(sealed) < size:
            raise BackupError("the backup is cut short")
        for last in (False, True):
            try:
                plain = self.aead.decrypt(
                    _nonce(self.index), sealed, _aad(self.header, self.index, last)
                )
            except InvalidTag:
                continue
            self.index += 1
            self.pending += plain
            if last:
                self.done = True
                if self.src.read(1):
                    raise BackupError("the backup has data after its end")
            return
        raise BackupError("the backup was altered, or it was made with another master key")

    def readinto(self, target: Any) -> int:
        while not self.pending and not self.done:
            self._next()
        size = min(len(target), len(self.pending))
        target[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


@dataclass(frozen=True)
class Header:
    raw: bytes
    fields: dict[str, Any]

    @property
    def salt(self) -> bytes:
        return base64.b64decode(self.fields["salt"])

    @property
    def master_id(self) -> str:
        return str(self.fields["master_id"])


def new_header(fields: dict[str, Any], master_id: str) -> Header:
    body = {**fields, "format": 1, "master_id": master_id}
    body["salt"] = base64.b64encode(os.urandom(16)).decode()
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return Header(raw, body)


def write_header(out: IO[bytes], header: Header) -> None:
    out.write(MAGIC)
    out.write(_LEN.pack(len(header.raw)))
    out.write(header.raw)


def read_header(src: IO[bytes]) -> Header:
    if src.read(len(MAGIC)) != MAGIC:
        raise BackupError("this is not a ConnectX backup file")
    raw_len = src.read(_LEN.size)
    if len(raw_len) < _LEN.size:
        raise BackupError("the backup's header is cut short")
    (size,) = _LEN.unpack(raw_len)
    if size > 64 * 1024:
        raise BackupError("the backup's header is not valid")
    raw = src.read(size)
    try:
        fields = json.loads(raw)
    except ValueError as exc:
        raise BackupError("the backup's header is not valid") from exc
    if not isinstance(fields, dict) or fields.get("format") != 1:
        raise BackupError("this backup's format is not supported by this version")
    return Header(raw, fields)


def peek(path: Path) -> Header:
    with path.open("rb") as src:
        return read_header(src)
