"""Create, list, rotate and restore encrypted backups (docs/backups.md).

A backup is two files:

* ``connectx-<time>.cxbak``: the data database, taken online and consistent (SQLite's online
  backup API; ``pg_dump`` of one snapshot on PostgreSQL, without the key store's schema), and the
  media store (``<data dir>/media``) when there is one;
* ``keys/connectx-keys-<time>.cxbak``: the key store (wrapped keys only), kept apart so that data
  backups never hold key material: destroying an erased subject's key makes their data in every
  data backup unreadable for good.

Both are sealed (:mod:`connectx.backups.archive`) under a key derived from the master key.
Restoring a data backup leaves the live key store alone (erased keys stay destroyed), then
re-applies the erasure log (:mod:`connectx.backups.erasure`) to the rows it brought back. With a
key-store backup too (the key store was lost), every key the audit log records as destroyed is
destroyed again first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from connectx import __version__
from connectx.audit import service as audit
from connectx.backups import archive, erasure
from connectx.backups import repository as repo
from connectx.backups.archive import BackupError
from connectx.config import Settings, get_settings
from connectx.db import errors, events_file
from connectx.db.engine import dispose_engines, get_engine
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.privacy import keystore, vault

log = logging.getLogger(__name__)

DATA_PREFIX = "connectx-"
KEYS_PREFIX = "connectx-keys-"
SUFFIX = ".cxbak"
_one_at_a_time = threading.Lock()


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    kind: str  # "data" | "keys"
    stamp: str
    database: str
    size: int
    media: bool
    master_id: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class RestoreReport:
    backup: BackupInfo
    keys_restored: bool
    keys_destroyed_again: int
    erased_subjects: int
    erased_rows: int
    media_files: int


# -- where things are ---------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up")
    return Path(database)


def _pg_target(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment carrying it."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _media_dir(settings: Settings) -> Path:
    return settings.data_dir / "media"


def _keys_dir(out_dir: Path) -> Path:
    return out_dir / "keys"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _free_name(folder: Path, prefix: str, stamp: str) -> Path:
    path = folder / f"{prefix}{stamp}{SUFFIX}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{prefix}{stamp}-{n}{SUFFIX}"
    return path


# -- taking copies (blocking; run in a thread) ------------------------------------------------


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database through its online-backup API."""
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    src = sqlite3.connect(str(source))
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()


def _sqlite_restore(source: Path, target: Path) -> None:
    """Copy a backup into the live database file, page by page, under SQLite's own locking."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(str(source))
    dst = sqlite3.connect(str(target), timeout=30)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


EVENTS_MEMBER = "events.sqlite"  # SQLite: the raw webhook events' file in a data backup


def _restore_events_file(source: Path) -> None:
    """SQLite: bring back the raw webhook events' file with the data file. A backup taken
    before they had a file of their own holds them in its data file (migration 0007r moves
    them again): the live events file is removed, so nothing of it mixes with the backup's."""
    target = events_file.path()
    if target is None:
        return
    events_file.forget_schema()
    if source.exists():
        _sqlite_restore(source, Path(target))
        return
    for suffix in ("", "-wal", "-shm"):
        Path(target + suffix).unlink(missing_ok=True)


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    tool = shutil.which(command[0])
    if tool is None:
        raise BackupError(f"{command[0]} is not installed (needed to {what})")
    done = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
        [tool, *command[1:]], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        first = (done.stderr or "").strip().splitlines()[:1]
        raise BackupError(f"{command[0]} could not {what}: {first[0] if first else 'failed'}")


def _pg_dump(url: str, target: Path, *, keystore_only: bool) -> None:
    conninfo, env = _pg_target(url)
    scope = (
        [f"--schema={keystore.SCHEMA}"]
        if keystore_only
        else [f"--exclude-schema={keystore.SCHEMA}"]
    )
    _run(
        [
            "pg_dump",
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            *scope,
            f"--file={target}",
            f"--dbname={conninfo}",
        ],
        env,
        "dump the database",
    )


def _pg_restore(url: str, source: Path) -> None:
    conninfo, env = _pg_target(url)
    _run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={conninfo}",
            str(source),
        ],
        env,
        "restore the database",
    )


def _seal(target: Path, header: archive.Header, key: bytes, members: list[tuple[str, Path]]) -> int:
    """Write ``members`` (archive name, file or folder) as a sealed gzip'd tar; returns size."""
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as out:
            archive.write_header(out, header)
            writer = archive.EncryptingWriter(out, key, header.raw)
            with tarfile.open(fileobj=writer, mode="w|gz") as tar:
                for name, path in members:
                    if path.exists():
                        tar.add(str(path), arcname=name, recursive=True)
            writer.finish()
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, 0o600)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size


