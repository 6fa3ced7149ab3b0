"""The consent ledger (policy §3, §5, §8): append-only, the current state derived from it."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.kit.errors import InvalidInput
from connectx.models.audit import AuditEvent
from connectx.models.consent import ConsentRecord
from connectx.privacy import consent
from connectx.privacy.vault import Vault

SRC = Path(consent.__file__).resolve().parents[1]
WORDING = "Send me product news and offers by e-mail. You can stop at any time."


async def _decide(subject: str, granted: bool, channel: str = "email", **kw: object) -> int:
    async with unit_of_work() as db:
        row = await consent.record(
            db,
            subject=subject,
            workspace_id=kw.pop("workspace_id", None),  # type: ignore[arg-type]
            purpose=kw.pop("purpose", "marketing"),  # type: ignore[arg-type]
            channel=channel,
            granted=granted,
            source=kw.pop("source", "account_settings"),  # type: ignore[arg-type]
            wording=WORDING,
            notice_version="2025-08-02",
            actor=kw.pop("actor", subject),  # type: ignore[arg-type]
        )
        return row.id


async def _state(
    subject: str, channel: str = "email", purpose: str = "marketing"
) -> consent.ConsentState:
    async with unit_of_work() as db:
        return await consent.current_state(db, subject, purpose, channel)


async def test_no_record_means_no_consent() -> None:
    state = await _state("user:1")
    assert (state.granted, state.decided, state.since, state.source) == (False, False, None, None)


async def test_the_latest_decision_wins_per_purpose_and_channel() -> None:
    await _decide("user:1", True, source="signup_form")
    assert (await _state("user:1")).granted
    assert not (await _state("user:1", channel="whatsapp")).granted  # another channel
    assert not (await _state("user:1", purpose="analytics")).granted  # another purpose
    assert not (await _state("user:2")).granted  # another person

    clock.advance(timedelta(days=3))
    withdrawn_id = await _decide("user:1", False, source="unsubscribe_link")
    state = await _state("user:1")
    assert not state.granted and state.decided and state.record_id == withdrawn_id
    assert state.source == "unsubscribe_link"
    assert state.since is not None and abs(state.since - clock.now()) < timedelta(seconds=5)

    clock.advance(timedelta(days=1))
    await _decide("user:1", True)
    async with unit_of_work() as db:
        assert await consent.is_granted(db, "user:1", "marketing", "email")
        history = await consent.history(db, "user:1", "marketing", "email")
        everything = await consent.states(db, "user:1")
    assert [r.granted for r in history] == [True, False, True]  # oldest first, all kept
    assert [r.source for r in history] == ["signup_form", "unsubscribe_link", "account_settings"]
    assert all(
        r.wording == WORDING and r.wording_hash == consent.wording_hash(WORDING) for r in history
    )
    granted = {(s.purpose, s.channel) for s in everything if s.granted}
    assert granted == {("marketing", "email")}
    assert len(everything) == len(consent.PURPOSES) * len(consent.CHANNELS)


async def test_each_decision_is_audited_with_ids_only() -> None:
    record_id = await _decide("contact:4", False, channel="whatsapp", workspace_id=None,
                              source="whatsapp_keyword", actor="system")  # fmt: skip
    async with unit_of_work() as db:
        [event] = (await db.execute(select(AuditEvent))).scalars().all()
    assert (event.action, event.actor, event.subject) == (
        "consent.withdrawn",
        "system",
        "contact:4",
    )
    assert event.data == {
        "record_id": record_id,
        "purpose": "marketing",
        "channel": "whatsapp",
        "source": "whatsapp_keyword",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [("purpose", "spam"), ("channel", "fax"), ("source", "guess"), ("wording", "  ")],
)
async def test_bad_decisions_are_refused_with_a_message(field: str, value: str) -> None:
    args: dict[str, object] = {
        "subject": "user:1",
        "workspace_id": None,
        "purpose": "marketing",
        "channel": "email",
        "granted": True,
        "source": "api",
        "wording": WORDING,
        "notice_version": "2025-08-02",
        "actor": "api_key:2",
        field: value,
    }
    async with unit_of_work() as db:
        with pytest.raises(InvalidInput) as caught:
            await consent.record(db, **args)  # type: ignore[arg-type]
    assert caught.value.extra["field"] == field and caught.value.detail


async def test_sign_up_with_the_box_ticked_is_derived_as_granted(client) -> None:
    r = await client.post(
        "/api/v1/auth/signup",
        json={
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+44 7911 123456",
            "password": "copper-kettle-morning-31",
            "marketing_opt_in": True,
        },
    )
    assert r.status_code == 201, r.text
    assert (await _state(f"user:{r.json()['id']}")).granted


@pytest.mark.parametrize("table", ["consent_records", "audit_events"])
async def test_the_ledger_and_the_audit_log_reject_update_and_delete_in_the_database(
    table: str,
) -> None:
    await _decide("user:1", True)  # one consent record and one audit event
    for statement in (
        f"UPDATE {table} SET actor = 'user:666'",
        f"DELETE FROM {table}",
    ):
        with pytest.raises(DBAPIError) as caught:
            async with unit_of_work() as db:
                await db.execute(text(statement))
        assert "append-only" in str(caught.value)
    async with unit_of_work() as db:
        assert (await db.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 1
        rows = (await db.execute(select(ConsentRecord))).scalars().all()
    assert [r.actor for r in rows] == ["user:1"]
    await _decide("user:1", False)  # appending still works


def test_no_code_path_updates_or_deletes_ledger_or_audit_rows() -> None:
    """The code holds no UPDATE or DELETE of these tables (the triggers are the second line)."""
    orm = re.compile(r"\b(update|delete)\(\s*(ConsentRecord|AuditEvent)\b")
    raw = re.compile(r"(?i)\b(update|delete\s+from)\s+(consent_records|audit_events)\b")
    session_delete = re.compile(r"\.delete\(\s*(record|entry|event|consent)\w*\s*\)")
    # The one deliberate way out (retention past the periods), through the database's permits.
    pruning = SRC / "retention" / "ledgers_repository.py"
    offenders = []
    for path in SRC.rglob("*.py"):
        if path == pruning:
            continue
        source = path.read_text()
        for pattern in (orm, raw, session_delete):
            for match in pattern.finditer(source):
                offenders.append(f"{path.relative_to(SRC)}: {match.group(0)}")
    # The migration that installs the triggers names them; it is not under src/.
    assert offenders == []


async def test_suppression_hash_is_keyed_normalised_and_outlives_the_contact() -> None:
    async with unit_of_work() as db:
        h = await consent.suppression_hash(db, 3, "whatsapp", "+971 50 123 4567")
        same = await consent.suppression_hash(db, 3, "whatsapp", "+971501234567")
        other_ws = await consent.suppression_hash(db, 4, "whatsapp", "+971501234567")
        mail = await consent.suppression_hash(db, 3, "email", " Ada@Example.com ")
        mail_same = await consent.suppression_hash(db, 3, "email", "ada@example.com")
        # The contact is erased (its key destroyed) and comes back: the hash still matches.
        await Vault(db).encrypt(3, "contact:8", "contacts.phone", "+971501234567")
        await Vault(db).destroy_subject(3, "contact:8")
        again = await consent.suppression_hash(db, 3, "whatsapp", "+971501234567")
        with pytest.raises(InvalidInput):
            await consent.suppression_hash(db, 3, "whatsapp", "not a phone")
    assert h == same == again and mail == mail_same
    assert len({h, other_ws, mail}) == 3
    assert h != hashlib.sha256(b"+971501234567").digest()
