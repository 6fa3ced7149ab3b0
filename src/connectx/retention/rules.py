"""What retention removes, table by table: one :class:`Rule` per table (or per part of a table).

A rule names its retention class (the period comes from the schedule, the operator's settings and,
for classes that allow it, the workspace's own choice), the moment the period counts from
(``anchor``), which rows are finished at all (``ready``), and whether expired rows are deleted or
anonymised (``columns`` set to NULL). ``workspace`` and ``subject`` say whose data a row is, so
legal holds can protect it.

Other subsystems plug their tables in with :func:`register` (at import of their module listed in
:data:`RULE_MODULES`, or of this one); ``tests/retention/test_rules.py`` fails when a table whose
retention class has a finite period has no rule and no recorded reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, exists, func, literal, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from connectx.kit.inventory import Retention
from connectx.models.account import ActionToken, LoginAttempt, UserSession
from connectx.models.contact import Contact, ContactPreferenceEvent
from connectx.models.job import Job
from connectx.models.mail import MailMessage
from connectx.models.media import MediaFile
from connectx.models.message import Message
from connectx.models.security import SecurityNotice, SignInEvent
from connectx.models.webhook_event import FAILED, MALFORMED, PROCESSED, WebhookEvent
from connectx.models.workspace import Invitation

DELETE = "delete"
ANONYMISE = "anonymise"

# Runs after a batch's rows are gone, in the batch's transaction, with the ids it removed.
AfterBatch = Callable[[AsyncSession, list[int]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Rule:
    name: str
    table: Any  # a Table (Model.__table__)
    retention: Retention
    anchor: Any  # a SQL expression (column or function of columns)
    ready: Any = None  # a SQL condition, or None
    action: str = DELETE
    columns: tuple[str, ...] = ()  # anonymise: set these to NULL
    workspace: Any = None  # the column holding the workspace id, or None
    subject: Any = None  # a SQL expression giving "user:12", or None
    after_batch: AfterBatch | None = None
    # Runs before a batch's rows change, in its transaction (e.g. to note files to delete).
    before_batch: AfterBatch | None = None
    describe: str = ""
    # Further conditions for "expired" that need the cutoff (no activity elsewhere since then).
    idle: Callable[[datetime], ColumnElement[bool]] | None = None

    @property
    def pk(self) -> Any:
        [key] = list(self.table.primary_key.columns)
        return key

    def ended_before(self, cutoff: datetime) -> list[ColumnElement[bool]]:
        """The row's period, counted from its anchor (and its activity), ended at ``cutoff``."""
        conditions: list[ColumnElement[bool]] = [self.anchor.is_not(None), self.anchor < cutoff]
        if self.idle is not None:
            conditions.append(self.idle(cutoff))
        return conditions

    def pending(self) -> ColumnElement[bool] | None:
        """Rows still holding something to remove (anonymise rules)."""
        if self.action != ANONYMISE:
            return None
        return or_(*(self.table.c[name].is_not(None) for name in self.columns))


_rules: dict[str, Rule] = {}
# Tables deliberately without a rule, with the reason (the rules test reads this).
EXEMPT: dict[str, str] = {}


def register(rule: Rule) -> Rule:
    if rule.action == ANONYMISE and not rule.columns:
        raise ValueError(f"retention rule {rule.name}: anonymise needs columns")
    for name in rule.columns:
        if name not in rule.table.c or not rule.table.c[name].nullable:
            raise ValueError(f"retention rule {rule.name}: {name} is not a nullable column")
    _rules[rule.name] = rule
    return rule


def exempt(table: str, reason: str) -> None:
    EXEMPT[table] = reason


def rules() -> list[Rule]:
    return [_rules[name] for name in sorted(_rules, key=_order)]


def rule(name: str) -> Rule:
    return _rules[name]


def _order(name: str) -> tuple[int, str]:
    # Children before parents is not needed (foreign keys cascade or set null); keep the
    # biggest tables of system data last so a short run still clears personal data first.
    return (1 if name in ("jobs", "webhook_events") else 0, name)


def ref(prefix: str, column: Any) -> ColumnElement[Any]:
    """``'user:' || user_id`` in SQL: the subject id a legal hold names."""
    return literal(f"{prefix}:") + cast(column, String)


# -- today's tables ------------------------------------------------------------------------------