def _unseal(source: Path, into: Path) -> archive.Header:
    """Verify and extract a backup (every chunk is checked before anything is used)."""
    with source.open("rb") as src:
        header = archive.read_header(src)
        key = archive.derive_key(_master(header.master_id), header.salt)
        reader = archive.DecryptingReader(src, key, header.raw)
        try:
            with tarfile.open(fileobj=reader, mode="r|gz") as tar:
                tar.extractall(str(into), filter="data")
        except tarfile.TarError as exc:
            raise BackupError("the backup's contents are damaged") from exc
    return header


def _master(master_id: str) -> bytes:
    try:
        return vault.master(master_id)
    except vault.CryptoError as exc:
        raise BackupError(
            f"this backup needs master key {master_id}, which is not configured "
            "(CONNECTX_MASTER_KEY or the key file)"
        ) from exc


def _info(path: Path, header: archive.Header) -> BackupInfo:
    f = header.fields
    return BackupInfo(
        path=path,
        kind=str(f.get("kind")),
        stamp=str(f.get("stamp")),
        database=str(f.get("database")),
        size=path.stat().st_size,
        media=bool(f.get("media")),
        master_id=header.master_id,
    )


# -- create --------------------------------------------------------------------------------------


async def create(
    *, out_dir: Path | None = None, keys_dir: Path | None = None, actor: str = "operator"
) -> tuple[BackupInfo, BackupInfo]:
    """Take a data backup and a key-store backup; returns both."""
    settings = get_settings()
    out_dir = out_dir or settings.effective_backup_dir
    keys_dir = keys_dir or _keys_dir(out_dir)
    for folder in (out_dir, keys_dir):
        # A folder made here is private (0700); one that exists keeps its mode: an operator's
        # --dir /tmp or /var/backups (or /: a test once gave it) is shared, and taking every
        # other user's access to it away broke whatever lived below it. The files are 0600.
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
    if not _one_at_a_time.acquire(blocking=False):
        raise BackupError("another backup is being taken by this process")
    try:
        started = clock.now()
        stamp = _stamp(started)
        async with unit_of_work() as db:
            revisions = await repo.revisions(db)
        await keystore.ensure_schema()
        master_id, master = vault.masters()[0]
        kind = "sqlite" if settings.is_sqlite else "postgresql"
        media = _media_dir(settings)
        common = {
            "stamp": stamp,
            "started_at": started.isoformat(),
            "database": kind,
            "revisions": revisions,
            "connectx": __version__,
        }
        with tempfile.TemporaryDirectory(prefix=".cx-backup-", dir=out_dir) as tmp:
            work = Path(tmp)
            db_file = work / ("database.sqlite" if kind == "sqlite" else "database.pgdump")
            ks_file = work / ("keystore.sqlite" if kind == "sqlite" else "keystore.pgdump")
            members = [(db_file.name, db_file)]
            if kind == "sqlite":
                events = events_file.path()
                if events is not None and await asyncio.to_thread(os.path.exists, events):
                    # The raw webhook events' file (db/events_file.py) first: an event marked
                    # done there has its effects in the data file copied after it (one still
                    # pending whose effects are copied is processed again, which is harmless).
                    events_copy = work / EVENTS_MEMBER
                    await asyncio.to_thread(_sqlite_copy, Path(events), events_copy)
                    members.append((EVENTS_MEMBER, events_copy))
                await asyncio.to_thread(
                    _sqlite_copy, _sqlite_path(settings.effective_database_url), db_file
                )
            else:
                await asyncio.to_thread(
                    _pg_dump, settings.effective_database_url, db_file, keystore_only=False
                )
            if keystore.url().startswith("sqlite"):
                await asyncio.to_thread(_sqlite_copy, _sqlite_path(keystore.url()), ks_file)
            else:
                await asyncio.to_thread(_pg_dump, keystore.url(), ks_file, keystore_only=True)

            header = archive.new_header(
                {**common, "kind": "data", "media": media.is_dir()}, master_id
            )
            data_path = _free_name(out_dir, DATA_PREFIX, stamp)
            await asyncio.to_thread(
                _seal,
                data_path,
                header,
                archive.derive_key(master, header.salt),
                [*members, ("media", media)],
            )
            key_header = archive.new_header(
                {**common, "kind": "keys", "media": False, "keystore": keystore.describe()},
                master_id,
            )
            keys_path = _free_name(keys_dir, KEYS_PREFIX, stamp)
            await asyncio.to_thread(
                _seal,
                keys_path,
                key_header,
                archive.derive_key(master, key_header.salt),
                [(ks_file.name, ks_file)],
            )
    finally:
        _one_at_a_time.release()
    data_info, keys_info = _info(data_path, header), _info(keys_path, key_header)
    async with unit_of_work() as db:
        await audit.record(
            db,
            actor=actor,
            action="backup.created",
            data={
                "backup": stamp,
                "database": kind,
                "media": data_info.media,
                "bytes": data_info.size,
                "key_store_bytes": keys_info.size,
            },
        )
    log.info("backup %s taken (%s bytes, key store apart)", stamp, data_info.size)
    return data_info, keys_info


