"""Password hashing (Argon2id) and the rules a new password must meet (NIST SP 800-63B).

Hashing runs in a worker thread so the event loop keeps serving while Argon2 works. The cost
parameters come from settings and never go below OWASP's minimum for Argon2id (19 MiB, t=2, p=1);
a hash made with other parameters is re-hashed the next time its owner signs in.
"""

from __future__ import annotations

import asyncio
import unicodedata
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from connectx.config import get_settings
from connectx.kit.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 128
OWASP_MIN_MEMORY_KIB = 19 * 1024
OWASP_MIN_TIME_COST = 2

# Passwords people pick most often that are long enough to pass the length rule. A short list is
# what NIST asks for at a minimum ("values known to be commonly used"); the length rule does the
# rest. Compared case-insensitively.
_COMMON_TEXT = """
123456789012|1234567890123|12345678901234|123456789123|111111111111|000000000000
123123123123|123412341234|121212121212|987654321098|098765432109|112233445566
password1234|password12345|password123456|passwordpassword|password123!|password@123
p@ssw0rd1234|p@ssword1234|passw0rd1234|mypassword123|changeme1234|iloveyouiloveyou
qwertyuiop12|qwertyuiopasdf|qwertyuiopas|qwerty123456|qwertyqwerty|1qaz2wsx3edc
1q2w3e4r5t6y|asdfghjkl123|asdfasdfasdf|zxcvbnm12345|iloveyou1234|letmeinletmein
letmein12345|welcome12345|welcome@1234|admin1234567|administrator|adminadmin12
football1234|baseball1234|superman1234|batman123456|sunshine1234|princess1234
monkey123456|dragon123456|starwars1234|master123456|trustno1trustno1|whatever1234
abcdefghijkl|abcdef123456|abc123abc123|correcthorsebatterystaple|secret123456
correct horse battery staple|computer1234|internet1234|password2024|password2025
connectx1234|connectx123456|connectxconnectx|whatsapp1234|whatsapp123456|january12345
"""
COMMON = frozenset(
    word.strip() for line in _COMMON_TEXT.strip().splitlines() for word in line.split("|")
)


def normalise(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks, so the same password typed on any keyboard matches."""
    return unicodedata.normalize("NFKC", password)


def check_new_password(password: str, *, context: tuple[str, ...] = ()) -> None:
    """Raise :class:`InvalidInput` when ``password`` may not be chosen.

    Length 12-128, not a commonly used password, not one character repeated, not the account's
    own e-mail address or name (``context``). No composition rules, no hints.
    """
    text = normalise(password)
    if len(text) < MIN_LENGTH:
        raise InvalidInput(
            f"Choose a password of at least {MIN_LENGTH} characters; a few words make a good one.",
            field="password",
        )
    if len(text) > MAX_LENGTH:
        raise InvalidInput(
            f"Choose a password of at most {MAX_LENGTH} characters.", field="password"
        )
    folded = text.casefold()
    if folded in COMMON or len(set(folded)) == 1:
        raise InvalidInput(
            "This password is one of the most commonly used, so it is easy to guess. "
            "Choose another.",
            field="password",
        )
    for value in context:
        value = value.strip().casefold()
        if value and (folded == value or folded == value.split("@")[0]):
            raise InvalidInput(
                "Choose a password that is not your e-mail address or name.", field="password"
            )


@lru_cache(maxsize=4)
def _hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=max(time_cost, OWASP_MIN_TIME_COST),
        memory_cost=max(memory_kib, OWASP_MIN_MEMORY_KIB),
        parallelism=max(parallelism, 1),
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def hasher() -> PasswordHasher:
    """The hasher for the configured parameters (never below OWASP's minimum)."""
    s = get_settings()
    return _hasher(s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher().hash, normalise(password))


def _verify(encoded: str, password: str) -> bool:
    try:
        return hasher().verify(encoded, normalise(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(encoded: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, encoded, password)


def needs_rehash(encoded: str) -> bool:
    """True when ``encoded`` was made with parameters other than the configured ones."""
    try:
        return hasher().check_needs_rehash(encoded)
    except InvalidHashError:
        return True


_dummy: dict[tuple[int, int, int], str] = {}


async def waste_time(password: str) -> None:
    """Spend as long as a real verification, for sign-ins to e-mail addresses with no account,
    so response timing does not tell whether an account exists."""
    s = get_settings()
    params = (s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)
    if params not in _dummy:
        _dummy[params] = await hash_password("connectx-timing-equaliser")
    await verify_password(_dummy[params], password)
