"""One-click unsubscribe from marketing e-mail (policy §8; RFC 8058).

Every marketing or product-update e-mail (``mail.service.send_marketing``, the only way to send
one) ends with a link to ``/unsubscribe/<token>`` and carries ``List-Unsubscribe`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` headers. The token names the account and
the purpose and is signed (HMAC under the vault's index key, from the key store): nobody can make
one for someone else, and it needs no sign-in. Opening the link shows a page with one button (mail
scanners follow links: a GET never changes anything); the button, or the mail provider's one-click
POST, records the withdrawal in the ledger (source ``unsubscribe_link``, the person as actor).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import get_settings
from connectx.kit.errors import NotFound
from connectx.privacy import consent
from connectx.privacy.vault import Vault

PURPOSES = {"marketing": "news and offers", "product_updates": "product updates"}
WORDING = "Unsubscribed from {what} e-mails with the link in an e-mail from ConnectX."
NOTICE_VERSION = "2025-08-02"


@dataclass(frozen=True)
class Target:
    user_id: int
    purpose: str

    @property
    def what(self) -> str:
        return PURPOSES[self.purpose]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def _mac(payload: str) -> bytes:
    return (await Vault().blind_index("unsubscribe", payload))[:16]


async def token_for(user_id: int, purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"no unsubscribe link for purpose {purpose!r}")
    payload = f"{user_id}.{purpose}"
    return f"{_b64(payload.encode())}.{_b64(await _mac(payload))}"


async def link_for(user_id: int, purpose: str) -> str:
    base = get_settings().effective_public_url
    return f"{base}/unsubscribe/{await token_for(user_id, purpose)}"


async def read(token: str) -> Target:
    """The account and purpose a token names; NotFound when it is not one of ours."""
    invalid = NotFound("This unsubscribe link is not valid. Sign in to change your e-mail choices.")
    payload_b64, _, mac_b64 = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)).decode()
        mac = base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    user, _, purpose = payload.partition(".")
    if not user.isdigit() or purpose not in PURPOSES or len(mac) != 16:
        raise invalid
    if not hmac.compare_digest(mac, await _mac(payload)):
        raise invalid
    return Target(int(user), purpose)


async def withdraw(db: AsyncSession, token: str, ip: str | None) -> Target:
    """Record the withdrawal (once: a second click changes nothing)."""
    target = await read(token)
    subject = f"user:{target.user_id}"
    if await consent.is_granted(db, subject, target.purpose, "email"):
        await consent.record(
            db,
            subject=subject,
            workspace_id=None,
            purpose=target.purpose,
            channel="email",
            granted=False,
            source="unsubscribe_link",
            wording=WORDING.format(what=target.what),
            notice_version=NOTICE_VERSION,
            actor=subject,
            ip=ip,
        )
    return target
