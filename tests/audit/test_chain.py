"""The audit log is hash-chained; ``connectx audit verify`` names the first bad entry. Tampering
is done as an attacker with database access would: raw SQL, append-only triggers lifted."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from connectx.audit import service as audit
from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from tests.privacy.support import cli, cli_here, raw_sql

GUARD = ("audit_events",)


async def _seed(n: int = 6) -> list[AuditEvent]:
    async with unit_of_work() as db:
        for i in range(1, n + 1):
            await audit.record(
                db,
                actor=f"user:{i}",
                action="account.updated",
                subject=f"user:{i}",
                ip="203.0.113.77",
                data={"fields": ["name"], "n": i},
            )
    async with unit_of_work() as db:
        return list((await db.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars())


async def _verify() -> tuple[int, str]:
    run = await cli_here("audit", "verify")
    return run.code, run.out + run.err


async def test_an_intact_log_verifies_ok_with_its_count() -> None:
    await _seed()
    run = await cli("audit", "verify")  # the real command, in its own process
    assert run.code == 0, run.err
    assert run.out.strip() == "OK: 6 audit entries verified"


async def test_a_changed_entry_is_named() -> None:
    events = await _seed()
    target = events[2]
    await raw_sql(
        f"UPDATE audit_events SET subject = 'user:99' WHERE id = {target.id}", unguarded=GUARD
    )
    code, out = await _verify()
    assert code == 1
    assert f"FAILED at entry {target.id}: its content was changed" in out


async def test_a_changed_entry_with_its_hash_recomputed_without_the_key_is_named() -> None:
    """An attacker who knows the algorithm but not the chain key cannot re-hash the change."""
    events = await _seed()
    target = events[3]
    target.action = "account.viewed"
    forged = hashlib.sha256((target.prev_hash + audit.canonical(target)).encode()).hexdigest()
    await raw_sql(
        f"UPDATE audit_events SET action = 'account.viewed', hash = '{forged}' "
        f"WHERE id = {target.id}",
        unguarded=GUARD,
    )
    code, out = await _verify()
    assert code == 1 and f"FAILED at entry {target.id}" in out


async def test_a_deleted_entry_is_named_by_the_entry_after_it() -> None:
    events = await _seed()
    await raw_sql(f"DELETE FROM audit_events WHERE id = {events[2].id}", unguarded=GUARD)
    code, out = await _verify()
    assert code == 1
    assert f"FAILED at entry {events[3].id}: does not follow the entry before it" in out


async def test_an_inserted_entry_is_named() -> None:
    """Make room after entry 2 and slip a forged entry in, chained to entry 2."""
    events = await _seed()
    top = max(e.id for e in events)
    after = events[1]
    forged = AuditEvent(
        workspace_id=None,
        actor="operator",
        action="account.viewed",
        subject="user:1",
        ip_truncated=None,
        reason=None,
        data={},
        created_at=after.created_at,
        prev_hash=after.hash,
    )
    fake_hash = hashlib.sha256((after.hash + audit.canonical(forged)).encode()).hexdigest()
    shift = [
        f"UPDATE audit_events SET id = id + 1000 WHERE id > {after.id}",
        f"UPDATE audit_events SET id = id - 999 WHERE id > {top}",
        "INSERT INTO audit_events (id, workspace_id, actor, action, subject, ip_truncated, "
        "reason, data, created_at, prev_hash, hash) VALUES "
        f"({after.id + 1}, NULL, 'operator', 'account.viewed', 'user:1', NULL, NULL, "
        f"'{json.dumps({})}', :at, '{after.hash}', '{fake_hash}')",
    ]
    await raw_sql(*shift, unguarded=GUARD, params={"at": after.created_at})
    code, out = await _verify()
    assert code == 1
    assert f"FAILED at entry {after.id + 1}: its content was changed or it was forged" in out


async def test_reordered_entries_are_named() -> None:
    events = await _seed()
    a, b = events[1].id, events[2].id
    await raw_sql(
        f"UPDATE audit_events SET id = -1 WHERE id = {a}",
        f"UPDATE audit_events SET id = {a} WHERE id = {b}",
        f"UPDATE audit_events SET id = {b} WHERE id = -1",
        unguarded=GUARD,
    )
    code, out = await _verify()
    assert code == 1
    assert f"FAILED at entry {a}: does not follow the entry before it" in out


async def test_entries_cut_off_the_end_after_a_verification_are_noticed() -> None:
    events = await _seed()
    assert (await _verify())[0] == 0  # saves the verified head in the key store
    await raw_sql(f"DELETE FROM audit_events WHERE id = {events[-1].id}", unguarded=GUARD)
    code, out = await _verify()
    assert code == 1
    assert (
        f"entry {events[-1].id}, the head at the last verification (6 entries), is missing" in out
    )


async def test_entries_hold_ids_never_personal_data() -> None:
    async with unit_of_work() as db:
        event = await audit.record(db, actor="user:1", action="x.y", ip="2001:db8:1234:5678::9")
        assert event.ip_truncated == "2001:db8:1234::"
        v4 = await audit.record(db, actor="user:1", action="x.y", ip="198.51.100.23")
        assert v4.ip_truncated == "198.51.100.0"
        for bad in (
            {"actor": "ada@example.com"},
            {"subject": "Ada Lovelace"},
            {"data": {"to": "ada@example.com"}},
            {"data": {"token": "k" * 40}},
            {"data": {"amount": 1.5}},
        ):
            args = {"actor": "user:1", "action": "x.y", **bad}
            with pytest.raises(ValueError):
                await audit.record(db, **args)  # type: ignore[arg-type]


async def test_a_typed_reason_is_kept_with_identifying_details_masked() -> None:
    async with unit_of_work() as db:
        event = await audit.record(
            db,
            actor="user:1",
            action="contact.merged",
            subject="contact:2",
            reason="Same customer, wrote from ada@example.com and +971 50 123 4567. " + "Why " * 60,
        )
    assert event.reason is not None and len(event.reason) == 200
    assert event.reason.startswith("Same customer, wrote from [email] and [phone]. Why Why")


async def test_the_admin_listing_is_scoped_to_the_workspace_newest_first() -> None:
    async with unit_of_work() as db:
        for ws in (1, 2, 1, 1):
            await audit.record(db, actor="user:1", action="member.added", workspace_id=ws)
        page = await audit.list_for_workspace(db, 1, limit=2)
        rest = await audit.list_for_workspace(db, 1, before_id=page[-1].id, limit=2)
    assert [e.workspace_id for e in page + list(rest)] == [1, 1, 1]
    assert [e.id for e in page + list(rest)] == sorted(
        (e.id for e in page + list(rest)), reverse=True
    )


async def test_entries_of_one_transaction_chain_across_an_undone_savepoint() -> None:
    """A transaction reads the chain's head once and chains its own entries after it; an entry
    undone with its savepoint is not the head the next one chains to."""
    async with unit_of_work() as db:
        await audit.record(db, actor="user:1", action="account.updated", data={"n": 1})
        with pytest.raises(RuntimeError):
            async with db.begin_nested():
                await audit.record(db, actor="user:1", action="account.updated", data={"n": 2})
                raise RuntimeError("undo")
        await audit.record(db, actor="user:1", action="account.updated", data={"n": 3})
    async with unit_of_work() as db:  # a new transaction reads the head again
        await audit.record(db, actor="user:1", action="account.updated", data={"n": 4})
    async with unit_of_work() as db:
        rows = list((await db.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars())
    assert [r.data["n"] for r in rows] == [1, 3, 4]
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    code, out = await _verify()
    assert code == 0, out


async def test_views_are_chained_in_order_and_written_together_at_commit() -> None:
    """Reads of personal data (``record_view``) are written when their transaction commits, in
    one INSERT for all of them, in the order things happened (an entry recorded in between
    writes the views before it first); a transaction that rolls back leaves none, and a read of
    the log in the same transaction sees them."""
    from sqlalchemy import event

    from connectx.audit import repository as audit_repo
    from connectx.config import get_settings
    from connectx.db.engine import get_engine

    inserts: list[str] = []

    def seen(_c: object, _cur: object, sql: str, *_: object) -> None:
        if sql.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
            inserts.append(sql)

    engine = get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        async with unit_of_work() as db:
            for n in (1, 2, 3):
                await audit.record_view(db, actor="user:1", action="messages.viewed", data={"n": n})
            assert inserts == []  # nothing written yet
        # Three views, one flush: one statement on PostgreSQL (SQLite's RETURNING gives no
        # row order, so SQLAlchemy sends a row per statement there, in-process and cheap).
        assert len(inserts) == (3 if get_settings().is_sqlite else 1)
        inserts.clear()
        async with unit_of_work() as db:
            await audit.record_view(db, actor="user:1", action="messages.viewed", data={"n": 4})
            await audit.record(db, actor="user:1", action="account.updated", data={"n": 5})
            await audit.record_view(db, actor="user:1", action="notes.viewed", data={"n": 6})
            listed = await audit_repo.for_workspace(db, 0, None, 10)  # sees its own views
            assert listed == []  # (no workspace's) but the pending view was written first
            assert [d["n"] for d in await audit_repo.data_of_action(db, "notes.viewed")] == [6]
        with pytest.raises(RuntimeError):
            async with unit_of_work() as db:
                await audit.record_view(db, actor="user:1", action="messages.viewed", data={"n": 7})
                raise RuntimeError("the page failed")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    async with unit_of_work() as db:
        rows = list((await db.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars())
    assert [r.data["n"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    code, out = await _verify()
    assert code == 0, out


async def test_auditing_transactions_that_update_the_same_row_do_not_deadlock() -> None:
    """The chain's lock is taken at commit, after every other lock of the transaction: one
    transaction audits and then updates a row another has updated and is about to audit. When
    the chain was locked at the first entry, PostgreSQL found a deadlock here (an erasure beside
    a worker, session 12's CI) and rolled one side back."""
    import asyncio

    from sqlalchemy import text

    from connectx.config import get_settings
    from connectx.kit import clock
    from connectx.models.workspace import Workspace

    if get_settings().is_sqlite:
        pytest.skip("row locks are PostgreSQL's (SQLite has one writer)")
    async with unit_of_work() as db:
        ws = Workspace(name="Row", created_at=clock.now(), updated_at=clock.now())
        db.add(ws)
        await db.flush()
        ws_id = ws.id
    touch = text("UPDATE workspaces SET name = :n WHERE id = :id")
    b_has_the_row = asyncio.Event()
    a_has_audited = asyncio.Event()

    async def a() -> None:  # audits, then updates the row B holds
        await b_has_the_row.wait()
        async with unit_of_work() as db:
            await audit.record(db, actor="system", action="account.updated", data={"n": 1})
            await db.execute(text("SELECT 1"))
            a_has_audited.set()
            await db.execute(touch, {"n": "A", "id": ws_id})

    async def b() -> None:  # updates the row, then audits once A has
        async with unit_of_work() as db:
            await db.execute(touch, {"n": "B", "id": ws_id})
            b_has_the_row.set()
            await a_has_audited.wait()
            await asyncio.sleep(0.2)  # A is waiting for the row now
            await audit.record(db, actor="system", action="account.updated", data={"n": 2})

    await asyncio.wait_for(asyncio.gather(a(), b()), timeout=30)
    async with unit_of_work() as db:
        name = await db.execute(text("SELECT name FROM workspaces WHERE id = :id"), {"id": ws_id})
        assert name.scalar_one() == "A"
        rows = list((await db.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars())
    assert [r.data["n"] for r in rows] == [2, 1]
    code, out = await _verify()
    assert code == 0, out
