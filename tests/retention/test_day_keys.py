"""Raw-webhook day keys: the retention run destroys the key of a day past the raw-body retention
(so that day's raw bodies in an earlier backup no longer open), audited with counts; a day with
a raw body still live keeps its key; a legal hold keeps them all until released."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update

from connectx.backups.service import _unseal
from connectx.db.engine import get_engine
from connectx.db.session import unit_of_work
from connectx.intake.batcher import day_subject
from connectx.intake.raw_body import open_body
from connectx.kit import clock
from connectx.kit.crypto import KeyDestroyed
from connectx.models.webhook_event import WebhookEvent
from connectx.privacy.rights import Right, Subject, execute, raw_webhooks
from connectx.privacy.vault import Vault
from tests.inbox.support import customer_message, customers_write, workspace_with_number
from tests.privacy.support import backup_bytes, retire_webhook_keys
from tests.retention.support import events, run_cli
from tests.support.factories import signed_in
from tests.whatsapp.support import delivered, drain
from tests.workspaces.helpers import Caller, owner_of


async def _raw_bodies() -> list[tuple[int, bytes, datetime]]:
    async with unit_of_work() as db:
        stmt = select(WebhookEvent.id, WebhookEvent.body_enc, WebhookEvent.received_at).where(
            WebhookEvent.body_enc.is_not(None)
        )
        stmt = stmt.order_by(WebhookEvent.id)
        return [(i, blob, at) for i, blob, at in (await db.execute(stmt)).all()]


async def _writes(owner: Caller, name: str, wa_id: str) -> None:
    """A customer writes (a signed webhook, processed); the owner's session may have idled out."""
    await delivered(owner.client, customer_message(name, wa_id))
    await drain()


async def _opens(blob: bytes, at: datetime) -> bool:
    try:
        await open_body(Vault(), day_subject(at), blob)
    except KeyDestroyed:
        return False
    return True


async def _key_destroyed(day: str) -> bool:
    info = await Vault().key_info(None, day)
    assert info is not None
    return info.destroyed


async def test_day_keys_past_the_raw_body_retention_are_destroyed_on_schedule(
    app: Any, tmp_path: Path
) -> None:
    owner, workspace_id = await owner_of(app)
    await workspace_with_number(owner)
    await customers_write(owner, ("Ann One", "16505550001"), ("Ben Two", "16505550002"))
    first = await _raw_bodies()
    assert len(first) == 2
    first_days = {day_subject(at) for _, _, at in first}  # one day (two, across a midnight)
    made = await run_cli("backup", "create", "--dir", str(tmp_path / "backups"))
    assert made.exit_code == 0, made.output
    [earlier] = sorted((tmp_path / "backups").glob("connectx-2*.cxbak"))
    unpacked = tmp_path / "unpacked"
    await asyncio.to_thread(_unseal, earlier, unpacked)
    backup = await backup_bytes(unpacked)
    for _, blob, _ in first:
        assert blob in backup or blob.hex().encode() in backup  # the backup's very copy

    # Two days later another customer writes; that event is parked as failed ten days later
    # (after a retry, say): its body is live for 14 days from then, so its day keeps its key.
    clock.advance(timedelta(days=2))
    await _writes(owner, "Cy Three", "16505550003")
    [(failed_id, failed_blob, failed_at)] = [
        r for r in await _raw_bodies() if r[0] > max(i for i, _, _ in first)
    ]
    failed_day = day_subject(failed_at)
    assert failed_day not in first_days

    # Within the 14 days: nothing goes.
    clock.advance(timedelta(days=10))
    async with unit_of_work() as db:
        await db.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == failed_id)
            .values(status="failed", processed_at=clock.now())
        )
    assert (await run_cli("retention", "run")).exit_code == 0
    assert not any([await _key_destroyed(day) for day in first_days])
    assert all([await _opens(blob, at) for _, blob, at in first])

    # 17 days on, under a legal hold on the workspace: the processed raw rows go (their rule
    # has no workspace), but no day key is destroyed while a hold stands.
    clock.advance(timedelta(days=5))
    placed = await run_cli(
        "retention", "hold", "place", "--workspace", str(workspace_id), "--reason", "case 41"
    )
    assert placed.exit_code == 0, placed.output
    hold_id = placed.output.split()[2]
    held = await run_cli("retention", "run", "--no-progress")
    assert held.exit_code == 0, held.output
    assert [r[0] for r in await _raw_bodies()] == [failed_id]
    assert not any([await _key_destroyed(day) for day in first_days])
    assert all([await _opens(blob, at) for _, blob, at in first])
    line = next(ln for ln in held.output.splitlines() if ln.startswith("webhook_day_keys"))
    assert line.split()[3:5] == ["0", str(len(first_days))], line  # kept by the hold

    # Released: the next run destroys the first day's key; the copies in the earlier backup no
    # longer open. The failed event's day keeps its key (its body is still live), as does today.
    assert (await run_cli("retention", "hold", "release", hold_id)).exit_code == 0
    result = await run_cli("retention", "run")
    assert result.exit_code == 0, result.output
    assert all([await _key_destroyed(day) for day in first_days])
    for _, blob, at in first:
        assert not await _opens(blob, at)
    assert not await _key_destroyed(failed_day)
    assert await _opens(failed_blob, failed_at)

    [deleted] = [
        e for e in await events("retention.deleted") if e.data["rule"] == "webhook_day_keys"
    ]
    assert deleted.data == {
        "rule": "webhook_day_keys",
        "table": "crypto_keys",
        "class": "jobs",
        "count": len(first_days),
        "keys_destroyed": len(first_days),
    }
    assert deleted.subject is None and deleted.workspace_id is None
    shredded = (await events("keys.subject_destroyed"))[-1]
    infos = [await Vault().key_info(None, day) for day in sorted(first_days)]
    assert sorted(shredded.data["key_ids"]) == sorted(i.id for i in infos if i is not None)
    summary = (await events("retention.run"))[-1]
    assert summary.data["rules"]["webhook_day_keys"] == len(first_days)

    # Intake goes on under today's key.
    await _writes(owner, "Dee Four", "16505550004")
    newest = max(await _raw_bodies())
    assert await _opens(newest[1], newest[2])