# -- list and rotate ----------------------------------------------------------------------------


def list_backups(folder: Path | None = None) -> list[BackupInfo]:
    """Data and key-store backups in ``folder`` (and its ``keys`` folder), newest first. Files
    that are not readable backups are skipped."""
    folder = folder or get_settings().effective_backup_dir
    found: list[BackupInfo] = []
    for where in (folder, _keys_dir(folder)):
        if not where.is_dir():
            continue
        for path in where.glob(f"*{SUFFIX}"):
            try:
                found.append(_info(path, archive.peek(path)))
            except (BackupError, OSError):
                continue
    return sorted(found, key=lambda b: (b.stamp, b.name), reverse=True)


async def rotate(folder: Path | None = None, keep: int | None = None) -> list[Path]:
    """Keep the newest ``keep`` data backups and key-store backups; delete the rest."""
    settings = get_settings()
    keep = max(1, keep if keep is not None else settings.backup_keep)
    removed: list[Path] = []
    backups = list_backups(folder)
    for kind in ("data", "keys"):
        for old in [b for b in backups if b.kind == kind][keep:]:
            old.path.unlink(missing_ok=True)
            removed.append(old.path)
    if removed:
        async with unit_of_work() as db:
            await audit.record(
                db,
                actor="system",
                action="backup.rotated",
                data={"deleted": len(removed), "keep": keep},
            )
    return removed


# -- restore ------------------------------------------------------------------------------------


# Dropping a schema takes every table's exclusive lock, one after the other: a transaction of
# a process still running (a restore needs them stopped) can make it wait, or deadlock with it
# (PostgreSQL then cancels one of the two, often the drop). Each attempt waits at most
# LOCK_WAIT_S for a lock; a cancelled attempt changed nothing and is tried again.
LOCK_WAIT_S = 5.0
DROP_ATTEMPTS = 6
_IN_USE = {"40P01": "a deadlock", "55P03": "a lock wait that timed out"}


async def _replace_postgres_schema(url: str, schema: str) -> None:
    engine = get_engine(url)
    for attempt in range(1, DROP_ATTEMPTS + 1):
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT_S * 1000)}ms'"))
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                if schema == "public":
                    await conn.execute(text("CREATE SCHEMA public"))
            return
        except DBAPIError as exc:
            cause = _IN_USE.get(errors.sqlstate(exc) or "")
            if cause is None:
                raise
            log.warning("restore: replacing schema %s met %s (attempt %d)", schema, cause, attempt)
            if attempt == DROP_ATTEMPTS:
                raise BackupError(
                    f"the database is in use ({cause} on every one of {DROP_ATTEMPTS} attempts "
                    f"to replace the {schema} schema, which is unchanged): stop `connectx serve` "
                    "and every `connectx worker`, then restore again"
                ) from None
            await asyncio.sleep(0.2 * attempt)


def _replace_media(source: Path, target: Path) -> int:
    if target.exists():
        shutil.rmtree(target)
    if not source.is_dir():
        return 0
    shutil.copytree(source, target)
    return sum(1 for p in target.rglob("*") if p.is_file())


