"""Backups through the real commands: a round trip loses nothing (rows and media), and revives no
erased subject, whether the key store survived or was restored from its own backup too."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

import connectx.models  # noqa: F401
from connectx.accounts import service as accounts
from connectx.backups import archive, erasure
from connectx.backups.service import _unseal
from connectx.config import get_settings
from connectx.db import events_file
from connectx.db.base import Base
from connectx.db.engine import dispose_engines
from connectx.db.session import unit_of_work
from connectx.intake import repository as intake_repo
from connectx.kit import clock
from connectx.kit.crypto import KeyDestroyed
from connectx.mail import service as mail
from connectx.models.account import User
from connectx.models.audit import AuditEvent
from connectx.models.mail import MailMessage
from connectx.models.webhook_event import WebhookEvent
from connectx.privacy.vault import Vault
from tests.retention.support import events, run_cli
from tests.support.factories import make_user

NAMES = {"a": "Amira Haddad", "b": "Bruno Erased", "c": "Chen Wei"}


@pytest.fixture
def media() -> Iterator[Path]:
    folder = get_settings().data_dir / "media"
    shutil.rmtree(folder, ignore_errors=True)  # files other tests of this worker left behind
    folder.mkdir(parents=True)
    (folder / "ws-1").mkdir(exist_ok=True)
    (folder / "ws-1" / "photo.bin").write_bytes(b"\x89sealed media bytes\x00" * 100)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def _people() -> dict[str, User]:
    people = {}
    for key, name in NAMES.items():
        people[key] = await make_user(email=f"{key}@example.com", name=name)
        async with unit_of_work() as db:
            await mail.send(
                db,
                to=f"{key}@example.com",
                subject="Welcome",
                body=f"Hello {name}",
                kind="welcome",
                subject_ref=f"user:{people[key].id}",
                user_id=people[key].id,
            )
    return people


async def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with unit_of_work() as db:
        for table in Base.metadata.sorted_tables:
            rows = (await db.execute(text(f"SELECT * FROM {table.name}"))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def _backup(tmp_path: Path) -> tuple[Path, Path]:
    result = await run_cli("backup", "create", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    [data] = sorted(tmp_path.glob("connectx-2*.cxbak"))
    [keys] = sorted((tmp_path / "keys").glob("connectx-keys-*.cxbak"))
    return data, keys


async def _restore(*args: str) -> str:
    result = await run_cli("backup", "restore", *args, "--yes")
    assert result.exit_code == 0, result.output
    await dispose_engines()  # this loop's pooled connections predate the restore
    return result.output


async def _erase(user: User) -> None:
    """What erasing an account does: destroy the key, delete the rows."""
    async with unit_of_work() as db:
        await Vault(db).destroy_subject(None, f"user:{user.id}", actor="operator")
        assert await erasure.delete_subject_rows(db, None, f"user:{user.id}") >= 2


async def _name(user_id: int) -> str | None:
    async with unit_of_work() as db:
        user = (await db.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
        return None if user is None else await accounts.name_of(db, user)


async def test_a_round_trip_brings_back_every_row_and_the_media(
    tmp_path: Path, media: Path
) -> None:
    await _people()
    before = await _snapshot()
    data, _keys = await _backup(tmp_path)
    assert data.read_bytes()[:6] == archive.MAGIC
    for secret in (b"Amira Haddad", b"a@example.com", b"sealed media bytes", b"SQLite format"):
        assert secret not in data.read_bytes()  # encrypted (and the names were already sealed)

    listed = await run_cli("backup", "list", "--dir", str(tmp_path))
    assert listed.exit_code == 0 and "data  sqlite" in listed.output.replace("postgresql", "sqlite")
    assert " +media" in listed.output and "keys " in listed.output

    # Life goes on: a new person, a file changes, then disaster strikes.
    await make_user(email="later@example.com", name="Laura Later")
    (media / "ws-1" / "photo.bin").write_bytes(b"overwritten")

    output = await _restore(str(data))
    assert "erasures re-applied: 0 subjects" in output
    after = await _snapshot()
    restored_audit = after.pop("audit_events")
    expected_audit = before.pop("audit_events")
    assert after == before  # every row as it was, nothing more
    [restored_event] = [r for r in restored_audit if r not in expected_audit]
    assert (media / "ws-1" / "photo.bin").read_bytes() == b"\x89sealed media bytes\x00" * 100
    async with unit_of_work() as db:
        found = await accounts.find_user_by_email(db, "a@example.com")
        assert found is not None and await accounts.name_of(db, found) == NAMES["a"]
        assert await accounts.find_user_by_email(db, "later@example.com") is None
    [event] = await events("backup.restored")
    assert event.data["erased_subjects"] == 0 and event.data["media_files"] == 1
    assert [e.action for e in await events("backup.created")] == []  # after the dump
    verified = await run_cli("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert restored_event is not None


async def test_an_erased_person_stays_erased_after_restoring_an_older_backup(
    tmp_path: Path,
) -> None:
    people = await _people()
    data, _keys = await _backup(tmp_path)
    await _erase(people["b"])

    # The old backup still holds Bruno's row, but nothing in it can be read any more.
    unpacked = tmp_path / "unpacked"
    if get_settings().is_sqlite:
        await asyncio.to_thread(_unseal, data, unpacked)
        copy = sqlite3.connect(unpacked / "database.sqlite")
        (name_enc,) = copy.execute(
            "SELECT name_enc FROM users WHERE id = ?", (people["b"].id,)
        ).fetchone()
        copy.close()
        with pytest.raises(KeyDestroyed):
            await Vault().decrypt(None, f"user:{people['b'].id}", "users.name", name_enc)

    output = await _restore(str(data))
    assert "erasures re-applied: 1 subjects" in output
    assert await _name(people["b"].id) is None  # his rows are gone again
    async with unit_of_work() as db:
        mails = (await db.execute(select(MailMessage.subject))).scalars().all()
        assert sorted(mails) == sorted(f"user:{people[k].id}" for k in ("a", "c"))
        assert await accounts.find_user_by_email(db, "b@example.com") is None
    assert await _name(people["a"].id) == NAMES["a"]
    assert await _name(people["c"].id) == NAMES["c"]
    [event] = await events("backup.restored")
    assert event.data["erased_subjects"] == 1 and event.data["key_store"] is False
    assert (await run_cli("audit", "verify")).exit_code == 0


async def test_restoring_the_key_store_too_never_brings_an_erased_key_back(
    tmp_path: Path,
) -> None:
    people = await _people()
    data, keys = await _backup(tmp_path)
    await _erase(people["b"])
    key = await Vault().key_info(None, f"user:{people['b'].id}")
    assert key is not None and key.destroyed

    output = await _restore(str(data), "--keys", str(keys))
    assert "key store restored" in output
    key = await Vault().key_info(None, f"user:{people['b'].id}")
    assert key is not None and key.destroyed  # the old key-store backup had it; not any more
    assert await _name(people["b"].id) is None
    assert await _name(people["a"].id) == NAMES["a"]
    [event] = await events("backup.restored")
    assert event.data["key_store"] is True and event.data["keys_destroyed_again"] >= 1

    # A key-store backup taken after the erasure holds no material for him at all.
    _, later_keys = await _backup(tmp_path / "later")
    if get_settings().is_sqlite:
        await asyncio.to_thread(_unseal, later_keys, tmp_path / "later-keys")
        store = sqlite3.connect(tmp_path / "later-keys" / "keystore.sqlite")
        rows = store.execute(
            "SELECT wrapped FROM crypto_keys WHERE subject = ?", (f"user:{people['b'].id}",)
        ).fetchall()
        store.close()
        assert rows and all(wrapped is None for (wrapped,) in rows)


async def test_bad_files_and_missing_keys_are_refused_cleanly(tmp_path: Path) -> None:
    await _people()
    data, keys = await _backup(tmp_path)
    tampered = tmp_path / "tampered.cxbak"
    raw = bytearray(data.read_bytes())
    raw[-40] ^= 0x01
    tampered.write_bytes(bytes(raw))
    cut = tmp_path / "cut.cxbak"
    cut.write_bytes(data.read_bytes()[:-100])
    not_backup = tmp_path / "notes.txt"
    not_backup.write_text("hello")
    before = await _snapshot()
    for path, words in (
        (tampered, "altered"),
        (cut, "cut short"),
        (not_backup, "not a ConnectX backup"),
        (keys, "not a data backup"),
    ):
        result = await run_cli("backup", "restore", str(path), "--yes")
        assert result.exit_code == 1 and words in result.output, result.output
        assert "Traceback" not in result.output
    assert await _snapshot() == before  # nothing was touched
    async with unit_of_work() as db:
        assert (await db.execute(select(AuditEvent).limit(1))).first() is not None


async def test_an_existing_folder_keeps_its_mode_a_new_one_is_private(tmp_path: Path) -> None:
    """``backup create --dir`` made any folder it was given 0700: given ``/`` (or /tmp, or a
    shared /var/backups), every service not running as root lost access below it."""
    import stat

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    result = await run_cli("backup", "create", "--dir", str(shared))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "keys").stat().st_mode) == 0o700  # made here: private
    files = [*shared.glob("*.cxbak"), *(shared / "keys").glob("*.cxbak")]
    assert len(files) == 2 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


def _raw_event(size: int) -> intake_repo.NewEvent:
    return (clock.micros(), None, b"sealed raw body", size)


async def test_raw_webhook_events_are_backed_up_and_restored_from_their_own_file(
    tmp_path: Path,
) -> None:
    """SQLite: raw webhook events live in a file of their own (db/events_file.py); a data
    backup holds it, and a restore brings it back with the data file."""
    if not events_file.split():
        pytest.skip("PostgreSQL keeps raw events in the one database (pg_dump has them)")
    await intake_repo.commit_new([_raw_event(1)])
    data, _keys = await _backup(tmp_path)
    await intake_repo.commit_new([_raw_event(2)])  # received after the backup

    unpacked = tmp_path / "unpacked"
    await asyncio.to_thread(_unseal, data, unpacked)
    copy = sqlite3.connect(unpacked / "events.sqlite")
    assert copy.execute("SELECT body_size FROM webhook_events").fetchall() == [(1,)]
    copy.close()
    data_copy = sqlite3.connect(unpacked / "database.sqlite")
    assert not data_copy.execute(
        "SELECT name FROM sqlite_master WHERE name = 'webhook_events'"
    ).fetchall()  # (not in the data file)
    data_copy.close()

    await _restore(str(data))
    async with unit_of_work() as db:
        sizes = (await db.execute(select(WebhookEvent.body_size))).scalars().all()
    assert sizes == [1]


async def test_a_restore_waits_out_a_transaction_in_its_way_or_says_the_database_is_in_use(
    tmp_path: Path,
    media: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL: replacing the schema needs every table's exclusive lock. A transaction of a
    process still running holds one: the drop waits a bounded time and tries again, and once the
    transaction ends it goes through; if it never ends, the restore says the database is in use
    and leaves it as it was."""
    from connectx.backups import service
    from connectx.db.engine import get_engine

    if get_settings().is_sqlite:
        pytest.skip("SQLite's restore copies pages through the backup API: no schema to drop")
    monkeypatch.setattr(service, "LOCK_WAIT_S", 0.3)
    monkeypatch.setattr(service, "DROP_ATTEMPTS", 3)
    await _people()
    data, _keys = await _backup(tmp_path)
    await make_user(email="later@example.com", name="Laura Later")

    async def users() -> int:
        async with unit_of_work() as db:
            return len((await db.execute(select(User.id))).all())

    async def hold_users(until: asyncio.Event) -> None:
        async with get_engine().connect() as conn:  # a reader in the middle of its transaction
            await conn.execute(text("SELECT count(*) FROM users"))
            await until.wait()
            await conn.rollback()

    def attempts_failed() -> int:
        return sum("replacing schema" in r.getMessage() for r in caplog.records)

    never = asyncio.Event()
    holder = asyncio.create_task(hold_users(never))
    await asyncio.sleep(0.1)
    refused = await run_cli("backup", "restore", str(data), "--yes")
    assert refused.exit_code == 1
    assert "the database is in use" in refused.output
    assert "stop `connectx serve`" in refused.output
    assert attempts_failed() == 3
    never.set()
    await holder
    await dispose_engines()
    assert await users() == len(NAMES) + 1  # nothing was replaced

    caplog.clear()
    first_failed = asyncio.Event()
    holder = asyncio.create_task(hold_users(first_failed))
    await asyncio.sleep(0.1)
    restoring = asyncio.create_task(_restore(str(data)))
    for _ in range(600):
        if attempts_failed() or restoring.done():
            break
        await asyncio.sleep(0.05)
    assert attempts_failed() == 1  # the first attempt waited for the reader and gave up
    first_failed.set()  # the reader's transaction ends; the next attempt goes through
    await holder
    assert "restored" in await restoring
    assert await users() == len(NAMES)
