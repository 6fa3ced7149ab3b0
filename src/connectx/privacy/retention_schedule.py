"""How long each retention class keeps data: the one place these periods are defined.

Every column declares a :class:`~connectx.kit.inventory.Retention` class; this schedule says what
that class means (a period counted from an event). The record of processing prints it, and the
retention jobs delete or anonymise by it. Changing a period here changes both.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectx.kit.inventory import Retention


@dataclass(frozen=True)
class Period:
    days: int | None  # None: as long as the thing it belongs to exists
    after: str  # the event the period is counted from
    then: str  # what happens when it ends
    why: str
    # The bounds an operator (CONNECTX_RETENTION_DAYS) or, when ``workspace_override``, a
    # workspace may choose within (docs/retention.md); ``lifetime`` describes ``days=None``
    # when ``after`` names the event a chosen period counts from.
    min_days: int | None = None
    max_days: int | None = None
    workspace_override: bool = False
    lifetime: str | None = None

    def describe(self) -> str:
        if self.days is None:
            return f"while {self.lifetime or self.after}; then {self.then}"
        return f"{_span(self.days)} after {self.after}; then {self.then}"

    @property
    def adjustable(self) -> bool:
        return self.min_days is not None and self.max_days is not None


def _span(days: int) -> str:
    if days % 365 == 0:
        years = days // 365
        return f"{years} year" + ("s" if years != 1 else "")
    return f"{days} day" + ("s" if days != 1 else "")


SCHEDULE: dict[Retention, Period] = {
    Retention.ACCOUNT_LIFETIME: Period(
        30,
        "the account is closed",
        "deleted, the subject key destroyed",
        "the contract with the account holder; 30 days to undo a mistaken closure",
        min_days=7,
        max_days=90,
    ),
    Retention.WORKSPACE_LIFETIME: Period(
        30,
        "the workspace is closed",
        "deleted, the workspace's subject keys destroyed",
        "the contract with the business; 30 days to export before deletion",
        min_days=7,
        max_days=90,
    ),
    Retention.SESSION: Period(
        30,
        "the session ends (sign-out, expiry or revocation)",
        "deleted",
        "security: showing recent sign-ins and investigating account takeover",
        min_days=1,
        max_days=365,
    ),
    Retention.SHORT_LIVED_TOKEN: Period(
        7,
        "the token expires or is used",
        "deleted",
        "a one-time link is useless after use",
        min_days=1,
        max_days=90,
    ),
    Retention.SECURITY_LOG: Period(
        90,
        "the attempt",
        "deleted",
        "brute-force limits and fraud monitoring",
        min_days=30,
        max_days=365,
    ),
    Retention.MAIL_OUTBOX: Period(
        30,
        "the message is sent (or given up)",
        "deleted",
        "delivery troubleshooting; the operator's local outbox",
        min_days=1,
        max_days=365,
    ),
    Retention.JOBS: Period(
        14,
        "the job finishes",
        "deleted",
        "operations: debugging failed background work",
        min_days=1,
        max_days=365,
    ),
    Retention.CONSENT_PROOF: Period(
        6 * 365,
        "the person's last consent decision, once they are no longer a customer or user (while "
        "they are, their current choices are derived from these records)",
        "deleted",
        "legal obligation: proving consent (or its withdrawal) for the limitation period",
        min_days=3 * 365,
        max_days=10 * 365,
    ),
    Retention.AUDIT_FLOOR: Period(
        6 * 365,
        "the event",
        "deleted, oldest first",
        "legal obligation and security: who did what to personal data, provably",
        min_days=3 * 365,
        max_days=10 * 365,
    ),
    Retention.KEY_MATERIAL: Period(
        None,
        "the subject's data exists",
        "the key material is destroyed (crypto-shredding); the empty key row stays as a marker",
        "encryption at rest; destroying a key erases every copy of the data, backups included",
    ),
    Retention.USAGE_LOG: Period(
        180,
        "the sign-in",
        "deleted",
        "security: recent sign-ins and devices, new-device alerts, anomaly detection (policy 2.2)",
        min_days=30,
        max_days=730,
    ),
    Retention.MESSAGE_CONTENT: Period(
        None,
        "the message was sent",
        "the content (text, media references, the raw message) is removed; the message's "
        "metadata stays for the conversation's history",
        "the contract with the business: the conversation history its agents work from",
        min_days=7,
        max_days=3650,
        workspace_override=True,
        lifetime="the workspace exists, unless the workspace or the operator sets a period",
    ),
    Retention.CONTACT_INACTIVITY: Period(
        3 * 365,
        "the contact's last activity (a message either way, a queued send, a consent decision "
        "or a change to the contact)",
        "anonymised: name, number and profile cleared, message content removed, the contact's "
        "key destroyed; conversations and message counts stay, without anyone in them",
        "the contract with the business: people it is still in touch with",
        min_days=180,
        max_days=10 * 365,
        workspace_override=True,
    ),
    Retention.CLOSED_REQUESTS: Period(
        3 * 365,
        "the request is closed (answered, refused or withdrawn)",
        "deleted; the audit log keeps that it was handled",
        "legal obligation: showing each privacy request was answered in time",
        min_days=365,
        max_days=10 * 365,
    ),
}


def period_of(retention: Retention) -> Period:
    """The period in force: the default above, or the operator's choice within its bounds
    (``CONNECTX_RETENTION_DAYS='{"security_log": 60}'``; docs/retention.md)."""
    from dataclasses import replace

    from connectx.config import get_settings

    period = SCHEDULE[retention]
    chosen = get_settings().retention_days.get(str(retention))
    if chosen is None:
        return period
    if not period.adjustable:
        raise ValueError(f"CONNECTX_RETENTION_DAYS: the {retention} period cannot be changed")
    assert period.min_days is not None and period.max_days is not None
    if not period.min_days <= int(chosen) <= period.max_days:
        raise ValueError(
            f"CONNECTX_RETENTION_DAYS: {retention} must be between {period.min_days} and "
            f"{period.max_days} days, not {chosen}"
        )
    return replace(period, days=int(chosen))
