"""Settings from the environment (prefix ``CONNECTX_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A database URL as PostgreSQL's and SQLite's own tools write it names no driver; ours are async.
ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def async_url(url: str) -> str:
    """``postgresql://…`` means asyncpg and ``sqlite:///…`` aiosqlite (the drivers installed)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ASYNC_DRIVERS:
        return f"{ASYNC_DRIVERS[scheme]}://{rest}"
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONNECTX_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # The address people use to reach the site (links in mail). Defaults to http://host:port.
    public_url: str | None = None

    broker_url: str | None = None
    redis_url: str | None = None
    # Key prefix of what ConnectX keeps in Redis for real-time events (docs/realtime.md).
    redis_prefix: str = "cx"
    smtp_url: str | None = None
    mail_from: str = "ConnectX <no-reply@connectx.local>"

    master_key: str | None = None
    master_key_file: Path | None = None
    # The key store (docs/privacy-encryption.md): wrapped keys live apart from the data so that
    # data backups never hold key material. Default: <data dir>/keystore.db next to an embedded
    # SQLite database; the "keystore" schema of the same database on PostgreSQL.
    keystore_url: str | None = None
    # How long a process trusts an unwrapped key before re-reading the key store (an erasure
    # done by another process takes effect here within this time), and how many it keeps.
    key_cache_ttl_s: float = 60.0
    key_cache_size: int = 100_000

    # Meta's Graph API as the platform calls it (the simulator, `connectx simulator`, stands in
    # for it locally: point the base URL at http://127.0.0.1:8025).
    graph_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v25.0"
    # The outbox (docs/outbound.md): how long a sender owns the rows it claimed, and how long
    # after that lease ends a row in doubt waits for Meta's status callback before it is sent
    # again (a callback carrying its biz_opaque_callback_data proves Meta already has it).
    outbox_lease_s: float = 60.0
    outbox_settle_s: float = 120.0

    log_level: str = "INFO"
    log_json: bool = True
    # Extra modules whose import registers background tasks (used by tests and plugins).
    task_modules: list[str] = Field(default_factory=list)
    # Run background work inside `connectx serve` (embedded). Off for distributed web nodes.
    embedded_worker: bool = True
    # ... whose idle job threads and consumers look for a stop this often (ms): stopping the
    # server waits up to about two of these. Each look takes the GIL from the loop serving
    # webhooks (docs/jobs.md), so not more often than needed.
    embedded_poll_ms: int = Field(default=500, ge=5, le=1000)
    # ... with stored webhook events processed in a child process of `connectx serve` (the
    # second core; docs/whatsapp-inbound.md "Where"). Off: in the web server's own event loop.
    processing_process: bool = True
    # Its scheduling priority below the web server's (0, the default: the same). Not applied
    # on SQLite, where the child holds the write lock intake waits for (priority inversion).
    # Was 10 on PostgreSQL until session 7: 0 was better on every figure in three quiet or
    # near-quiet same-run pairs (docs/whatsapp-inbound.md "Where").
    processing_nice: int = 0
    # After a wake-up, processors wait this long (ms) for the events on their way before they
    # claim, so that at moderate rates several share a transaction (its fixed part, ~5 ms of
    # CPU, was paid by every event at 100 webhooks/s; docs/whatsapp-inbound.md "Gathering").
    processing_gather_ms: int = Field(default=20, ge=0, le=1000)
    reconcile_interval_s: float = 5.0
    job_lease_s: float = 60.0
    # Background work (docs/jobs.md): the broker queue carrying wake-ups, threads per worker, and
    # the bounded exponential backoff between attempts of a failing job.
    broker_queue: str = "connectx.jobs"
    worker_concurrency: int = 4
    job_backoff_base_s: float = 10.0
    job_backoff_max_s: float = 1800.0

    session_idle_minutes: int = 60 * 12
    session_absolute_hours: int = 24 * 14
    login_max_failures_account: int = 5
    login_max_failures_ip: int = 50
    login_window_minutes: int = 15
    login_lockout_minutes: int = 15

    # Retention, backups, policies, cookies and security signals (docs/retention.md,
    # docs/backups.md, docs/policies.md, docs/cookies.md, docs/security-signals.md).
    retention_days: dict[str, int] = Field(default_factory=dict)  # {"security_log": 60}
    retention_batch_size: int = 500
    retention_pause_s: float = 0.02  # between batches, so live traffic gets the database
    retention_hour_utc: int = 3
    # Daily retention (and, embedded, backups) scheduled by the worker runtime.
    periodic_tasks: bool = True
    backup_dir: Path | None = None  # default <data dir>/backups
    backup_keep: int = 7
    backup_schedule: bool = True  # embedded mode only
    backup_hour_utc: int = 2
    policy_banner_days: int = 30
    # A header a trusted proxy sets to the client's country (e.g. CF-IPCountry); unset: unknown.
    country_header: str | None = None
    security_velocity_max: int = 10  # successful sign-ins of one account within the window
    security_failed_max: int = 10  # failed sign-ins against one account within the window
    security_window_minutes: int = 60
    access_log: bool = True

    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1

    @field_validator("database_url", "keystore_url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        return async_url(url) if url else url

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return sqlite_url(self.data_dir / "connectx.db")

    @property
    def effective_keystore_url(self) -> str:
        if self.keystore_url:
            return self.keystore_url
        if self.is_sqlite:
            return sqlite_url(self.data_dir / "keystore.db")
        return self.effective_database_url

    @property
    def effective_backup_dir(self) -> Path:
        return self.backup_dir or (self.data_dir / "backups")

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        # Asked on hot paths (every processing transaction): no path resolution here.
        return not self.database_url or self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.effective_public_url.startswith("https://")


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite file. Every unit of work asks for its engine by URL, and resolving
    the path walks the file system (~20 µs): resolved once per path (and working directory,
    for a relative one)."""
    return _resolved_url(path, None if path.is_absolute() else os.getcwd())


@lru_cache(maxsize=64)
def _resolved_url(path: Path, cwd: str | None) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment)."""
    get_settings.cache_clear()