async def test_a_dry_run_counts_day_keys_and_destroys_none(app: Any) -> None:
    owner, _ = await owner_of(app)
    await workspace_with_number(owner)
    await customers_write(owner, ("Ann One", "16505550001"))
    [(_, blob, at)] = await _raw_bodies()
    clock.advance(timedelta(days=16))
    # The raw row is still there (a dry run deletes nothing), so its day is not idle: 0 due.
    dry = await run_cli("retention", "run", "--dry-run", "--rule", "webhook_day_keys")
    assert dry.exit_code == 0, dry.output
    line = next(ln for ln in dry.output.splitlines() if ln.startswith("webhook_day_keys"))
    assert line.split()[3] == "0", line
    assert await _opens(blob, at)
    # Once the rows are gone (the rule), a dry run counts the day and still destroys nothing.
    assert (await run_cli("retention", "run", "--rule", "webhook_events")).exit_code == 0
    dry = await run_cli("retention", "run", "--dry-run", "--rule", "webhook_day_keys")
    line = next(ln for ln in dry.output.splitlines() if ln.startswith("webhook_day_keys"))
    assert line.split()[3] == "1", line
    assert await _opens(blob, at)
    assert [
        e for e in await events("retention.deleted") if e.data["rule"] == "webhook_day_keys"
    ] == []


async def test_the_erasure_job_destroys_no_idle_day_key_under_a_legal_hold(app: Any) -> None:
    """An erasure's key job also destroys the keys of past days with no live raw body; like the
    scheduled step, it must not while a legal hold is in force (on anyone)."""
    owner, workspace_id = await owner_of(app)
    await workspace_with_number(owner)
    await customers_write(owner, ("Ann One", "16505550001"))
    [(_, old_blob, old_at)] = await _raw_bodies()
    old_day = day_subject(old_at)
    clock.advance(timedelta(days=16))
    assert (await run_cli("retention", "run", "--rule", "webhook_events")).exit_code == 0
    assert await _raw_bodies() == []  # the old day is idle: no live body needs its key

    # Ben writes today; a hold is placed on someone else (Ann), then Ben is erased.
    owner.csrf = await signed_in(owner.client, owner.email)  # the session idled out
    [ben_conversation] = await customers_write(owner, ("Ben Two", "16505550002"))
    ben_day = day_subject(clock.now())
    conversation = (await owner.get(f"/api/v1/conversations/{ben_conversation}")).json()
    ben = int(conversation["contact"]["id"])
    ann = next(
        c["id"]
        for c in (await owner.get("/api/v1/contacts")).json()["items"]
        if c["phone"] == "+16505550001"
    )
    placed = await run_cli(
        "retention", "hold", "place", "--subject", f"contact:{ann}", "--reason", "claim 7"
    )
    assert placed.exit_code == 0, placed.output
    hold_id = placed.output.split()[2]
    async with unit_of_work() as db:
        result = await execute(db, Right.ERASURE, Subject.contact(workspace_id, ben))
    assert result.counts["raw_webhooks"] == 1
    await retire_webhook_keys()

    # Ben's retired key version went (his erasure is owed); the idle old day's key did not.
    assert not await _key_destroyed(old_day)
    assert await _opens(old_blob, old_at)
    shredded = [e.subject for e in await events("keys.subject_destroyed")]
    assert [s for s in shredded if s and s.startswith("webhook_day:")] == [ben_day]

    # Released: the scheduled step destroys it.
    assert (await run_cli("retention", "hold", "release", hold_id)).exit_code == 0
    assert (await run_cli("retention", "run", "--rule", "webhook_day_keys")).exit_code == 0
    assert await _key_destroyed(old_day)
    assert not await _opens(old_blob, old_at)


async def test_the_day_probe_reads_the_received_at_index(app: Any) -> None:
    """Which day keys are idle is one probe per live day key, answered from
    ``ix_webhook_events_received_at`` (without it, each probe read the whole table)."""
    owner, _ = await owner_of(app)
    await workspace_with_number(owner)
    await customers_write(owner, ("Ann One", "16505550001"))
    engine = get_engine()
    seen: list[tuple[str, Any]] = []

    def _seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "webhook_events.received_at >=" in statement:  # the probe, nothing else
            seen.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", _seen)
    try:
        tomorrow = f"{clock.now() + timedelta(days=1):%Y-%m-%d}"
        async with unit_of_work() as db:
            assert (await raw_webhooks.idle_days(db, tomorrow)).due == []  # today's is live
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", _seen)
    assert seen
    statement, params = seen[0]
    pg = engine.dialect.name == "postgresql"
    async with engine.connect() as conn:
        if pg:  # a tiny table is read whole whatever the indexes: ask what an index would do
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        prefix = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
        plan = " ".join(str(r) for r in (await conn.exec_driver_sql(prefix + statement, params)))
        await conn.rollback()
    assert "ix_webhook_events_received_at" in plan, plan
