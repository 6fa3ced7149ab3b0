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

    def describe(self) -> str:
        if self.days is None:
            return f"while {self.after}; then {self.then}"
        return f"{_span(self.days)} after {self.after}; then {self.then}"


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
    ),
    Retention.WORKSPACE_LIFETIME: Period(
        30,
        "the workspace is closed",
        "deleted, the workspace's subject keys destroyed",
        "the contract with the business; 30 days to export before deletion",
    ),
    Retention.SESSION: Period(
        30,
        "the session ends (sign-out, expiry or revocation)",
        "deleted",
        "security: showing recent sign-ins and investigating account takeover",
    ),
    Retention.SHORT_LIVED_TOKEN: Period(
        7, "the token expires or is used", "deleted", "a one-time link is useless after use"
    ),
    Retention.SECURITY_LOG: Period(
        90, "the attempt", "deleted", "brute-force limits and fraud monitoring"
    ),
    Retention.MAIL_OUTBOX: Period(
        30,
        "the message is sent (or given up)",
        "deleted",
        "delivery troubleshooting; the operator's local outbox",
    ),
    Retention.JOBS: Period(
        14, "the job finishes", "deleted", "operations: debugging failed background work"
    ),
    Retention.CONSENT_PROOF: Period(
        6 * 365,
        "the subject's last decision for that purpose",
        "deleted",
        "legal obligation: proving consent (or its withdrawal) for the limitation period",
    ),
    Retention.AUDIT_FLOOR: Period(
        6 * 365,
        "the event",
        "deleted, oldest first",
        "legal obligation and security: who did what to personal data, provably",
    ),
    Retention.KEY_MATERIAL: Period(
        None,
        "the subject's data exists",
        "the key material is destroyed (crypto-shredding); the empty key row stays as a marker",
        "encryption at rest; destroying a key erases every copy of the data, backups included",
    ),
}


def period_of(retention: Retention) -> Period:
    return SCHEDULE[retention]
