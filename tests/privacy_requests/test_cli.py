"""`connectx privacy requests …`, the operator's (DPO's) commands, run as an operator would: the
real command (listing and approving in its own process, beside the app's database; the others in
a worker thread, which is faster on a busy machine). list (and --json, --overdue),
overdue, show, extend, refuse, approve, answer; a workspace's requests are not ConnectX's to
decide; output names requests by reference and ids, never the person."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from connectx.accounts import service as accounts
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.data_request import DataRequest
from connectx.privacy.requests import intake, service
from tests.privacy.support import cli, cli_here
from tests.privacy_requests.support import actions, request_row
from tests.support.factories import make_user
from tests.whatsapp.support import inbound_for
from tests.workspaces.helpers import owner_of


async def _file_for_account(user_id: int, email: str, kind: str, **params: Any) -> str:
    async with unit_of_work() as db:
        req = await service.file(
            db,
            service.Filing(
                kind=kind,
                subject_kind=service.ACCOUNT_HOLDER,
                source="account",
                filed_by=f"user:{user_id}",
                subject=f"user:{user_id}",
                email=email,
                params=params or None,
            ),
            verified_by="signed_in",
        )
        return req.reference


async def _inquiry() -> str:
    async with unit_of_work() as db:
        req = await intake.dpo_inquiry(
            db,
            name="Asker Person",
            email="asker@example.com",
            message="Which processors do you use?",
            ip=None,
        )
        return req.reference


async def test_the_operator_decides_requests_to_connectx_from_the_command_line(app: Any) -> None:
    user = await make_user(email="ada@example.com", name="Ada Lovelace")
    rect = await _file_for_account(user.id, "ada@example.com", "rectification", name="Ada King")
    access = await _file_for_account(user.id, "ada@example.com", "access")
    inquiry = await _inquiry()
    owner, ws = await owner_of(app)  # a workspace's request: the workspace decides it
    contact_id = (await inbound_for(owner))["contact_id"]
    r = await owner.post(
        "/api/v1/privacy/requests",
        json={"contact_id": contact_id, "kind": "access", "identity_checked": True},
    )
    assert r.status_code == 201, r.text
    theirs = r.json()["reference"]
    async with unit_of_work() as db:  # one of them is past due
        await db.execute(
            update(DataRequest)
            .where(DataRequest.reference == access)
            .values(due_at=clock.now() - timedelta(hours=2))
        )

    listed = await cli("privacy", "requests", "list", "--json")  # own process
    assert listed.code == 0, listed.err
    rows = {row["reference"]: row for row in json.loads(listed.out)}
    assert set(rows) == {rect, access, inquiry, theirs}
    assert rows[theirs]["workspace_id"] == ws and rows[rect]["workspace_id"] is None
    assert rows[access]["overdue"] and not rows[rect]["overdue"]
    assert json.loads(listed.out)[0]["reference"] == access  # soonest due first

    for words in (("overdue",), ("list", "--overdue")):
        late = await cli_here("privacy", "requests", *words)
        assert late.code == 0, late.err
        assert access in late.out and rect not in late.out and theirs not in late.out
        assert "pending" in late.out

    ext = await cli_here(
        "privacy", "requests", "extend", rect, "--days", "10", "--reason", "Checking records."
    )
    assert ext.code == 0, ext.err
    assert "extended" in ext.out
    again = await cli_here(
        "privacy", "requests", "extend", rect, "--days", "5", "--reason", "More."
    )
    assert again.code == 1 and "one extension" in again.err

    done = await cli("privacy", "requests", "approve", rect)  # own process
    assert done.code == 0, done.err
    assert "completed" in done.out
    async with unit_of_work() as db:
        found = await accounts.get_user(db, user.id)
        assert found is not None
        assert (await accounts.profile(db, found)).name == "Ada King"

    refused = await cli_here(
        "privacy", "requests", "refuse", access, "--reason", "We hold no data beyond the account."
    )
    assert refused.code == 0 and "refused" in refused.out

    answered = await cli_here(
        "privacy", "requests", "answer", inquiry, "--text", "Those in the RoPA."
    )
    assert answered.code == 0 and "completed" in answered.out

    shown = await cli_here("privacy", "requests", "show", rect)
    assert shown.code == 0
    for step in ("filed", "verified", "extended", "approved", "completed"):
        assert f"  {step}  by " in shown.out
    assert (await request_row(rect)).status == "completed"
    assert "completed" in await actions((await request_row(rect)).id)

    # Not ConnectX's to decide; unknown references are named; no person in any output.
    theirs_run = await cli_here("privacy", "requests", "approve", theirs)
    assert theirs_run.code == 1 and "owners" in theirs_run.err
    assert (await request_row(theirs)).status == "pending"
    unknown = await cli_here("privacy", "requests", "show", "R-ZZZZZZZZ")
    assert unknown.code == 1 and "No request" in unknown.err
    for run in (listed, late, ext, done, refused, answered, shown):
        assert "ada@example.com" not in run.out + run.err and "Lovelace" not in run.out

    empty = await cli_here("privacy", "requests", "overdue")
    assert empty.code == 0 and "No overdue requests." in empty.out