register(
    Rule(
        "login_attempts",
        LoginAttempt.__table__,
        Retention.SECURITY_LOG,
        anchor=LoginAttempt.created_at,
        describe="sign-in attempts (hashed keys)",
    )
)
register(
    Rule(
        "user_sessions",
        UserSession.__table__,
        Retention.SESSION,
        anchor=func.coalesce(UserSession.revoked_at, UserSession.expires_at),
        subject=ref("user", UserSession.user_id),
        describe="ended sign-in sessions",
    )
)
register(
    Rule(
        "action_tokens",
        ActionToken.__table__,
        Retention.SHORT_LIVED_TOKEN,
        anchor=func.coalesce(ActionToken.used_at, ActionToken.expires_at),
        subject=ref("user", ActionToken.user_id),
        describe="used or expired one-time links",
    )
)
register(
    Rule(
        "mail_messages",
        MailMessage.__table__,
        Retention.MAIL_OUTBOX,
        anchor=func.coalesce(MailMessage.sent_at, MailMessage.created_at),
        ready=MailMessage.status.in_(("sent", "local", "failed", "erased")),
        subject=MailMessage.subject,
        describe="sent or abandoned e-mail",
    )
)
register(
    Rule(
        "jobs",
        Job.__table__,
        Retention.JOBS,
        anchor=Job.finished_at,
        ready=Job.status.in_(("done", "failed")),
        describe="finished background jobs",
    )
)
register(
    Rule(
        "sign_in_events",
        SignInEvent.__table__,
        Retention.USAGE_LOG,
        anchor=SignInEvent.at,
        subject=ref("user", SignInEvent.user_id),
        describe="sign-in and device records",
    )
)
register(
    Rule(
        "security_notices",
        SecurityNotice.__table__,
        Retention.SECURITY_LOG,
        anchor=SecurityNotice.created_at,
        workspace=SecurityNotice.workspace_id,
        subject=SecurityNotice.subject,
        describe="security notices to workspace owners",
    )
)


async def destroy_keys(db: AsyncSession, keys: list[tuple[int | None, str]]) -> dict[str, Any]:
    """Destroy the subject keys ``(workspace id or None, "invitation:7")`` that still hold
    material. Audited with the key ids so a key-store restore re-destroys them."""
    from connectx.audit import service as audit
    from connectx.privacy.vault import Vault

    vault = Vault(None)
    destroyed: list[int] = []
    for scope, subject in keys:
        info = await vault.key_info(scope, subject)
        if info is not None and not info.destroyed:
            destroyed.append(info.id)
            await vault.destroy_subject(scope, subject)
    if destroyed:
        await audit.record(
            db,
            actor="system",
            action="keys.subject_destroyed",
            data={"key_ids": destroyed, "reason": "retention", "count": len(destroyed)},
        )
    return {"keys_destroyed": len(destroyed)}


async def _destroy_invitation_keys(db: AsyncSession, ids: list[int]) -> dict[str, Any]:
    """An invitation's address (and its mail) is sealed under ``invitation:<id>``: destroy those
    keys with the rows."""
    return await destroy_keys(db, [(None, f"invitation:{i}") for i in ids])


register(
    Rule(
        "invitations",
        Invitation.__table__,
        Retention.SHORT_LIVED_TOKEN,
        anchor=func.coalesce(Invitation.accepted_at, Invitation.revoked_at, Invitation.expires_at),
        workspace=Invitation.workspace_id,
        subject=ref("invitation", Invitation.id),
        after_batch=_destroy_invitation_keys,
        describe="accepted, revoked or expired invitations",
    )
)

# -- WhatsApp inbound (docs/retention.md) ----------------------------------------------------------

register(
    Rule(
        "webhook_events",
        WebhookEvent.__table__,
        Retention.JOBS,
        # Finished one way or another: processed (unrouted updates included), flagged malformed,
        # or parked as failed; counted from then (a retried event starts again). Pending events,
        # those held for a suspended workspace too, are still work to do.
        anchor=WebhookEvent.processed_at,
        ready=WebhookEvent.status.in_((PROCESSED, MALFORMED, FAILED)),
        describe="processed, malformed or failed raw webhooks",
    )
)
register(
    Rule(
        "message_content",
        Message.__table__,
        Retention.MESSAGE_CONTENT,
        anchor=Message.sent_at,
        action=ANONYMISE,
        columns=(
            "body_enc",
            "content_enc",
            "raw_enc",
            "reaction_enc",
            "media_id",
            "media_mime_type",
            "media_sha256",
        ),
        workspace=Message.workspace_id,
        subject=ref("contact", Message.contact_id),
        describe="message text, structured content, raw message and media references",
    )
)


async def _delete_media_files(db: AsyncSession, ids: list[int]) -> dict[str, Any]:
    """The sealed files of the media rows about to be cleared: deleted once the batch commits
    (a rolled-back batch leaves them, and its rows, as they were)."""
    from sqlalchemy import select

    from connectx.db.session import after_commit
    from connectx.media import store

    keys = [
        k
        for k in (
            await db.execute(select(MediaFile.storage_key).where(MediaFile.id.in_(ids)))
        ).scalars()
        if k
    ]

    async def remove() -> None:
        for key in keys:
            store.delete(key)

    if keys:
        after_commit(db, remove)
    return {"files": len(keys)}


