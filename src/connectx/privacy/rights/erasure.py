"""Erasure (GDPR art. 17): delete or anonymise per the data inventory, destroy the subject's data
key (crypto-shredding: every copy, backups included, becomes unreadable), keep only what a legal
obligation or a legal hold requires, and say so.

* A workspace's end customer: retention's :func:`~connectx.retention.contacts.anonymise` (identity,
  message content, outbox payloads, media files, the key; the rows stay without anyone in them,
  so counts per day survive), the inventory sweep (:mod:`.sweep`, registered as one of its steps),
  the processed raw webhooks that mention them (and their days' keys, for earlier backups:
  :mod:`.raw_webhooks`), their archives.
* An account holder: the account row and what cascades from it, their mail, their archives, the
  inventory sweep, the key. Refused (409) while they are a workspace's only owner.

The erasure log is the key store (docs/backups.md): a restore re-applies the same anonymisation
(contacts) or deletion (accounts) to whatever an older backup brings back.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.db.session import after_commit
from connectx.kit.errors import Conflict
from connectx.models.account import User
from connectx.models.contact import Contact
from connectx.privacy.rights import notices, raw_webhooks
from connectx.privacy.rights import repository as repo
from connectx.privacy.rights.base import Kept, Outcome, Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.exports import delete_files
from connectx.privacy.rights.params import ErasureParams
from connectx.privacy.rights.subjects import ensure_exists, identity_of
from connectx.privacy.rights.sweep import Swept, sweep
from connectx.privacy.vault import Vault

META = (
    "WhatsApp (Meta) keeps its own copies of your messages, on your phone and as WhatsApp's "
    "terms describe; those are outside our reach. Delete the chat in WhatsApp, and ask Meta "
    "(whatsapp.com/contact) for what it holds."
)
BACKUPS = (
    "Copies in our backups can no longer be read (the key that sealed them is destroyed); if a "
    "backup is ever restored, this erasure is applied again. Backups rotate out within days."
)
KEPT_BY_LAW = {
    "consent_records": (
        "your consent decisions",
        "proof of what you agreed to and withdrew, which the law requires us to be able to show",
        "6 years after your last decision",
    ),
    "contact_preference_events": (
        "your WhatsApp marketing opt-outs",
        "proof that you stopped marketing messages, so they stay stopped",
        "6 years after your last decision",
    ),
    "audit_events": (
        "the audit log's entries about you",
        "the record of who did what with personal data; it names you by a number only, which no "
        "longer leads to you",
        "6 years",
    ),
    "policy_acceptances": (
        "when you accepted our policies",
        "proof of acceptance of the terms in force",
        "6 years",
    ),
}


async def _exports(db: AsyncSession, subject: Subject) -> int:
    rows = await repo.exports_of(db, subject)
    keys = [r.storage_key for r in rows if r.storage_key]
    for row in rows:
        row.storage_key = None
    if keys:

        async def remove() -> None:
            await delete_files(keys)

        after_commit(db, remove)
    return len(keys)


def _report(result: Result, swept: Swept) -> None:
    for table, n in sorted(swept.kept.items()):
        what, why, until = KEPT_BY_LAW.get(
            table, (table.replace("_", " "), "a legal obligation", None)
        )
        result.kept.append(Kept(f"{what} ({n})", why, "legal_obligation", until))
    for table, n in sorted({**swept.cleared, **swept.deleted}.items()):
        result.counts[table] = result.counts.get(table, 0) + n


async def _contact(
    db: AsyncSession, contact: Contact, subject: Subject, ctx: Context, identity: dict[str, str]
) -> Result:
    from connectx.retention import contacts as anonymiser

    result = Result(Right.ERASURE, subject.ref, Outcome.DONE)
    needles = [
        identity[k].lstrip("+") for k in ("user.contact.phone", "user.unique_id") if k in identity
    ]
    webhooks = await raw_webhooks.scrub(db, needles, actor=ctx.actor)
    archives = await _exports(db, subject)
    counts = await anonymiser.anonymise(db, [contact.id], actor=ctx.actor)
    swept = await sweep(db, subject)  # what anonymise's own step left: the kept-by-law counts
    result.counts.update({k: int(v) for k, v in counts.items()})
    result.counts.update(raw_webhooks=webhooks, archives=archives)
    _report(result, swept)
    result.done.append(
        "Who you are (number, WhatsApp user id, name, profile), what you wrote and were sent, "
        "and the files you sent were erased; the key that sealed them was destroyed, so no "
        "copy anywhere can be read again."
    )
    result.kept.append(
        Kept(
            "the conversation's outline (how many messages, when, in which direction)",
            "it no longer says anything about you: the business's counts and reports keep their "
            "totals",
            "not_personal",
        )
    )
    return result


async def _user(db: AsyncSession, user: User, subject: Subject, ctx: Context) -> Result:
    from connectx.backups.erasure import delete_subject_rows

    owned = await repo.sole_owner_of(db, user.id)
    if owned:
        raise Conflict(
            f"This account is the only owner of workspace(s) {', '.join(map(str, owned))}: "
            "make someone else an owner, or close the workspace, before erasing the account.",
            workspaces=owned,
        )
    result = Result(Right.ERASURE, subject.ref, Outcome.DONE)
    result.counts["archives"] = await _exports(db, subject)
    swept = await sweep(db, subject)
    result.counts["account_rows"] = await delete_subject_rows(db, None, subject.ref)
    _report(result, swept)
    result.done.append(
        "Your account, its sign-in records, sessions, memberships and e-mail were deleted; the "
        "key that sealed your name, e-mail, phone and address was destroyed, so no copy anywhere "
        "can be read again."
    )
    result.kept.append(
        Kept(
            "records of things you did in workspaces (messages sent, changes made)",
            "they belong to those businesses' records and name you by a number only, which no "
            "longer leads to you",
            "not_personal",
        )
    )
    result.kept.append(
        Kept(
            "sign-in attempt counters",
            "keyed hashes for brute-force protection, deleted after 90 days",
            "security",
            "90 days",
        )
    )
    return result


async def run(db: AsyncSession, subject: Subject, params: ErasureParams, ctx: Context) -> Result:
    del params
    found = await ensure_exists(db, subject)
    holds = await repo.active_holds(db, subject)
    if holds:
        result = Result(Right.ERASURE, subject.ref, Outcome.REFUSED)
        result.kept.append(
            Kept(
                "all of your data",
                "a legal hold (a court case, an investigation or a regulator's inquiry) requires "
                "us to keep it; it will be erased when the hold ends, if you still wish",
                "legal_hold",
            )
        )
        await ctx.audit(db, Right.ERASURE, "erasure_refused", subject, holds=holds)
        return result
    identity = await identity_of(db, found)
    if isinstance(found, Contact):
        result = await _contact(db, found, subject, ctx, identity)
    else:
        result = await _user(db, found, subject, ctx)
        await Vault(db).destroy_subject(None, subject.ref, actor=ctx.actor)
    await notices.notify(db, subject, Right.ERASURE, ctx, result, identifiers=identity)
    if result.kept:
        result.outcome = Outcome.PARTIAL
    result.notices.append(BACKUPS)
    if subject.kind == "contact":
        result.notices.append(META)
    await ctx.audit(
        db,
        Right.ERASURE,
        "right_executed",
        subject,
        **{k: v for k, v in sorted(result.counts.items()) if v},
    )
    return result
