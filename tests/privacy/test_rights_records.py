"""The map of where a subject's records are covers every table: a new table is linked to
contacts or account holders (and so exported and erased) or says why it is not."""

from __future__ import annotations

import connectx.models  # noqa: F401
from connectx.db.base import Base
from connectx.privacy.rights import Subject, records, who_receives


def _linked() -> dict[str, list[records.Link]]:
    out: dict[str, list[records.Link]] = {}
    for link in records.links():
        out.setdefault(link.table, []).append(link)
    return out


def test_every_table_is_linked_to_subjects_or_says_why_not() -> None:
    linked = _linked()
    missing = [
        t.name
        for t in Base.metadata.sorted_tables
        if t.name not in linked and t.name not in records.UNLINKED
    ]
    assert not missing, (
        f"tables {missing} have no link to a contact or user: add a foreign key, a Link in "
        "privacy/rights/records.py EXTRA, or a reason in UNLINKED"
    )
    both = sorted(set(linked) & set(records.UNLINKED))
    assert not both, f"{both} are linked and also listed as unlinked"
    gone = sorted(set(records.UNLINKED) - set(Base.metadata.tables))
    assert not gone, f"UNLINKED names tables that do not exist: {gone}"


def test_every_column_that_looks_like_a_reference_is_declared() -> None:
    declared = {(link.table, link.column) for link in records.links()}
    missing = [
        f"{t.name}.{c.name}"
        for t in Base.metadata.sorted_tables
        for c in t.columns
        if records.looks_like_reference(c)
        and (t.name, c.name) not in declared
        and (t.name, c.name) not in records.NOT_LINKS
    ]
    assert not missing, (
        f"{missing} look like references to people: declare a Link (EXTRA) or a reason (NOT_LINKS)"
    )
    for (table, column), _ in records.NOT_LINKS.items():
        assert column in Base.metadata.tables[table].c, f"NOT_LINKS: no {table}.{column}"


def test_every_table_about_a_subject_states_its_source() -> None:
    about = {link.table for link in records.links() if link.role == "subject"}
    missing = sorted(about - set(records.SOURCES))
    assert not missing, f"say where the data of {missing} comes from (records.SOURCES)"


def test_extra_links_name_real_columns() -> None:
    for link in records.EXTRA:
        assert link.column in Base.metadata.tables[link.table].c, link


def test_a_contact_is_found_in_its_tables_and_only_in_its_workspace() -> None:
    found = {f.table.name: f for f in records.tables_for(Subject.contact(4, 9))}
    assert {"contacts", "messages", "conversations", "media_files", "consent_records"} <= set(found)
    assert "users" not in found
    sql = str(found["messages"].where(Subject.contact(4, 9)).compile())
    assert "workspace_id" in sql and "contact_id" in sql


def test_recipients_are_those_of_the_subjects_kind() -> None:
    contact = {r.id for r in who_receives(Subject.contact(1, 2))}
    user = {r.id for r in who_receives(Subject.user(1))}
    assert "meta_whatsapp" in contact and "meta_whatsapp" not in user
    assert "mail_relay" in user and "mail_relay" not in contact
    for listed in who_receives(Subject.contact(1, 2)):
        assert listed.categories and all(c.startswith("user.") for c in listed.categories)
