"""``X-Hub-Signature-256``: HMAC-SHA256 of the raw request body keyed with the Meta app secret.

Always computed over the untouched bytes (never re-serialised JSON) and compared in constant
time with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import TypeVar

PREFIX = "sha256="

K = TypeVar("K")


def sign(secret: str | bytes, body: bytes) -> str:
    """The header value Meta would send for ``body`` (used by the simulator and tests)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def parse_header(value: str | None) -> bytes | None:
    """The 32-byte digest carried by the header, or None when it is missing or malformed."""
    if not value:
        return None
    value = value.strip()
    if not value.lower().startswith(PREFIX):
        return None
    try:
        digest = bytes.fromhex(value[len(PREFIX) :])
    except ValueError:
        return None
    return digest if len(digest) == hashlib.sha256().digest_size else None


def matches(secret: bytes, body: bytes, digest: bytes) -> bool:
    # hmac.digest: OpenSSL's one-shot HMAC, no HMAC object built in Python around it (every
    # webhook POST runs this on the event loop)
    return hmac.compare_digest(hmac.digest(secret, body, "sha256"), digest)


def find_signer(candidates: Iterable[tuple[K, bytes]], body: bytes, header: str | None) -> K | None:
    """The key of the first candidate secret that produced the signature, or None."""
    digest = parse_header(header)
    if digest is None:
        return None
    for key, secret in candidates:
        if matches(secret, body, digest):
            return key
    return None
