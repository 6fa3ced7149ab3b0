"""Retention through the real command: expiry by the clock, batches, dry runs, audit by counts,
legal holds on a subject and on a workspace."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connectx.config import reset_settings
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.account import ActionToken, LoginAttempt, UserSession
from connectx.models.job import Job
from connectx.models.mail import MailMessage
from connectx.models.workspace import Invitation
from connectx.privacy.vault import Vault
from tests.retention.support import count, events, jobs_settled, run_cli
from tests.support.factories import DEFAULT_PASSWORD, make_user, signed_in
from tests.workspaces.helpers import new_client, owner_of


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CONNECTX_RETENTION_BATCH_SIZE", "2")
    monkeypatch.setenv("CONNECTX_RETENTION_PAUSE_S", "0")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


async def _activity(app: Any) -> dict[str, Any]:
    """What a few days of use leave behind: sessions (one ended), failed sign-ins, a reset
    link and its mail, an invitation and its mail, finished jobs."""
    owner, workspace_id = await owner_of(app, "Retention Traders")
    r = await owner.post(
        "/api/v1/workspace/invitations", json={"email": "invitee@example.com", "role": "agent"}
    )
    assert r.status_code == 201, r.text
    invitation_id = int(r.json()["id"])

    user = await make_user(email="rita@example.com")
    async with new_client(app) as c:
        for wrong in ("wrong-password-1", "wrong-password-2", "wrong-password-3"):
            r = await c.post(
                "/api/v1/auth/signin", json={"email": "rita@example.com", "password": wrong}
            )
            assert r.status_code == 401
        csrf = await signed_in(c, "rita@example.com")
        assert (
            await c.post("/api/v1/auth/signout", headers={"X-CSRF-Token": csrf})
        ).status_code == 204
        await signed_in(c, "rita@example.com")  # a second session, left open
        r = await c.post("/api/v1/auth/forgot", json={"email": "rita@example.com"})
        assert r.status_code == 202
    await jobs_settled()
    return {"owner": owner, "workspace_id": workspace_id, "user": user, "invitation": invitation_id}


async def test_expired_rows_go_in_audited_batches_and_live_ones_stay(
    app: Any, small_batches: None
) -> None:
    seen = await _activity(app)
    user_id = seen["user"].id
    sessions_before = await count(UserSession, UserSession.user_id == user_id)
    attempts_before = await count(LoginAttempt)
    assert sessions_before == 2 and attempts_before >= 5
    assert await count(ActionToken, ActionToken.user_id == user_id) == 1
    assert await count(MailMessage) >= 2 and await count(Job, Job.status == "done") >= 2
    invitation_key = await Vault().key_info(None, f"invitation:{seen['invitation']}")
    assert invitation_key is not None and not invitation_key.destroyed

    # Nothing has expired yet: a run removes nothing.
    result = await run_cli("retention", "run")
    assert result.exit_code == 0, result.output
    assert "0 rows removed" in result.output
    assert await count(UserSession, UserSession.user_id == user_id) == 2

    # 31 days on: ended sessions, used links, sent mail, finished jobs and expired invitations
    # are past their periods; the open session is not (it ended 14 days after sign-in).
    clock.advance(timedelta(days=31))
    dry = await run_cli("retention", "run", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    assert await count(UserSession, UserSession.user_id == user_id) == 2  # nothing removed

    result = await run_cli("retention", "run")
    assert result.exit_code == 0, result.output
    async with unit_of_work() as db:
        left = (
            (await db.execute(select(UserSession).where(UserSession.user_id == user_id)))
            .scalars()
            .all()
        )
    assert len(left) == 1 and left[0].revoked_at is None  # the open one
    assert await count(ActionToken, ActionToken.user_id == user_id) == 0
    assert await count(MailMessage) == 0
    assert await count(Invitation) == 0
    assert await count(Job, Job.status.in_(("done", "failed"))) == 0
    assert await count(LoginAttempt) == attempts_before  # 90 days: not yet
    # The invitation's key went with it (and is in the audit log for key-store restores).
    assert (await Vault().key_info(None, f"invitation:{seen['invitation']}")).destroyed

    deleted = await events("retention.deleted")
    by_table: dict[str, int] = {}
    for event in deleted:
        assert event.actor == "system" and event.subject is None
        assert set(event.data) <= {"rule", "table", "class", "count", "keys_destroyed"}
        assert 1 <= event.data["count"] <= 2  # batches of two
        by_table[event.data["table"]] = by_table.get(event.data["table"], 0) + event.data["count"]
    assert by_table["user_sessions"] == 1 and by_table["action_tokens"] == 1
    assert by_table["invitations"] == 1 and by_table["mail_messages"] >= 2
    assert sum(by_table.values()) >= 6 and len(deleted) >= sum(by_table.values()) / 2  # batches
    summary = (await events("retention.run"))[-1]
    assert summary.data["removed"] == sum(by_table.values())
    destroyed = await events("keys.subject_destroyed")
    assert destroyed and destroyed[-1].data["key_ids"] == [invitation_key.id]

    # 91 days: sign-in attempts go too.
    clock.advance(timedelta(days=60))
    assert (await run_cli("retention", "run", "--no-progress")).exit_code == 0
    assert await count(LoginAttempt) == 0
    assert await count(UserSession, UserSession.user_id == user_id) == 0


async def test_dry_run_counts_and_changes_nothing(app: Any) -> None:
    seen = await _activity(app)
    clock.advance(timedelta(days=31))
    result = await run_cli("retention", "run", "--dry-run", "--rule", "user_sessions")
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("user_sessions"))
    assert line.split()[3] == "1"  # would remove the ended session
    assert await count(UserSession, UserSession.user_id == seen["user"].id) == 2
    assert await events("retention.deleted") == []
    bad = await run_cli("retention", "run", "--rule", "no_such_rule")
    assert bad.exit_code == 2 and "unknown rule" in bad.output


async def test_legal_holds_keep_a_subjects_and_a_workspaces_data_until_released(
    app: Any,
) -> None:
    seen = await _activity(app)
    user_id = seen["user"].id
    placed = await run_cli(
        "retention", "hold", "place", "--subject", f"user:{user_id}", "--reason", "case 2026-17"
    )
    assert placed.exit_code == 0, placed.output
    subject_hold = int(placed.output.split()[2])
    placed = await run_cli(
        "retention",
        "hold",
        "place",
        "--workspace",
        str(seen["workspace_id"]),
        "--reason",
        "regulator inquiry",
    )
    assert placed.exit_code == 0, placed.output
    listed = await run_cli("retention", "hold", "list")
    assert f"user:{user_id}" in listed.output and "regulator inquiry" in listed.output

    clock.advance(timedelta(days=31))
    result = await run_cli("retention", "run")
    assert result.exit_code == 0, result.output
    assert await count(UserSession, UserSession.user_id == user_id) == 2  # held
    assert await count(ActionToken, ActionToken.user_id == user_id) == 1  # held
    assert await count(Invitation) == 1  # the workspace is held
    mails = await count(MailMessage, MailMessage.subject == f"user:{user_id}")
    assert mails >= 1  # the user's mail is held too
    assert await count(MailMessage, MailMessage.subject != f"user:{user_id}") == 0
    assert "kept by legal holds" in result.output
    summary = (await events("retention.run"))[-1]
    assert summary.data["held"] >= 4

    assert (await run_cli("retention", "hold", "release", str(subject_hold))).exit_code == 0
    again = await run_cli("retention", "hold", "release", str(subject_hold))
    assert again.exit_code == 1 and "already released" in again.output
    assert (await run_cli("retention", "run")).exit_code == 0
    assert await count(UserSession, UserSession.user_id == user_id) == 1
    assert await count(ActionToken, ActionToken.user_id == user_id) == 0
    assert await count(Invitation) == 1  # the workspace hold stands
    placed_events = await events("legal_hold.placed")
    assert [e.subject for e in placed_events] == [f"user:{user_id}", None]
    assert placed_events[1].workspace_id == seen["workspace_id"]
    assert [e.data for e in await events("legal_hold.released")] == [{"hold_id": subject_hold}]


async def test_hold_commands_refuse_bad_input(app: Any) -> None:
    for args, words in (
        (["--subject", "rita@example.com"], "A subject is an id like user:12"),
        (["--workspace", "999999"], "There is no workspace 999999"),
        ([], "Name either a workspace or a subject"),
    ):
        result = await run_cli("retention", "hold", "place", "--reason", "x", *args)
        assert result.exit_code == 1 and words in result.output, result.output
        assert "Traceback" not in result.output
    assert await events("legal_hold.placed") == []


async def test_schedule_command_and_operator_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = await run_cli("retention", "schedule")
    assert shown.exit_code == 0
    assert "security_log         90 days after the attempt" in shown.output
    monkeypatch.setenv("CONNECTX_RETENTION_DAYS", '{"security_log": 45}')
    reset_settings()
    try:
        shown = await run_cli("retention", "schedule")
        assert "security_log         45 days after the attempt" in shown.output
        monkeypatch.setenv("CONNECTX_RETENTION_DAYS", '{"security_log": 5}')
        reset_settings()
        shown = await run_cli("retention", "schedule")
        assert shown.exit_code == 1 and "between 30 and 365 days" in shown.output
    finally:
        monkeypatch.undo()
        reset_settings()


async def test_signed_in_pages_of_a_person_are_unaffected(app: Any) -> None:
    """Sanity: a person signed in before the run keeps working after it."""
    await make_user(email="sam@example.com")
    async with new_client(app) as c:
        await signed_in(c, "sam@example.com", DEFAULT_PASSWORD)
        assert (await run_cli("retention", "run")).exit_code == 0
        assert (await c.get("/api/v1/me")).status_code == 200
