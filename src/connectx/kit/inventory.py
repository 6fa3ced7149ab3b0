"""Data inventory as code.

Every persisted column declares what it holds (a hierarchical data category), why (purpose),
on what lawful basis (the policy's section 5) and for how long (a retention class). Models declare
columns with :func:`column`; the record of processing is generated from these declarations and a
test fails when any column has none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import MappedColumn, mapped_column


class Basis(StrEnum):
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTERESTS = "legitimate_interests"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"


class Purpose(StrEnum):
    ACCOUNT = "account"  # account creation and authentication (policy 3)
    SERVICE = "service"  # delivering the services (policy 3, 4)
    SUPPORT = "support"
    ADMINISTRATIVE = "administrative"  # administrative information, policy changes
    MARKETING = "marketing"
    SECURITY = "security"  # protect our services, fraud prevention
    LEGAL = "legal"  # legal requests, enforcing terms, proving compliance
    OPERATIONS = "operations"  # running the system itself


class Retention(StrEnum):
    ACCOUNT_LIFETIME = "account_lifetime"
    WORKSPACE_LIFETIME = "workspace_lifetime"
    SESSION = "session"
    SHORT_LIVED_TOKEN = "short_lived_token"  # noqa: S105 (a retention class name)
    SECURITY_LOG = "security_log"
    MAIL_OUTBOX = "mail_outbox"
    JOBS = "jobs"
    CONSENT_PROOF = "consent_proof"
    AUDIT_FLOOR = "audit_floor"
    KEY_MATERIAL = "key_material"
    USAGE_LOG = "usage_log"  # sign-in and device records (policy 2.2)
    MESSAGE_CONTENT = "message_content"  # message bodies; workspaces may set a period
    CONTACT_INACTIVITY = "contact_inactivity"  # who a contact is, until they go quiet
    CLOSED_REQUESTS = "closed_requests"  # data-subject requests once answered


@dataclass(frozen=True)
class Declaration:
    category: str
    purpose: Purpose
    basis: Basis
    retention: Retention
    encrypted: bool = False

    @property
    def personal(self) -> bool:
        return self.category.startswith("user.")

    def of(self, category: str, *, encrypted: bool = False) -> Declaration:
        """The same purpose, basis and retention for another data category."""
        return replace(self, category=category, encrypted=encrypted)


SYSTEM = "system.operations"


def column(*args: Any, data: Declaration, **kwargs: Any) -> MappedColumn[Any]:
    """``mapped_column`` that also declares the column in the data inventory."""
    info = dict(kwargs.pop("info", {}))
    info["inventory"] = data
    return mapped_column(*args, info=info, **kwargs)


def declaration_of(col: Any) -> Declaration | None:
    value = col.info.get("inventory")
    return value if isinstance(value, Declaration) else None
