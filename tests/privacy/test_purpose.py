"""Purpose limitation (policy §4, issue 6): message content is never available to marketing or
analytics. Every bulk read path declares its use and columns (connectx.privacy.purpose); these
tests fail when a marketing or analytics path names a content column, when such a path opens
content through the vault, and when a file download is served without a declared use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import connectx.app  # noqa: F401  (imports every module that registers a read path)
from connectx.db.base import Base
from connectx.kit.inventory import declaration_of
from connectx.models.contact import Contact
from connectx.models.message import Message
from connectx.privacy import purpose
from connectx.privacy.purpose import EXPORTS, PurposeViolation, Use
from connectx.privacy.vault import Vault

SRC = Path(__file__).resolve().parents[2] / "src" / "connectx"
LIMITED = (Use.MARKETING, Use.ANALYTICS)


def _content_columns() -> list[str]:
    out = []
    for table in Base.metadata.sorted_tables:
        for col in table.columns:
            decl = declaration_of(col)
            if decl is not None and decl.category.startswith("user.content."):
                out.append(f"{table.name}.{col.name}")
    return out


def test_every_marketing_and_analytics_path_reads_no_content() -> None:
    content = set(_content_columns())
    assert {"messages.body_enc", "messages.raw_enc", "notes.body_enc"} <= content
    limited = [e for e in EXPORTS.values() if e.use in LIMITED]
    assert {e.name for e in limited} >= {"marketing.send_gate"}
    for export in limited:
        assert not set(export.reads) & content, export.name
        assert not any(r.endswith(".*") for r in export.reads), export.name  # name each column


@pytest.mark.parametrize("use", LIMITED)
def test_a_path_that_names_a_content_column_is_refused(use: Use) -> None:
    for name in _content_columns():
        table, column = name.split(".")
        col = Base.metadata.tables[table].c[column]
        with pytest.raises(PurposeViolation):
            purpose.columns(use, col)
        with pytest.raises(PurposeViolation):
            purpose.register(f"test.{use}.{name}", use, [col], __name__)
    assert f"test.{use}.messages.body_enc" not in EXPORTS
    # metadata and identifiers are fine: counts of messages per day, an audience of contacts
    purpose.columns(use, Message.id, Message.created_at, Message.direction, Contact.id)
    # a use without the restriction (the subject's own access export) may read content
    purpose.columns(Use.RIGHTS, Message.body_enc)


@pytest.mark.parametrize("use", LIMITED)
async def test_the_vault_opens_no_content_for_marketing_or_analytics(use: Use) -> None:
    v = Vault()
    body = await v.encrypt(1, "contact:1", "messages.body", "my order number is 42")
    name = await v.encrypt(1, "contact:1", "contacts.name", "Sheena")
    note = await v.encrypt(1, "contact:1", "notes.body", "called twice")
    with purpose.acting_for(use):
        assert await v.decrypt(1, "contact:1", "contacts.name", name) == "Sheena"
        for column, blob in (("messages.body", body), ("notes.body", note)):
            with pytest.raises(PurposeViolation):
                await v.decrypt(1, "contact:1", column, blob)
        with pytest.raises(PurposeViolation):  # a column it does not know: closed
            await v.decrypt(1, "contact:1", "somewhere.else", body)
    assert await v.decrypt(1, "contact:1", "messages.body", body) == "my order number is 42"


@pytest.mark.parametrize("use", LIMITED)
def test_every_content_column_is_closed_by_its_vault_label(use: Use) -> None:
    with purpose.acting_for(use):
        for name in _content_columns():
            label = name.removesuffix("_enc")
            with pytest.raises(PurposeViolation):
                purpose.check_open(label)


def test_every_file_download_declares_its_use() -> None:
    """A new export (a CSV of an audience, an analytics report) must register its use and
    columns; the test above then holds it to the rule."""
    serving = set()
    for path in SRC.rglob("*.py"):
        if "simulator" in path.parts:
            continue
        text = path.read_text()
        if re.search(r"Content-Disposition|content_disposition\(", text):
            module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
            serving.add(module)
    declared = {e.where for e in EXPORTS.values()}
    missing = sorted(serving - declared)
    assert not missing, f"file downloads without a declared use: {missing}"
