"""TOTP two-factor authentication (RFC 6238, ``pyotp``) with single-use recovery codes.

The secret is stored encrypted under the user's subject key; it is shown once, while enrolling
(as an ``otpauth://`` URI, a QR code and text), and 2FA is enabled only after a code made from it
is confirmed. A code is accepted once: the time step of the last accepted code is remembered.
Ten recovery codes are shown once when 2FA is enabled (or regenerated) and stored as keyed hashes.
"""

from __future__ import annotations

import hmac
import io
import re
import secrets
from dataclasses import dataclass

import pyotp
import qrcode
import qrcode.image.svg
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import repository as repo
from connectx.kit import clock
from connectx.models.account import User
from connectx.privacy.vault import Vault

ISSUER = "ConnectX"
STEP_S = 30
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
SECRET_COLUMN = "users.totp_secret"  # noqa: S105 (an encryption context name)


@dataclass
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


def subject(user: User) -> str:
    return f"user:{user.id}"


def qr_svg(data: str) -> str:
    """An SVG QR code (no script, safe to inline or serve as a data: image)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


async def start(db: AsyncSession, user: User, email: str) -> Enrolment:
    """A new secret, stored encrypted but not yet enabled (until :func:`confirm`)."""
    secret = pyotp.random_base32()
    user.totp_secret_enc = await Vault(db).encrypt(None, subject(user), SECRET_COLUMN, secret)
    user.totp_enabled_at = None
    user.totp_last_step = None
    await db.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))


async def secret_of(db: AsyncSession, user: User) -> str | None:
    if user.totp_secret_enc is None:
        return None
    return await Vault(db).decrypt(None, subject(user), SECRET_COLUMN, user.totp_secret_enc)


def _clean(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def looks_like_totp(code: str) -> bool:
    return bool(re.fullmatch(r"\d{6}", _clean(code)))


async def check_totp(db: AsyncSession, user: User, code: str) -> bool:
    """Accept a current code (one step of clock drift either way) not accepted before."""
    secret = await secret_of(db, user)
    cleaned = _clean(code)
    if secret is None or not re.fullmatch(r"\d{6}", cleaned):
        return False
    totp = pyotp.TOTP(secret)
    now_step = int(clock.now().timestamp()) // STEP_S
    for step in (now_step - 1, now_step, now_step + 1):
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_S), cleaned):
            user.totp_last_step = step
            await db.flush()
            return True
    return False


async def _code_hash(db: AsyncSession, user_id: int, code: str) -> bytes:
    return await Vault(db).blind_index("recovery_code", f"{user_id}|{_clean(code)}")


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


async def new_recovery_codes(db: AsyncSession, user: User) -> list[str]:
    codes = [_new_code() for _ in range(RECOVERY_CODES)]
    await repo.replace_recovery_codes(
        db, user.id, [await _code_hash(db, user.id, c) for c in codes]
    )
    return codes


async def use_recovery_code(db: AsyncSession, user: User, code: str) -> bool:
    if not _clean(code):
        return False
    return await repo.use_recovery_code(
        db, user.id, await _code_hash(db, user.id, code), clock.now()
    )


async def check_code_or_recovery(db: AsyncSession, user: User, code: str) -> str | None:
    """ "totp" or "recovery_code" when ``code`` is accepted, else None."""
    if looks_like_totp(code):
        return "totp" if await check_totp(db, user, code) else None
    return "recovery_code" if await use_recovery_code(db, user, code) else None


async def enable(db: AsyncSession, user: User) -> list[str]:
    user.totp_enabled_at = clock.now()
    return await new_recovery_codes(db, user)


async def disable(db: AsyncSession, user: User) -> None:
    user.totp_secret_enc = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    await repo.delete_recovery_codes(db, user.id)
    await db.flush()


async def remaining_recovery_codes(db: AsyncSession, user: User) -> int:
    return await repo.unused_recovery_codes(db, user.id)
