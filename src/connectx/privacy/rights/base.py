"""What every executor of a data-subject right shares: who the subject is, what a request asks
(its parameters), and what was done about it (the result).

Executors run inside the caller's transaction (house rule 4: they never commit) and audit every
step there. They are called by the requests subsystem once a request is verified and, for a
workspace's end customers, approved by the workspace (docs/privacy-rights.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from connectx.kit.errors import DomainError


class Right(StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    WITHDRAWAL = "withdrawal"


class Outcome(StrEnum):
    DONE = "done"  # carried out in full
    PARTIAL = "partial"  # carried out; some data kept (see ``kept``)
    RECORDED = "recorded"  # recorded for the controller's decision (objection, not marketing)
    REFUSED = "refused"  # not carried out (a legal hold, say); ``kept`` says why
    NOTHING = "nothing"  # nothing to do (no data, already in that state)


@dataclass(frozen=True)
class Subject:
    """A data subject: a workspace's end customer (a contact, decided by the workspace) or an
    account holder (a user, decided by ConnectX)."""

    kind: Literal["contact", "user"]
    id: int
    workspace_id: int | None = None

    @classmethod
    def contact(cls, workspace_id: int, contact_id: int) -> Subject:
        return cls("contact", contact_id, workspace_id)

    @classmethod
    def user(cls, user_id: int) -> Subject:
        return cls("user", user_id, None)

    def __post_init__(self) -> None:
        if self.kind == "contact" and self.workspace_id is None:
            raise ValueError("a contact subject needs its workspace id")
        if self.kind == "user" and self.workspace_id is not None:
            raise ValueError("an account holder belongs to no workspace")

    @property
    def ref(self) -> str:
        """The pseudonymous id used by the vault, the ledger and the audit log."""
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Kept:
    """Something not erased, changed or handed over, and why (told to the subject)."""

    what: str  # "consent records (3)"
    why: str  # a sentence a person understands
    basis: str  # "legal_obligation", "legal_hold", "security", "other_people", ...
    until: str | None = None  # how long, when known ("6 years after the last decision")


@dataclass
class Result:
    """What an executor did. Stored with the request (``to_dict``) and shown to the subject and
    to the people deciding the request."""

    right: Right
    subject: str  # Subject.ref
    outcome: Outcome
    done: list[str] = field(default_factory=list)  # sentences: what was done
    kept: list[Kept] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what else the subject must be told
    artifact_id: int | None = None  # a download (access, portability)
    counts: dict[str, int] = field(default_factory=dict)  # records per table, changed rows, ...
    recipients: list[str] = field(default_factory=list)  # recipient ids notified (art. 19)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["right"] = str(self.right)
        out["outcome"] = str(self.outcome)
        return out


def invalid_params(right: Right, errors: list[dict[str, Any]]) -> DomainError:
    from connectx.kit.errors import InvalidInput

    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ())) or "parameters"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return InvalidInput(
        f"The parameters of this {right} request are not valid: {'; '.join(parts)}.",
        field="params",
    )
