"""Withdrawal of consent and objection, carried out through the rights executor: both write to
the consent ledger (and its audit events) in the caller's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit.errors import InvalidInput, NotFound
from connectx.models.audit import AuditEvent
from connectx.privacy import consent
from connectx.privacy.rights import Outcome, Right, Subject, execute
from tests.privacy.rights_support import make_contact, make_workspace


async def _grant(subject: Subject, purpose: str, channel: str) -> None:
    async with unit_of_work() as db:
        await consent.record(
            db,
            subject=subject.ref,
            workspace_id=subject.workspace_id,
            purpose=purpose,
            channel=channel,
            granted=True,
            source="api",
            wording="Yes, send me offers.",
            notice_version="2025-08-02",
            actor="system",
        )


async def _granted(subject: Subject, purpose: str, channel: str) -> bool:
    async with unit_of_work() as db:
        return await consent.is_granted(db, subject.ref, purpose, channel)


async def test_withdrawal_writes_to_the_ledger_where_consent_was_given() -> None:
    ws = await make_workspace()
    subject = Subject.contact(ws, await make_contact(ws, "+971501110001", "Layla"))
    await _grant(subject, "marketing", "whatsapp")
    async with unit_of_work() as db:
        result = await execute(
            db, Right.WITHDRAWAL, subject, {"purpose": "marketing"}, actor="user:7", request_id=3
        )
    assert result.outcome is Outcome.DONE and result.counts["ledger_records"] == 1
    assert not await _granted(subject, "marketing", "whatsapp")
    async with unit_of_work() as db:
        history = await consent.history(db, subject.ref, "marketing")
        events = (
            await db.execute(select(AuditEvent).where(AuditEvent.subject == subject.ref))
        ).scalars()
        actions = [e.action for e in events]
    assert [r.granted for r in history] == [True, False]
    assert history[-1].source == "privacy_request" and history[-1].actor == "user:7"
    assert "consent.withdrawn" in actions and "privacy.right_executed" in actions

    async with unit_of_work() as db:  # again: nothing in force, nothing written
        again = await execute(db, Right.WITHDRAWAL, subject, {"purpose": "marketing"})
    assert again.outcome is Outcome.NOTHING and again.counts["ledger_records"] == 0


async def test_objection_to_direct_marketing_is_absolute_on_every_channel() -> None:
    ws = await make_workspace()
    subject = Subject.contact(ws, await make_contact(ws, "+971501110002"))
    await _grant(subject, "marketing", "whatsapp")
    async with unit_of_work() as db:
        result = await execute(db, Right.OBJECTION, subject, {"purpose": "marketing"})
    assert result.outcome is Outcome.DONE
    for channel in consent.CHANNELS:
        async with unit_of_work() as db:
            state = await consent.current_state(db, subject.ref, "marketing", channel)
        assert state.decided and not state.granted, channel


async def test_objection_to_other_processing_is_recorded_for_the_controller() -> None:
    ws = await make_workspace()
    subject = Subject.contact(ws, await make_contact(ws, "+971501110003"))
    async with unit_of_work() as db:
        result = await execute(
            db, Right.OBJECTION, subject, {"purpose": "support", "grounds": "I never asked"}
        )
    assert result.outcome is Outcome.RECORDED and result.notices
    async with unit_of_work() as db:
        rows = await consent.history(db, subject.ref)
    assert rows == []


async def test_bad_parameters_and_unknown_subjects_are_clear_errors() -> None:
    ws = await make_workspace()
    other = await make_workspace("Other")
    contact = await make_contact(ws, "+971501110004")
    async with unit_of_work() as db:
        with pytest.raises(InvalidInput, match="purpose"):
            await execute(db, Right.WITHDRAWAL, Subject.contact(ws, contact), {"purpose": "x"})
        with pytest.raises(InvalidInput, match="colour"):
            await execute(db, Right.ACCESS, Subject.contact(ws, contact), {"colour": "red"})
        with pytest.raises(NotFound):  # the contact is not in that workspace
            await execute(
                db, Right.WITHDRAWAL, Subject.contact(other, contact), {"purpose": "marketing"}
            )
    with pytest.raises(ValueError):
        Subject("contact", 1, None)
