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
DIGEST_SIZE = 32  # SHA-256

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
    return digest if len(digest) == DIGEST_SIZE else None


def matches(secret: bytes, body: bytes, digest: bytes) -> bool:
    # hmac.digest: OpenSSL's one-shot HMAC, no HMAC object built in Python around it
    return hmac.compare_digest(hmac.digest(secret, body, "sha256"), digest)


def keyed(secret: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 state keyed with ``secret``, for :func:`matches_keyed`."""
    return hmac.new(secret, digestmod=hashlib.sha256)


def matches_keyed(state: hmac.HMAC, body: bytes, digest: bytes) -> bool:
    """:func:`matches` from a state made once per secret (:func:`keyed`): the key's setup and
    the digest's lookup are not paid again (~0.6-0.9 µs of a single update's 2-3 µs; intake
    runs this on its event loop for every POST)."""
    mac = state.copy()
    mac.update(body)
    return hmac.compare_digest(mac.digest(), digest)


def find_signer(candidates: Iterable[tuple[K, bytes]], body: bytes, header: str | None) -> K | None:
    """The key of the first candidate secret that produced the signature, or None."""
    digest = parse_header(header)
    if digest is None:
        return None
    for key, secret in candidates:
        if matches(secret, body, digest):
            return key
    return None
