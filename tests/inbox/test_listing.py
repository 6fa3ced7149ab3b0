"""The inbox list: views, status, number, label filters, search by name and number, paging."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.inbox import name_search
from connectx.models.inbox import ContactNameToken
from tests.inbox.support import customers_write, workspace_with_number
from tests.whatsapp.support import PNID_B, WABA_B, connect
from tests.workspaces.helpers import join, owner_of


def test_names_are_normalised_into_words_and_prefixes() -> None:
    assert name_search.words("  José  O'Brien-Smith ") == ["jose", "o", "brien", "smith"]
    assert name_search.grams("Zoë Ng") == {"zoe", "zo", "ng"}
    assert name_search.query_grams("j Bri") == ["bri"]


async def ids(caller: Any, **params: Any) -> list[int]:
    r = await caller.get("/api/v1/inbox/conversations", params=params)
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["items"]]


async def test_filters_search_and_pages(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    sales = await workspace_with_number(owner)
    jose, ann, annie = await customers_write(
        owner,
        ("José O'Brien", "16505550001"),
        ("Ann Lee", "16505550002"),
        ("Annie Leeds", "16505550003"),
    )
    support = int((await connect(owner, pnid=PNID_B, waba=WABA_B, name="Support"))["id"])
    (other,) = await customers_write(owner, ("Bob Stone", "16505550004"), pnid=PNID_B, waba=WABA_B)
    newest_first = [other, annie, ann, jose]
    assert await ids(owner) == newest_first

    await owner.client.put(
        f"/api/v1/conversations/{ann}/assignment", json={"user_id": agent.user.id}, headers=owner.h
    )
    await owner.patch(f"/api/v1/conversations/{jose}", json={"status": "resolved"})
    assert await ids(agent, view="mine") == [ann]
    assert await ids(agent, view="unassigned") == [other, annie, jose]
    assert await ids(owner, view="unassigned", status="open") == [other, annie]
    assert await ids(owner, status="resolved") == [jose]
    assert await ids(owner, channel=support) == [other]
    assert await ids(owner, channel=sales, status="open") == [annie, ann]

    # Names: words and word prefixes, any case, accents ignored; every word must match.
    assert await ids(owner, q="jose") == [jose]
    assert await ids(owner, q="JOSÉ o'bri") == [jose]
    assert await ids(owner, q="ann") == [annie, ann]
    assert await ids(owner, q="annie") == [annie]
    assert await ids(owner, q="ann leeds") == [annie]
    assert await ids(owner, q="nobody") == []
    # Numbers: exact, in any usual notation.
    assert await ids(owner, q="+1 650 555 0002") == [ann]
    assert await ids(owner, q="+16505559999") == []
    r = await owner.get("/api/v1/inbox/conversations", params={"q": "a"})
    assert r.status_code == 422 and r.json()["field"] == "q"

    first = (await owner.get("/api/v1/inbox/conversations", params={"limit": 3})).json()
    assert [c["id"] for c in first["items"]] == newest_first[:3]
    rest = (
        await owner.get(
            "/api/v1/inbox/conversations", params={"limit": 3, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [c["id"] for c in rest["items"]] == newest_first[3:] and rest["next_cursor"] is None

    for bad in ({"view": "theirs"}, {"status": "snoozed"}, {"cursor": "nonsense"}, {"limit": 0}):
        r = await owner.get("/api/v1/inbox/conversations", params=bad)
        assert r.status_code == 422, (bad, r.text)

    # The index holds keyed hashes only, bound to the workspace.
    async with unit_of_work() as db:
        tokens = (await db.execute(select(ContactNameToken.token_index))).scalars().all()
    assert tokens and all(len(t) == 32 and b"jose" not in t for t in tokens)


async def test_another_workspace_finds_nothing_of_ours(app: Any) -> None:
    owner, _ = await owner_of(app)
    await workspace_with_number(owner)
    await customers_write(owner, ("José O'Brien", "16505550001"))
    stranger, _ = await owner_of(app, business="Elsewhere")
    await connect(stranger, pnid=PNID_B, waba=WABA_B)
    assert await ids(stranger, q="jose") == []
    assert await ids(stranger, q="+16505550001") == []
    assert await ids(stranger) == []


async def test_contacts_named_before_name_search_are_backfilled(app: Any, monkeypatch: Any) -> None:
    """Contacts whose names were stored before name search existed have no tokens; the
    ``inbox.backfill_name_tokens`` job (enqueued by migration 0004ip) writes them, a batch per
    job, and leaves contacts that have tokens alone."""
    from sqlalchemy import delete

    from connectx.jobs import runner
    from connectx.jobs.queue import enqueue
    from connectx.models.job import Job

    owner, _ = await owner_of(app)
    await workspace_with_number(owner)
    jose, ann, annie = await customers_write(
        owner,
        ("José O'Brien", "16505550001"),
        ("Ann Lee", "16505550002"),
        ("Annie Leeds", "16505550003"),
    )
    ann_contact = (await owner.get(f"/api/v1/conversations/{ann}")).json()["contact"]["id"]
    async with unit_of_work() as db:
        before = sorted((await db.execute(select(ContactNameToken.token_index))).scalars().all())
        # Ann keeps hers; José's and Annie's are gone, as for contacts named before the change.
        await db.execute(delete(ContactNameToken).where(ContactNameToken.contact_id != ann_contact))
    assert await ids(owner, q="ann") == [ann]
    assert await ids(owner, q="jose") == []

    monkeypatch.setattr(name_search, "BACKFILL_BATCH", 1)  # one contact per job: jobs chain
    async with unit_of_work() as db:
        await enqueue(db, "inbox.backfill_name_tokens", {"after": 0})
    # The app's own job runtime runs them too; whoever claims a job first runs it.
    for _ in range(200):
        async with unit_of_work() as db:
            rows = (
                await db.execute(
                    select(Job.id, Job.status).where(Job.name == "inbox.backfill_name_tokens")
                )
            ).all()
        waiting = [job_id for job_id, status in rows if status not in ("done", "failed")]
        if not waiting:
            break
        for job_id in waiting:
            await runner.run_job(job_id)
        await asyncio.sleep(0.05)
    statuses = [status for _, status in rows]
    # A job per contact without tokens (Ann is skipped), and the one that finds no more.
    assert statuses == ["done"] * 3, statuses

    assert await ids(owner, q="jose") == [jose]
    assert await ids(owner, q="ann") == [annie, ann]
    assert await ids(owner, q="ann leeds") == [annie]
    async with unit_of_work() as db:
        after = sorted((await db.execute(select(ContactNameToken.token_index))).scalars().all())
    assert after == before  # the same keyed hashes intake wrote