async def restore(
    path: Path, *, keys_path: Path | None = None, actor: str = "operator"
) -> RestoreReport:
    """Bring a data backup back (and the key store, when ``keys_path`` is given), then make
    sure nobody erased since comes back. Stop every other ConnectX process first."""
    settings = get_settings()
    header = archive.peek(path)
    if header.fields.get("kind") != "data":
        raise BackupError(f"{path.name} is not a data backup (restore the data backup file)")
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    if header.fields.get("database") != kind:
        raise BackupError(
            f"{path.name} holds a {header.fields.get('database')} database; this installation "
            f"uses {kind}"
        )
    if keys_path is not None and archive.peek(keys_path).fields.get("kind") != "keys":
        raise BackupError(f"{keys_path.name} is not a key-store backup")
    started = datetime.fromisoformat(str(header.fields["started_at"]))
    # The live key store knows every erasure up to now: remember it before an older key-store
    # backup replaces it, and destroy those keys again afterwards.
    live_destroyed = await _live_destroyed_keys() if keys_path is not None else []
    with tempfile.TemporaryDirectory(prefix=".cx-restore-") as tmp:
        work = Path(tmp)
        # Everything is decrypted and checked before anything live is touched.
        await asyncio.to_thread(_unseal, path, work / "data")
        if keys_path is not None:
            await asyncio.to_thread(_unseal, keys_path, work / "keys")
        await dispose_engines()
        if kind == "sqlite":
            await asyncio.to_thread(_restore_events_file, work / "data" / EVENTS_MEMBER)
            await asyncio.to_thread(
                _sqlite_restore,
                work / "data" / "database.sqlite",
                _sqlite_path(settings.effective_database_url),
            )
        else:
            await _replace_postgres_schema(settings.effective_database_url, "public")
            await dispose_engines()
            await asyncio.to_thread(
                _pg_restore, settings.effective_database_url, work / "data" / "database.pgdump"
            )
        if keys_path is not None:
            if keystore.url().startswith("sqlite"):
                await asyncio.to_thread(
                    _sqlite_restore,
                    work / "keys" / "keystore.sqlite",
                    _sqlite_path(keystore.url()),
                )
            else:
                await _replace_postgres_schema(keystore.url(), keystore.SCHEMA)
                await dispose_engines()
                await asyncio.to_thread(
                    _pg_restore, keystore.url(), work / "keys" / "keystore.pgdump"
                )
        media_files = await asyncio.to_thread(
            _replace_media, work / "data" / "media", _media_dir(settings)
        )
    await dispose_engines()
    vault.reset_caches()
    await _checkpoint_audit_chain()

    destroyed_again = 0
    async with unit_of_work() as db:
        if keys_path is not None:
            from connectx.privacy import keys_repository

            if live_destroyed:
                async with keystore.session() as ks:
                    destroyed_again += len(await keys_repository.destroy_ids(ks, live_destroyed))
            destroyed_again += await vault.reapply_erasures(db)
            vault.reset_caches()
        subjects, rows = await erasure.reapply(db, started)
        await audit.record(
            db,
            actor=actor,
            action="backup.restored",
            data={
                "backup": str(header.fields.get("stamp")),
                "key_store": keys_path is not None,
                "keys_destroyed_again": destroyed_again,
                "erased_subjects": subjects,
                "erased_rows": rows,
                "media_files": media_files,
            },
        )
    return RestoreReport(
        backup=_info(path, header),
        keys_restored=keys_path is not None,
        keys_destroyed_again=destroyed_again,
        erased_subjects=subjects,
        erased_rows=rows,
        media_files=media_files,
    )


async def _live_destroyed_keys() -> list[int]:
    try:
        async with keystore.session() as ks:
            return await repo.destroyed_subject_keys(ks)
    except Exception as exc:  # the key store is gone or unreadable: nothing to remember
        log.warning("the live key store could not be read (%s)", type(exc).__name__)
        return []


async def _checkpoint_audit_chain() -> None:
    """A restore rewinds the audit log to the backup's time, so the last checkpoint may name an
    entry that is gone: when the restored chain itself verifies, its head becomes the new
    checkpoint (the ``backup.restored`` entry that follows records why)."""
    from connectx.audit import checkpoint_repository as checkpoints
    from connectx.audit import repository as audit_repo

    async with unit_of_work() as db:
        report = await audit.verify(db)
        if report.first_bad_id is not None:
            log.warning("the restored audit log does not verify: %s", report.describe())
            return
        head = await audit_repo.head(db)
        if head is None:
            return
        async with keystore.session() as ks:
            await checkpoints.add(ks, head.id, head.hash, report.checked)


def describe(info: BackupInfo) -> dict[str, Any]:
    return {
        "file": str(info.path),
        "kind": info.kind,
        "taken": info.stamp,
        "database": info.database,
        "bytes": info.size,
        "media": info.media,
        "master_key": info.master_id,
    }
