"""The secrets intake verifies webhook signatures with, decrypted once and kept in memory.

A webhook does not say which app signed it before it is verified, so intake tries the secrets of
every app we hold (most recently matched first: with one app, one HMAC per request). The list is
loaded from the database on first use and reloaded

* at once in this process after a channel change commits (:func:`invalidate`),
* when a signature matches nothing (an app connected through another process), at most once per
  ``MISS_RELOAD_S``, so a flood of forged requests cannot turn into a flood of queries,
* every ``TTL_S`` seconds, which bounds how long another process keeps accepting a retired secret.

Requests that find the list stale at the same moment share one load.

If the database cannot be read (a pool timeout under load, an outage), the secrets already held
are kept; with none held, :class:`SecretsUnavailable` is raised and intake answers 503 with
``Retry-After`` (Meta retries), never a 500 and never a 401 for a genuine webhook.

Secrets live only in this process's memory; they are never logged.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
import time

from sqlalchemy.exc import SQLAlchemyError

from connectx.channels import repository as repo
from connectx.db.session import session_factory
from connectx.integrations.whatsapp import signature
from connectx.privacy.vault import Vault

log = logging.getLogger(__name__)

TTL_S = 60.0
MISS_RELOAD_S = 1.0
SECRET_COLUMN = "meta_apps.secret"  # noqa: S105 (an AAD column name)
VERIFY_TOKEN_COLUMN = "meta_apps.verify_token"  # noqa: S105 (an AAD column name)


UNAVAILABLE = (SQLAlchemyError, OSError)  # pool timeouts, outages (TimeoutError is an OSError)


class SecretsUnavailable(Exception):
    """The app secrets could not be read from the database just now; try again shortly."""


def subject_of(meta_app_row_id: int) -> str:
    return f"meta_app:{meta_app_row_id}"


class Undecided(enum.Enum):
    UNDECIDED = "undecided"


UNDECIDED = Undecided.UNDECIDED


class AppSecretCache:
    def __init__(self) -> None:
        self._entries: list[tuple[int, hmac.HMAC]] = []  # (app id, keyed state)
        self._loaded_at: float | None = None
        self._last_load_attempt = 0.0
        self._loading: asyncio.Task[None] | None = None

    def invalidate(self) -> None:
        self._loaded_at = None

    def _stale(self) -> bool:
        return self._loaded_at is None or time.monotonic() - self._loaded_at > TTL_S

    async def _load(self) -> None:
        self._last_load_attempt = time.monotonic()
        entries: list[tuple[int, hmac.HMAC]] = []
        async with session_factory()() as db:
            vault = Vault(db)
            for app in await repo.live_apps(db):
                assert app.secret_enc is not None
                try:
                    secret = await vault.decrypt_bytes(
                        None, subject_of(app.id), SECRET_COLUMN, app.secret_enc
                    )
                except UNAVAILABLE:  # the database, not the secret: the load failed
                    raise
                except Exception as exc:  # one unreadable secret must not stop intake
                    log.error("secret of meta app %s unreadable: %s", app.id, type(exc).__name__)
                    continue
                entries.append((app.id, signature.keyed(secret)))
        # Keep the most-recently-matched order for apps that are still there.
        order = {app_id: i for i, (app_id, _) in enumerate(self._entries)}
        entries.sort(key=lambda e: order.get(e[0], len(order)))
        self._entries = entries
        self._loaded_at = time.monotonic()

    def _match(self, body: bytes, digest: bytes) -> int | None:
        for i, (app_id, state) in enumerate(self._entries):
            if signature.matches_keyed(state, body, digest):
                if i:
                    self._entries.insert(0, self._entries.pop(i))
                return app_id
        return None

    async def verify(self, body: bytes, header: str | None) -> int | None:
        """The id of the app whose secret signed ``body``, or None."""
        held = self.verify_held(body, header)
        if held is not UNDECIDED:
            return held
        await self._reload()
        digest = signature.parse_header(header)
        return None if digest is None else self._match(body, digest)

    def verify_held(self, body: bytes, header: str | None) -> int | Undecided | None:
        """:meth:`verify` answered from the secrets held, without waiting: ``UNDECIDED`` when
        :meth:`verify` would load them first (none held yet, held too long, or no match while
        a reload is due); the caller then awaits :meth:`verify`."""
        digest = signature.parse_header(header)
        if digest is None:
            return None
        if self._stale():
            return UNDECIDED
        found = self._match(body, digest)
        if found is None and time.monotonic() - self._last_load_attempt >= MISS_RELOAD_S:
            return UNDECIDED
        return found

    async def _reload(self) -> None:
        """Load; if the database is unavailable, keep what we hold (raise when we hold none).
        Concurrent callers of one event loop share one load (under a pool timeout, every
        waiting request used to start its own and wait for a connection of its own)."""
        loading = self._loading
        if (
            loading is None
            or loading.done()
            or loading.get_loop() is not asyncio.get_running_loop()
        ):
            loading = self._loading = asyncio.get_running_loop().create_task(self._load())
            loading.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        try:
            await asyncio.shield(loading)
        except UNAVAILABLE as exc:
            log.warning("meta app secrets not reloaded: %s", type(exc).__name__)
            if self._loaded_at is None and not self._entries:
                raise SecretsUnavailable(type(exc).__name__) from exc


cache = AppSecretCache()


def invalidate() -> None:
    cache.invalidate()