register(
    Rule(
        "media_files",
        MediaFile.__table__,
        Retention.MESSAGE_CONTENT,
        anchor=MediaFile.created_at,
        action=ANONYMISE,
        columns=("storage_key", "sha256"),
        workspace=MediaFile.workspace_id,
        subject=ref("contact", MediaFile.contact_id),
        before_batch=_delete_media_files,
        describe="downloaded media files (the sealed file is deleted)",
    )
)

# -- contacts without activity (connectx.retention.contacts) -------------------------------------


async def _anonymise_contacts(db: AsyncSession, ids: list[int]) -> dict[str, Any]:
    from connectx.retention import contacts

    return dict(await contacts.anonymise(db, ids))


def _idle_contact(cutoff: datetime) -> ColumnElement[bool]:
    from connectx.retention import contacts

    return contacts.idle(cutoff)


register(
    Rule(
        "contacts",
        Contact.__table__,
        Retention.CONTACT_INACTIVITY,
        anchor=Contact.created_at,
        idle=_idle_contact,
        action=ANONYMISE,
        columns=("phone_index", "phone_enc", "bsuid_index", "bsuid_enc", "name_enc", "profile_enc"),
        workspace=Contact.workspace_id,
        subject=ref("contact", Contact.id),
        before_batch=_anonymise_contacts,
        describe="contacts without activity: identity, message content, media, data key",
    )
)

exempt("periodic_runs", "one row per schedule, rewritten on every run")
exempt("consent_records", "append-only: pruned per subject by connectx.retention.ledgers")
exempt("policy_acceptances", "append-only proof of acceptance (consent_proof)")
exempt("audit_events", "hash-chained: pruned oldest first, re-anchored, by retention.ledgers")
exempt("ledger_prunes", "the record of what was pruned from the append-only tables")
exempt("legal_holds", "kept as the record of holds (audit floor)")
exempt("policy_versions", "published legal documents are kept (audit floor)")

register(
    Rule(
        "contact_preference_events",
        ContactPreferenceEvent.__table__,
        Retention.CONSENT_PROOF,
        anchor=ContactPreferenceEvent.occurred_at,
        # Proof of a WhatsApp opt-out is kept while the person is an identifiable contact.
        ready=~exists().where(
            Contact.id == ContactPreferenceEvent.contact_id,
            or_(Contact.phone_index.is_not(None), Contact.bsuid_index.is_not(None)),
        ),
        workspace=ContactPreferenceEvent.workspace_id,
        subject=ref("contact", ContactPreferenceEvent.contact_id),
        describe="WhatsApp opt-outs of contacts who are gone",
    )
)
exempt(
    "consent_suppressions",
    "keyed hashes of opted-out addresses, tied to no contact: kept while the opt-out stands, "
    "after the contact and its ledger records are gone",
)

# -- data-subject requests (docs/privacy-requests.md) --------------------------------------------


async def _destroy_request_keys(db: AsyncSession, ids: list[int]) -> dict[str, Any]:
    """A request's personal fields are sealed under ``dsr:<id>`` in its workspace's scope, its
    mail in the platform scope: destroy those keys with the rows."""
    from sqlalchemy import select

    from connectx.models.data_request import DataRequest

    stmt = select(DataRequest.id, DataRequest.workspace_id).where(DataRequest.id.in_(ids))
    rows = (await db.execute(stmt)).all()
    return await destroy_keys(
        db, [(scope, f"dsr:{rid}") for rid, ws in rows for scope in sorted({ws, None}, key=str)]
    )


def _request_rules() -> None:
    from connectx.models.data_request import DataRequest, RequestDialog

    register(
        Rule(
            "data_requests",
            DataRequest.__table__,
            Retention.CLOSED_REQUESTS,
            anchor=DataRequest.closed_at,
            ready=DataRequest.closed_at.is_not(None),
            workspace=DataRequest.workspace_id,
            subject=DataRequest.subject,
            before_batch=_destroy_request_keys,
            describe="closed data-subject requests (their own key is destroyed)",
        )
    )
    register(
        Rule(
            "data_request_dialogs",
            RequestDialog.__table__,
            Retention.SHORT_LIVED_TOKEN,
            anchor=RequestDialog.expires_at,
            workspace=RequestDialog.workspace_id,
            subject=ref("contact", RequestDialog.contact_id),
            describe="unfinished WhatsApp dialogs that file a privacy request",
        )
    )


_request_rules()
exempt("data_request_events", "a request's timeline, deleted with it (foreign key cascade)")

# The rights tables (imported last: it registers with this module).
import connectx.privacy.rights.retention_rules  # noqa: E402, F401
