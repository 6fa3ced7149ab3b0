"""Backups and anonymised contacts: a contact anonymised before the backup comes back exactly as
it was; one anonymised after it is anonymised again by the restore (no customer is revived);
the others read as before."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from connectx.db.base import Base
from connectx.db.engine import dispose_engines
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.message import Message
from connectx.privacy.vault import Vault
from tests.retention.support import contact_row, customer_writes, events, run_cli
from tests.support.factories import signed_in
from tests.whatsapp.support import connect
from tests.workspaces.helpers import owner_of

IDENTITY = ("phone_index", "phone_enc", "bsuid_index", "bsuid_enc", "name_enc", "profile_enc")


async def _rows() -> dict[str, set[tuple[Any, ...]]]:
    out: dict[str, set[tuple[Any, ...]]] = {}
    async with unit_of_work() as db:
        for table in Base.metadata.sorted_tables:
            if table.name != "audit_events":
                rows = (await db.execute(text(f"SELECT * FROM {table.name}"))).all()
                out[table.name] = {tuple(r) for r in rows}
    return out


async def test_restore_keeps_anonymised_contacts_anonymous_and_loses_nothing(
    app: Any, tmp_path: Path
) -> None:
    owner, ws = await owner_of(app, "Backup Contacts LLC")
    await connect(owner)
    early = await customer_writes(owner, "16505550301", "Ernest Early")
    clock.advance(timedelta(days=730))
    later = await customer_writes(owner, "16505550302", "Lena Later")
    kept = await customer_writes(owner, "16505550303", "Karim Kept")
    clock.advance(timedelta(days=366))
    assert (await run_cli("retention", "run", "--no-progress")).exit_code == 0
    assert (await contact_row(early.id)).phone_enc is None  # anonymised before the backup

    made = await run_cli("backup", "create", "--dir", str(tmp_path))
    assert made.exit_code == 0, made.output
    [data] = sorted(tmp_path.glob("connectx-2*.cxbak"))
    before = await _rows()

    # After the backup: Lena goes quiet for three years and is anonymised; Karim is held.
    placed = await run_cli(
        "retention", "hold", "place", "--subject", f"contact:{kept.id}", "--reason", "case 5"
    )
    assert placed.exit_code == 0
    clock.advance(timedelta(days=3 * 365 + 1))
    assert (await run_cli("retention", "run", "--no-progress")).exit_code == 0
    assert (await contact_row(later.id)).phone_enc is None
    assert (await contact_row(kept.id)).phone_enc is not None

    restored = await run_cli("backup", "restore", str(data), "--yes")
    assert restored.exit_code == 0, restored.output
    await dispose_engines()
    assert "erasures re-applied: 1 subjects" in restored.output

    after = await _rows()
    lena = await contact_row(later.id)
    assert all(getattr(lena, name) is None for name in IDENTITY)  # not revived
    assert (await Vault().key_info(ws, f"contact:{later.id}")).destroyed
    async with unit_of_work() as db:
        bodies = (
            await db.execute(select(Message.body_enc).where(Message.contact_id == later.id))
        ).all()
    assert bodies == [(None,)]
    # Everything else is exactly as backed up: Ernest (anonymised before) untouched, Karim whole.
    changed = {
        name
        for name in before
        if before[name] != after[name]
        and name not in ("contacts", "messages", "contact_name_tokens")
    }
    assert changed == set()
    # Lena's name-search tokens go with her name; everybody else's are as backed up.
    tokens = Base.metadata.tables["contact_name_tokens"]
    whose = list(tokens.columns.keys()).index("contact_id")
    assert {r for r in before["contact_name_tokens"] if r[whose] == later.id}
    assert after["contact_name_tokens"] == {
        r for r in before["contact_name_tokens"] if r[whose] != later.id
    }
    assert len(after["contacts"]) == len(before["contacts"]) == 3
    assert len(after["messages"]) == len(before["messages"]) == 3
    assert len(after["messages"] - before["messages"]) == 1  # Lena's, without its content
    assert {r for r in after["contacts"] if r[0] != later.id} == {
        r for r in before["contacts"] if r[0] != later.id
    }
    owner.csrf = await signed_in(owner.client, owner.email)
    names = {
        c["contact"]["id"]: c["contact"]["name"]
        for c in (await owner.get("/api/v1/conversations")).json()["items"]
    }
    assert names == {early.id: None, later.id: None, kept.id: "Karim Kept"}
    [event] = await events("backup.restored")
    assert event.data["erased_subjects"] == 1
    assert (await run_cli("audit", "verify")).exit_code == 0
