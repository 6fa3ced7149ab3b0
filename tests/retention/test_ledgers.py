"""The append-only tables past their periods: the audit log is pruned oldest first and re-anchored
(``connectx audit verify`` still verifies the rest and still catches tampering), consent records
go only once their person is gone; legal holds keep both; the database refuses any other delete."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from connectx.audit import service as audit
from connectx.backups import erasure
from connectx.config import reset_settings
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.audit import AuditEvent
from connectx.models.consent import ConsentRecord
from connectx.models.retention import LedgerPrune
from connectx.privacy import consent
from tests.privacy.support import cli_here, raw_sql
from tests.retention.support import count, events, run_cli
from tests.support.factories import make_user

FLOOR = timedelta(days=6 * 365 + 1)


@pytest.fixture
def batches_of_four(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CONNECTX_RETENTION_BATCH_SIZE", "4")
    monkeypatch.setenv("CONNECTX_RETENTION_PAUSE_S", "0")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


async def _seed(subjects: list[str]) -> list[int]:
    async with unit_of_work() as db:
        events = [
            await audit.record(db, actor="operator", action="account.viewed", subject=subject)
            for subject in subjects
        ]
    return [event.id for event in events]  # written, so numbered, at commit


async def _verify() -> tuple[int, str]:
    run = await cli_here("audit", "verify")
    return run.code, run.out + run.err


async def _ids() -> list[int]:
    async with unit_of_work() as db:
        return list((await db.execute(select(AuditEvent.id).order_by(AuditEvent.id))).scalars())


async def _prune_audit() -> str:
    result = await run_cli("retention", "run", "--rule", "audit_events", "--no-progress")
    assert result.exit_code == 0, result.output
    return result.output


async def test_the_audit_floor_is_pruned_oldest_first_and_the_chain_still_verifies(
    batches_of_four: None,
) -> None:
    old = await _seed([f"user:{i}" for i in range(1, 7)])
    assert await _verify() == (0, "OK: 6 audit entries verified\n")  # head checkpointed
    clock.advance(FLOOR)
    new = await _seed(["user:7", "user:8"])

    dry = await run_cli("retention", "run", "--dry-run", "--rule", "audit_events")
    assert "audit_events       audit_floor        delete                6      0" in dry.output
    assert await _ids() == old + new

    output = await _prune_audit()
    assert "6 rows removed" in output
    left = await _ids()
    assert left[:2] == new and min(left) > max(old)  # the six old ones went, nothing else
    pruned = [e for e in await events("retention.deleted") if e.data["rule"] == "audit_events"]
    assert [e.data["count"] for e in pruned] == [4, 2]  # two audited batches
    assert [e.data["up_to_id"] for e in pruned] == [old[3], old[5]]
    async with unit_of_work() as db:
        permits = (await db.execute(select(LedgerPrune).order_by(LedgerPrune.id))).scalars().all()
    assert [(p.table_name, p.up_to_id, p.rows) for p in permits] == [
        ("audit_events", old[3], 4),
        ("audit_events", old[5], 2),
    ]

    code, out = await _verify()
    assert code == 0, out
    assert out.startswith(f"OK: {len(left)} audit entries verified")
    assert f"up to {old[5]}, were pruned by retention" in out
    assert "0 rows removed" in await _prune_audit()  # nothing more is old enough

    # The database still refuses any delete no permit covers, and any update.
    for statement in (
        f"DELETE FROM audit_events WHERE id = {left[0]}",
        f"UPDATE audit_events SET actor = 'user:666' WHERE id = {left[0]}",
        "DELETE FROM ledger_prunes",
    ):
        with pytest.raises(DBAPIError) as caught:
            async with unit_of_work() as db:
                await db.execute(text(statement))
        assert "append-only" in str(caught.value)


async def test_tampering_after_pruning_is_still_caught(batches_of_four: None) -> None:
    await _seed([f"user:{i}" for i in range(1, 7)])
    clock.advance(FLOOR)
    await _seed(["user:7", "user:8", "user:9"])
    await _prune_audit()
    assert (await _verify())[0] == 0
    left = await _ids()

    # Someone with database access cuts one more entry off the start, writing themselves a
    # permit in the data database: the anchor in the key store says where the chain starts.
    await raw_sql(
        "INSERT INTO ledger_prunes (table_name, subject, up_to_id, rows, last_hash, actor, "
        f"created_at) VALUES ('audit_events', NULL, {left[0]}, 1, NULL, 'operator', :at)",
        f"DELETE FROM audit_events WHERE id = {left[0]}",
        params={"at": clock.now()},
    )
    code, out = await _verify()
    assert code == 1
    assert f"FAILED at entry {left[1]}: does not follow the entry before it" in out


async def test_a_changed_entry_after_pruning_is_named(batches_of_four: None) -> None:
    await _seed([f"user:{i}" for i in range(1, 6)])
    clock.advance(FLOOR)
    await _seed(["user:7", "user:8"])
    await _prune_audit()
    left = await _ids()
    await raw_sql(
        f"UPDATE audit_events SET subject = 'user:99' WHERE id = {left[1]}",
        unguarded=("audit_events",),
    )
    code, out = await _verify()
    assert code == 1 and f"FAILED at entry {left[1]}: its content was changed" in out


async def test_a_legal_hold_stops_audit_pruning_at_the_first_held_entry(
    batches_of_four: None,
) -> None:
    old = await _seed(["user:1", "user:2", "user:3", "user:1", "user:4"])
    placed = await run_cli(
        "retention", "hold", "place", "--subject", "user:3", "--reason", "dispute 12"
    )
    assert placed.exit_code == 0, placed.output
    clock.advance(FLOOR)

    output = await _prune_audit()
    line = next(ln for ln in output.splitlines() if ln.startswith("audit_events"))
    assert line.split()[3:5] == ["2", "4"]  # two pruned; four old ones kept behind the hold
    assert (await _ids())[:3] == old[2:]
    assert (await _verify())[0] == 0

    hold_id = placed.output.split()[2]
    assert (await run_cli("retention", "hold", "release", hold_id)).exit_code == 0
    await _prune_audit()
    remaining = await _ids()
    assert min(remaining) > old[-1]
    # The hold's own record went too (it was older than the floor); its release stays.
    assert await events("legal_hold.placed") == []
    assert len(await events("legal_hold.released")) == 1
    assert (await _verify())[0] == 0


async def test_consent_records_stay_while_the_person_exists_and_go_after_the_period() -> None:
    kept = await make_user(email="kept@example.com")
    gone = await make_user(email="gone@example.com")
    held = await make_user(email="held@example.com")
    async with unit_of_work() as db:
        for user in (kept, gone, held):
            for granted in (True, False):
                await consent.record(
                    db,
                    subject=f"user:{user.id}",
                    workspace_id=None,
                    purpose="marketing",
                    channel="email",
                    granted=granted,
                    source="account_settings",
                    wording="Send me product news",
                    notice_version="2025-08-02",
                    actor=f"user:{user.id}",
                )
    async with unit_of_work() as db:  # two accounts are erased (their rows deleted)
        for user in (gone, held):
            assert await erasure.delete_subject_rows(db, None, f"user:{user.id}") >= 1
    placed = await run_cli(
        "retention", "hold", "place", "--subject", f"user:{held.id}", "--reason", "claim 3"
    )
    assert placed.exit_code == 0

    had = await count(ConsentRecord, ConsentRecord.subject == f"user:{gone.id}")
    assert had >= 2 and had == await count(
        ConsentRecord, ConsentRecord.subject == f"user:{held.id}"
    )
    clock.advance(timedelta(days=5 * 365))
    run = await run_cli("retention", "run", "--rule", "consent_records", "--no-progress")
    assert "0 rows removed" in run.output  # five years: not yet

    clock.advance(timedelta(days=365 + 2))
    run = await run_cli("retention", "run", "--rule", "consent_records", "--no-progress")
    assert run.exit_code == 0, run.output
    line = next(ln for ln in run.output.splitlines() if ln.startswith("consent_records"))
    assert line.split()[3:5] == [str(had), str(had)]  # the erased person's; the held one's kept
    subjects = {
        s: await count(ConsentRecord, ConsentRecord.subject == s)
        for s in (f"user:{kept.id}", f"user:{gone.id}", f"user:{held.id}")
    }
    assert subjects == {f"user:{kept.id}": had, f"user:{gone.id}": 0, f"user:{held.id}": had}
    async with unit_of_work() as db:
        state = await consent.current_state(db, f"user:{kept.id}", "marketing", "email")
    assert state.granted is False and state.record_id is not None
    [event] = [e for e in await events("retention.deleted") if e.data["rule"] == "consent_records"]
    assert event.data == {
        "rule": "consent_records",
        "table": "consent_records",
        "class": "consent_proof",
        "count": had,
        "subjects": 1,
    }
    # The kept person's records are still refused to anyone else.
    with pytest.raises(DBAPIError) as caught:
        async with unit_of_work() as db:
            await db.execute(text(f"DELETE FROM consent_records WHERE subject = 'user:{kept.id}'"))
    assert "append-only" in str(caught.value)
    assert (await _verify())[0] == 0
