"""The operator suspends a workspace for a terms violation and lifts it again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectx.db.session import unit_of_work
from connectx.kit.errors import Forbidden
from connectx.security import suspension
from tests.retention.support import events, run_cli
from tests.support.mail import outbox
from tests.workspaces.helpers import owner_of


async def _suspended(workspace_id: int) -> bool:
    async with unit_of_work() as db:
        return await suspension.is_suspended(db, workspace_id)


async def test_suspend_and_lift_through_the_admin_command(app: Any) -> None:
    owner, ws = await owner_of(app, "Spammy Offers LLC", name="Sol Owner")
    _, other = await owner_of(app, "Honest Shop")
    result = await run_cli(
        "admin", "suspend-workspace", str(ws), "--reason", "bulk unsolicited marketing (terms 4.2)"
    )
    assert result.exit_code == 0, result.output
    assert await _suspended(ws) and not await _suspended(other)
    async with unit_of_work() as db:
        assert await suspension.suspended_among(db, [ws, other]) == {ws}
        with pytest.raises(Forbidden) as refused:
            await suspension.ensure_can_send(db, ws)
        await suspension.ensure_can_send(db, other)
    assert refused.value.extra["reason"] == "workspace_suspended"
    [event] = await events("workspace.suspended")
    assert event.workspace_id == ws and event.actor == "operator"
    assert event.reason == "bulk unsolicited marketing (terms 4.2)"

    for _ in range(100):
        mails = await outbox(to=owner.email, kind="workspace_suspension")
        if mails:
            break
        await asyncio.sleep(0.05)
    assert "terms 4.2" in mails[0].body and "still received and kept" in mails[0].body

    page = await owner.get("/workspace/security")
    assert "This workspace is suspended" in page.text

    again = await run_cli("admin", "suspend-workspace", str(ws), "--reason", "again")
    assert again.exit_code == 1 and "already suspended" in again.output
    missing = await run_cli("admin", "suspend-workspace", "999999", "--reason", "x")
    assert missing.exit_code == 1 and "no workspace 999999" in missing.output
    blank = await run_cli("admin", "suspend-workspace", str(other), "--reason", "  ")
    assert blank.exit_code == 1 and "Give the reason" in blank.output

    lifted = await run_cli("admin", "lift-suspension", str(ws))
    assert lifted.exit_code == 0, lifted.output
    assert not await _suspended(ws)
    assert len(await events("workspace.suspension_lifted")) == 1
    twice = await run_cli("admin", "lift-suspension", str(ws))
    assert twice.exit_code == 1 and "is not suspended" in twice.output
