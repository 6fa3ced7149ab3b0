"""Where a subject's records are: every table of the data database, read from the schema and the
data inventory, says how its rows point at a contact or an account holder.

* A foreign key to ``contacts.id`` or ``users.id`` is a link by itself.
* Columns holding a reference string ("contact:5", "user:12") or an id without a foreign key are
  declared below (:data:`EXTRA`), with whether the row is *about* the subject or records what
  the subject *did* (an actor).
* A table with no link is listed in :data:`UNLINKED` with the reason.

``tests/privacy/test_rights_records.py`` fails when a table is neither linked nor listed, when a
column that looks like a reference (``subject``, ``actor``, ``*_by``, ``user_id``,
``contact_id``) is not declared, and when a linked table has no :data:`SOURCES` entry: a new table
is covered by access and erasure, or the suite says why not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Column, ColumnElement, Table, and_, or_, select

from connectx.kit.inventory import Declaration, declaration_of
from connectx.privacy.rights.base import Subject

Role = Literal["subject", "actor"]
Kind = Literal["contact", "user"]


@dataclass(frozen=True)
class Link:
    """A column of ``table`` pointing at a subject of ``kind``: by id, or by reference string
    (``ref=True``). ``role``: the row is about the subject, or records what they did."""

    table: str
    column: str
    kind: Kind
    ref: bool = False
    role: Role = "subject"
    # A condition of its own instead of ``column == id`` (rows reached through another table).
    where: Callable[[Table, Subject], ColumnElement[bool]] | None = None


def _status_events_of(table: Table, subject: Subject) -> ColumnElement[bool]:
    from connectx.models.message import Message

    wamids = select(Message.wamid).where(
        Message.contact_id == subject.id, Message.workspace_id == subject.workspace_id
    )
    return table.c.wamid.in_(wamids)


# Links the schema cannot show (no foreign key).
EXTRA: tuple[Link, ...] = (
    Link("audit_events", "subject", "contact", ref=True),
    Link("audit_events", "subject", "user", ref=True),
    Link("audit_events", "actor", "user", ref=True, role="actor"),
    Link("audit_events", "actor", "contact", ref=True, role="actor"),
    Link("consent_records", "subject", "contact", ref=True),
    Link("consent_records", "subject", "user", ref=True),
    Link("mail_messages", "subject", "user", ref=True),
    Link("security_notices", "subject", "user", ref=True),
    Link("legal_holds", "subject", "contact", ref=True),
    Link("legal_holds", "subject", "user", ref=True),
    Link("policy_acceptances", "user_id", "user"),
    Link("message_status_events", "wamid", "contact", where=_status_events_of),
    Link("processing_restrictions", "subject", "contact", ref=True),
    Link("processing_restrictions", "subject", "user", ref=True),
    Link("privacy_exports", "subject", "contact", ref=True),
    Link("privacy_exports", "subject", "user", ref=True),
    Link("recipient_notices", "subject", "contact", ref=True),
    Link("recipient_notices", "subject", "user", ref=True),
    Link("data_requests", "subject", "contact", ref=True),
    Link("data_requests", "subject", "user", ref=True),
    Link("notifications", "actor", "user", ref=True, role="actor"),
)

# Columns that look like references but are not (or point at something that is not a person).
NOT_LINKS: dict[tuple[str, str], str] = {
    ("consent_records", "actor"): "who recorded a decision; the subject column says whose it is",
    ("outbox_messages", "created_by"): "the agent or key that sent; the contact_id says to whom",
    ("channels", "created_by"): "who connected a business number (business records)",
    ("legal_holds", "placed_by"): "the operator who placed a hold",
    ("legal_holds", "released_by"): "the operator who released a hold",
    ("retention_overrides", "set_by"): "who chose a workspace's retention period",
    ("security_notices", "resolved_by"): "the owner who resolved a notice",
    ("workspace_suspensions", "suspended_by"): "the operator",
    ("workspace_suspensions", "lifted_by"): "the operator",
    ("policy_versions", "published_by"): "the operator who published a policy version",
    ("consent_keywords", "updated_by"): "who set a workspace's opt-out keywords",
    ("processing_restrictions", "placed_by"): "who restricted (the subject column says whose)",
    ("processing_restrictions", "lifted_by"): "who lifted a restriction",
    ("privacy_exports", "created_by"): "who had an archive made",
    ("recipient_endpoints", "updated_by"): "the operator",
    ("data_requests", "filed_by"): "who filed a request (the subject column says whose it is)",
    ("data_requests", "decided_by"): "the admin or operator who decided a request",
    ("data_request_events", "actor"): "who took a step of a request (the request says whose)",
    ("privacy_settings", "updated_by"): "who changed a workspace's privacy-request settings",
    ("ledger_prunes", "subject"): "whose consent records retention deleted (the proof it did)",
    ("ledger_prunes", "actor"): "the process or operator that pruned",
}

UNLINKED: dict[str, str] = {
    "workspaces": "businesses, not people",
    "channels": "the business's own numbers and tokens",
    "meta_apps": "Meta app credentials of businesses",
    "template_updates": "Meta's notices about the business's templates",
    "wa_templates": "the business's message templates",
    "channel_sending": "sending state of a business number",
    "jobs": "background work: arguments are ids only",
    "config_generations": "a random number per kind of cached configuration, nobody's data",
    "sweep_cursors": "the last id a background sweep went through, nobody's data",
    "webhook_events": (
        "raw webhooks of many people at once, sealed under a day key and deleted 14 days after "
        "processing; erasure clears the processed ones that mention the subject"
    ),
    "login_attempts": "keyed hashes for brute-force limits, deleted after 90 days",
    "periodic_runs": "schedule of background work",
    "retention_overrides": "a workspace's retention choices",
    "workspace_suspensions": "operator decisions about a business",
    "policy_versions": "published policy documents",
    "consent_keywords": "a workspace's WhatsApp opt-out keywords and confirmations",
    "consent_suppressions": (
        "keyed hashes of addresses that opted out, tied to no contact: kept after erasure so the "
        "opt-out stays effective (docs/consent.md, suppression list)"
    ),
    "recipient_endpoints": "where recipients take notices (operator configuration)",
    "data_request_events": "the steps of a request (ids and short codes), reached through it",
    "privacy_settings": "a workspace's privacy-center handle and WhatsApp keywords",
    "ledger_prunes": "retention's record of deletions from the append-only tables (ids, counts)",
    "labels": "the business's own tags",
    "teams": "the business's own teams (their members are in team_members)",
    "inbox_routing": "a business number's assignment rule",
    "conversation_labels": "tags on a conversation; the conversation says whose it is",
}

# Where each linked table's data comes from (the access summary states it, GDPR art. 15(1)(g)).
SOURCES: dict[str, str] = {
    "contacts": "Your WhatsApp profile as Meta passes it to the business when you write "
    "(number, user id, profile name), and corrections you asked for",
    "conversations": "Created by ConnectX when you write to the business or it writes to you",
    "messages": "You (what you sent) and the business (what it sent you), through WhatsApp",
    "message_status_events": "Meta (delivery and read receipts of messages to you)",
    "media_files": "You: files you sent through WhatsApp, downloaded from Meta",
    "outbox_messages": "The business: messages queued for you",
    "contact_preference_events": "Meta: your WhatsApp setting to stop or resume marketing",
    "consent_records": "You: each consent decision you made, and where you made it",
    "audit_events": "ConnectX: the record of who did what with your data",
    "legal_holds": "ConnectX's operator: holds placed for legal reasons",
    "users": "You, at sign-up and in your account settings",
    "user_sessions": "Your browser, when you signed in",
    "action_tokens": "ConnectX: one-time links sent to you",
    "recovery_codes": "ConnectX: two-factor recovery codes made for you",
    "sign_in_events": "Your browser and network, when you signed in",
    "memberships": "The workspaces you joined",
    "mail_messages": "ConnectX: e-mail sent to you",
    "security_notices": "ConnectX: security notices about your account",
    "policy_acceptances": "You: when you accepted a policy version",
    "processing_restrictions": "You: restrictions of processing you asked for",
    "privacy_exports": "ConnectX: copies of your data made at your request",
    "recipient_notices": "ConnectX: notices to recipients about your requests",
    "data_requests": "You (or the business on your behalf): your privacy requests and how they "
    "were answered",
    "data_request_dialogs": "You: where you are in filing a privacy request on WhatsApp",
    "notes": "The business's staff: internal notes on conversations with you",
    "contact_name_tokens": "ConnectX: keyed hashes of the words of your name, for search",
    "team_members": "The workspace's admins: the teams you were put in",
    "conversation_reads": "You: how far you read each conversation",
    "notifications": "ConnectX: notifications for you (conversations assigned to you)",
    "inbox_preferences": "You: your inbox e-mail choices",
    "canned_responses": "The business: saved replies (you as their author)",
}

_REF_NAMES = ("subject", "actor", "user_id", "contact_id")


def _data_tables() -> list[Table]:
    import connectx.models  # noqa: F401  (registers every table)
    from connectx.db.base import Base

    return list(Base.metadata.sorted_tables)


def _foreign_links(table: Table) -> list[Link]:
    out = []
    for col in table.columns:
        for fk in col.foreign_keys:
            target = fk.column.table.name
            if target == "contacts":
                out.append(Link(table.name, col.name, "contact"))
            elif target == "users":
                role: Role = "subject" if col.name == "user_id" else "actor"
                out.append(Link(table.name, col.name, "user", role=role))
    if table.name == "contacts":
        out.append(Link("contacts", "id", "contact"))
    if table.name == "users":
        out.append(Link("users", "id", "user"))
    return out


def links() -> list[Link]:
    """Every link of every data table (foreign keys, the table's own id, and :data:`EXTRA`)."""
    found = [link for table in _data_tables() for link in _foreign_links(table)]
    return found + list(EXTRA)


def looks_like_reference(column: Column[Any]) -> bool:
    name = column.name
    return name in _REF_NAMES or name.endswith("_by")


@dataclass(frozen=True)
class Found:
    """One table's rows about a subject: the condition that selects them and the links used."""

    table: Table
    links: tuple[Link, ...]

    @property
    def about(self) -> bool:
        """Whether the rows are about the subject (not only things the subject did)."""
        return any(link.role == "subject" for link in self.links)

    def where(self, subject: Subject) -> ColumnElement[bool]:
        conds = []
        for link in self.links:
            if link.where is not None:
                conds.append(link.where(self.table, subject))
            else:
                col = self.table.c[link.column]
                conds.append(col == (subject.ref if link.ref else subject.id))
        cond: ColumnElement[bool] = or_(*conds)
        if subject.workspace_id is not None and "workspace_id" in self.table.c:
            cond = and_(self.table.c.workspace_id == subject.workspace_id, cond)
        return cond

    def declarations(self) -> dict[str, Declaration]:
        out = {}
        for col in self.table.columns:
            decl = declaration_of(col)
            if decl is not None:
                out[col.name] = decl
        return out


def tables_for(subject: Subject) -> list[Found]:
    """The tables holding rows linked to a subject of this kind, in dependency order."""
    by_table: dict[str, list[Link]] = {}
    for link in links():
        if link.kind == subject.kind:
            by_table.setdefault(link.table, []).append(link)
    return [
        Found(table, tuple(by_table[table.name]))
        for table in _data_tables()
        if table.name in by_table
    ]
