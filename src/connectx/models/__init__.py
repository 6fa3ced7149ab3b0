"""All models, imported so ``Base.metadata`` knows every table."""

from connectx.models.account import ActionToken, LoginAttempt, RecoveryCode, User, UserSession
from connectx.models.api_key import ApiKey
from connectx.models.audit import AuditEvent
from connectx.models.consent import ConsentRecord
from connectx.models.crypto_key import CryptoKey
from connectx.models.job import Job
from connectx.models.mail import MailMessage
from connectx.models.workspace import Invitation, Membership, Workspace

__all__ = [
    "ActionToken",
    "ApiKey",
    "AuditEvent",
    "ConsentRecord",
    "CryptoKey",
    "Invitation",
    "Job",
    "LoginAttempt",
    "MailMessage",
    "Membership",
    "RecoveryCode",
    "User",
    "UserSession",
    "Workspace",
]
