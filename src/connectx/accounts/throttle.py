"""Brute-force limits for sign-in, second-factor codes and mailed-link requests.

Attempts are rows (:class:`~connectx.models.account.LoginAttempt`), so the limits hold across
processes and restarts. Each row is keyed by a keyed hash (the vault's blind-index key) of the
action and of either the account (the normalised e-mail address as typed, whether or not an
account has it, so a lockout tells nothing about who has an account) or the client address; no
e-mail address or IP is stored.

When ``max`` attempts fall inside the window, the key is locked until ``lockout`` after the last
of them; the caller gets 429 with Retry-After and the time to try again.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import repository as repo
from connectx.config import get_settings
from connectx.kit import clock
from connectx.kit.errors import DomainError, TooManyRequests
from connectx.models.account import LoginAttempt
from connectx.privacy.vault import Vault

log = logging.getLogger(__name__)

# What each action is called in messages.
_WHAT = {
    "signin": "failed sign-in attempts",
    "mfa": "wrong two-factor codes",
    "password": "wrong passwords",
    "forgot": "password-reset requests",
    "verify": "verification e-mail requests",
}


def remember(exc: DomainError) -> DomainError:
    """Mark an error whose request must still commit what it recorded (a failed attempt):
    endpoints answer it without raising through the unit of work (see :func:`is_remembered`)."""
    exc.remembered = True  # type: ignore[attr-defined]
    return exc


def is_remembered(exc: BaseException) -> bool:
    return bool(getattr(exc, "remembered", False))


def client_ip(request: Request | None) -> str:
    if request is None or request.client is None:
        return "unknown"
    return request.client.host or "unknown"


@dataclass
class _Key:
    kind: str  # "account" | "ip"
    hash: bytes
    limit: int


class Throttle:
    """Limits for one ``action`` by account and by client address.

    ``count_all``: every attempt counts (mail requests), not only failures (sign-in, codes).
    """

    def __init__(
        self,
        db: AsyncSession,
        action: str,
        *,
        account: str | None,
        request: Request | None,
        count_all: bool = False,
    ) -> None:
        self.db = db
        self.action = action
        self.account = account
        self.ip = client_ip(request)
        self.count_all = count_all
        self._keys: list[_Key] | None = None

    async def keys(self) -> list[_Key]:
        if self._keys is None:
            settings = get_settings()
            vault = Vault(self.db)
            keys = [
                _Key(
                    "ip",
                    await vault.blind_index(f"throttle|{self.action}|ip", self.ip),
                    settings.login_max_failures_ip,
                )
            ]
            if self.account is not None:
                keys.insert(
                    0,
                    _Key(
                        "account",
                        await vault.blind_index(f"throttle|{self.action}|account", self.account),
                        settings.login_max_failures_account,
                    ),
                )
            self._keys = keys
        return self._keys

    async def _times(self, key: _Key, since: datetime) -> list[datetime]:
        if self.count_all:
            return await repo.attempts_since(self.db, key.hash, since)
        return await repo.failures_since(self.db, key.hash, since)

    async def check(self) -> None:
        """Raise :class:`TooManyRequests` while any key is locked."""
        settings = get_settings()
        now = clock.now()
        window = timedelta(minutes=settings.login_window_minutes)
        lockout = timedelta(minutes=settings.login_lockout_minutes)
        for key in await self.keys():
            times = await self._times(key, now - window)
            if len(times) < key.limit:
                continue
            until = times[-1] + lockout
            if until <= now:
                continue
            seconds = max(1, math.ceil((until - now).total_seconds()))
            # No address, account or IP in the line: the kind of limit and the action only.
            log.warning("%s paused by the per-%s limit for %ss", self.action, key.kind, seconds)
            minutes = max(1, math.ceil(seconds / 60))
            who = "for this e-mail address" if key.kind == "account" else "from your network"
            what = _WHAT.get(self.action, "attempts")
            raise remember(
                TooManyRequests(
                    f"Too many {what} {who}. For your security this is paused until "
                    f"{until:%H:%M} UTC (in about {minutes} minute{'s' if minutes != 1 else ''}); "
                    "try again then."
                    + (
                        " If you forgot your password, you can reset it now."
                        if self.action == "signin"
                        else ""
                    ),
                    retry_after_s=seconds,
                    retry_at=until.isoformat(timespec="seconds"),
                )
            )

    async def _record(self, succeeded: bool) -> None:
        now = clock.now()
        for key in await self.keys():
            await repo.add_attempt(
                self.db,
                LoginAttempt(
                    key_kind=key.kind,
                    key_hash=key.hash,
                    succeeded=succeeded,
                    created_at=now,
                    detail=self.action,
                ),
            )

    async def failed(self) -> None:
        await self._record(False)

    async def succeeded(self) -> None:
        """A success clears the account's failures (the IP's failures still count)."""
        now = clock.now()
        keys = await self.keys()
        for key in keys:
            if key.kind == "account" or self.count_all:
                await repo.add_attempt(
                    self.db,
                    LoginAttempt(
                        key_kind=key.kind,
                        key_hash=key.hash,
                        succeeded=True,
                        created_at=now,
                        detail=self.action,
                    ),
                )

    async def counted(self) -> None:
        """Count one request (``count_all`` throttles)."""
        await self._record(True)
