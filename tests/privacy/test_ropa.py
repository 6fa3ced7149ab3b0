"""``connectx privacy ropa``: the record of processing, generated from the declarations."""

from __future__ import annotations

import json
from typing import Any

import connectx.models  # noqa: F401
from connectx.db.base import Base
from connectx.kit.inventory import Basis, Retention, declaration_of
from connectx.models.crypto_key import KeyStoreBase
from connectx.privacy import processors, ropa
from connectx.privacy.retention_schedule import SCHEDULE
from tests.privacy.support import cli_here


def _declared() -> dict[str, set[str]]:
    """category -> {"table.column", ...} straight from the models."""
    out: dict[str, set[str]] = {}
    for metadata in (Base.metadata, KeyStoreBase.metadata):
        for table in metadata.tables.values():
            for col in table.columns:
                decl = declaration_of(col)
                assert decl is not None
                out.setdefault(decl.category, set()).add(f"{table.name}.{col.name}")
    return out


async def test_json_record_lists_every_declared_category_with_its_processing() -> None:
    run = await cli_here("privacy", "ropa", "--format", "json")
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert set(doc) >= {"controller", "categories", "retention_classes", "recipients", "tables"}
    assert "support@connectxsaudi.com" in doc["controller"]["dpo"]

    declared = _declared()
    by_category = {c["category"]: c for c in doc["categories"]}
    assert set(by_category) == set(declared)  # every category, nothing invented
    for category, columns in declared.items():
        entry = by_category[category]
        assert set(entry["columns"]) == columns
        assert entry["purposes"] and entry["lawful_bases"] and entry["retention"]
        assert set(entry["lawful_bases"]) <= {str(b) for b in Basis}
        assert all(r["period"] for r in entry["retention"])

    email = by_category["user.contact.email"]
    assert email["personal"] and email["encrypted"] == "all"
    assert {"users.email_enc", "invitations.email_enc", "mail_messages.to_enc"} <= set(
        email["columns"]
    )
    assert "mail_relay" in email["recipients"] and "hosting" in email["recipients"]
    assert "meta_whatsapp" not in email["recipients"]
    # Keyed hashes never leave the database: only the host of the database holds them.
    assert by_category["user.contact.email.blind_index"]["recipients"] == ["hosting"]
    assert by_category["system.key_material"]["stores"] == ["keystore"]

    # Every retention class used has a period; the classes print their periods.
    classes = {r["class"]: r for r in doc["retention_classes"]}
    assert set(classes) == {str(r) for r in Retention}
    assert classes["security_log"]["days"] == 90 and "90 days" in classes["security_log"]["period"]
    assert classes["key_material"]["days"] is None

    # The recipient registry, with Meta as processor of WhatsApp traffic.
    recipients = {r["id"]: r for r in doc["recipients"]}
    assert set(recipients) == {r.id for r in processors.REGISTRY}
    meta = recipients["meta_whatsapp"]
    assert meta["role"] == "processor" and "user.content.message" in meta["categories"]
    assert {"vendor", "affiliate", "partner", "platform"} <= {
        r["kind"] for r in recipients.values()
    }
    for r in recipients.values():
        assert r["location"] and r["safeguards"] and r["purposes"] and r["lawful_bases"]

    tables = {t["table"]: t for t in doc["tables"]}
    assert tables["crypto_keys"]["store"] == "keystore" and tables["users"]["store"] == "data"
    name = next(c for c in tables["users"]["columns"] if c["column"] == "name_enc")
    assert name == {
        "column": "name_enc",
        "category": "user.name",
        "personal": True,
        "purpose": "account",
        "lawful_basis": "contract",
        "retention": "account_lifetime",
        "encrypted": True,
    }


async def test_markdown_record_has_the_same_content_for_people() -> None:
    run = await cli_here("privacy", "ropa")
    assert run.code == 0, run.err
    md = run.out
    assert md.startswith("# ConnectX record of processing activities")
    for heading in ("## Processing by data category", "## Retention classes",
                    "## Recipients and processors", "## Columns"):  # fmt: skip
        assert heading in md
    for category in _declared():
        assert f"`{category}`" in md
    for r in processors.REGISTRY:
        assert f"### {r.name} (`{r.id}`)" in md
    assert SCHEDULE[Retention.CONSENT_PROOF].describe() in md
    assert "| `name_enc` | `user.name` | account | contract | account_lifetime | yes |" in md


def test_the_record_refuses_an_undeclared_column() -> None:
    import pytest
    from sqlalchemy import Column, Integer, MetaData, Table

    from connectx.privacy import ropa

    extra = MetaData()
    Table("scratch", extra, Column("id", Integer, primary_key=True))
    original = ropa._stores
    ropa._stores = lambda: [*original(), ("data", extra)]  # type: ignore[method-assign]
    try:
        with pytest.raises(LookupError, match=r"scratch\.id"):
            ropa.build()
    finally:
        ropa._stores = original  # type: ignore[method-assign]


async def test_workspace_admins_read_the_record_and_agents_do_not(app: Any) -> None:
    from tests.workspaces.helpers import join, owner_of

    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    r = await owner.get("/api/v1/workspace/record-of-processing")
    assert r.status_code == 200, r.text
    assert r.json() == ropa.build()
    r = await owner.get("/api/v1/workspace/record-of-processing", params={"format": "markdown"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert "## Recipients and processors" in r.text
    bad = await owner.get("/api/v1/workspace/record-of-processing", params={"format": "xml"})
    assert bad.status_code == 422
    assert (await agent.get("/api/v1/workspace/record-of-processing")).status_code == 403


async def test_workspace_admins_see_the_record_as_a_page(app: Any) -> None:
    from tests.workspaces.helpers import join, owner_of

    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    doc = ropa.build()
    r = await owner.client.get("/workspace/record-of-processing")
    assert r.status_code == 200, r.text
    assert 'aria-current="page">Record of processing</a>' in r.text
    for cat in doc["categories"]:
        assert f"<code>{cat['category']}</code>" in r.text
    for recipient in doc["recipients"]:
        assert f'id="recipient-{recipient["id"]}"' in r.text
    assert 'href="/workspace/record-of-processing"' in (await owner.client.get("/workspace")).text
    assert (await agent.client.get("/workspace/record-of-processing")).status_code == 403
    agents_overview = (await agent.client.get("/workspace")).text
    assert 'href="/workspace/record-of-processing"' not in agents_overview
