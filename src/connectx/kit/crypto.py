"""Cryptographic primitives: AES-256-GCM sealing, key wrapping, keyed hashes, the master key.

The key hierarchy that uses these lives in :mod:`connectx.privacy.vault`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectx.config import Settings

FORMAT_V1 = 1
_HEADER = struct.Struct(">BQ")  # format version, key id
NONCE_BYTES = 12


class CryptoError(Exception):
    pass


class KeyDestroyed(CryptoError):
    """The subject's data key was destroyed: the data is erased."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, key_id: int, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    header = _HEADER.pack(FORMAT_V1, key_id)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + aad)


def key_id_of(blob: bytes) -> int:
    version, key_id = _HEADER.unpack_from(blob)
    if version != FORMAT_V1:
        raise CryptoError("unknown ciphertext format")
    return int(key_id)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    header = blob[: _HEADER.size]
    nonce = blob[_HEADER.size : _HEADER.size + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[_HEADER.size + NONCE_BYTES :], header + aad)
    except Exception as exc:  # InvalidTag: wrong key, or swapped/altered ciphertext
        raise CryptoError("ciphertext does not authenticate") from exc


def wrap(kek: bytes, key: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, key, aad)


def unwrap(kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
    except Exception as exc:
        raise CryptoError("key does not unwrap") from exc


def keyed_hash(key: bytes, value: str) -> bytes:
    return hmac.new(key, value.encode(), hashlib.sha256).digest()


def token_hash(token: str) -> bytes:
    """Hash of a high-entropy random token (sessions, one-time links, API keys)."""
    return hashlib.sha256(token.encode()).digest()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def master_key_id(master: bytes) -> str:
    return hashlib.sha256(b"connectx-master-id|" + master).hexdigest()[:16]


def _decode_key(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    if len(raw) != 32:
        raise CryptoError("the master key must be 32 bytes, base64-encoded")
    return raw


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def load_master_keys(settings: Settings) -> list[bytes]:
    """The current master key first, then older ones still accepted during a rotation.

    ``CONNECTX_MASTER_KEY`` may hold several comma-separated keys. Without it the key file
    (``CONNECTX_MASTER_KEY_FILE``, default ``<data dir>/master.key``) is read, and created with
    a fresh random key the first time.
    """
    if settings.master_key:
        return [_decode_key(part) for part in settings.master_key.split(",") if part.strip()]
    path = settings.master_key_file or settings.data_dir / "master.key"
    if not path.exists():
        write_key_file(path, [new_key()])
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    return [_decode_key(line) for line in lines]


def write_key_file(path: Path, keys: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(encode_key(k) for k in keys) + "\n")
    tmp.replace(path)
