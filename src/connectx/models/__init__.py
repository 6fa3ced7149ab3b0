"""All models, imported so ``Base.metadata`` knows every table."""

from connectx.models.account import ActionToken, LoginAttempt, RecoveryCode, User, UserSession
from connectx.models.api_key import ApiKey
from connectx.models.audit import AuditEvent
from connectx.models.channel import Channel, MetaApp, TemplateUpdate
from connectx.models.config_generation import ConfigGeneration
from connectx.models.consent import ConsentKeywords, ConsentRecord, ConsentSuppression
from connectx.models.contact import Contact, ContactPreferenceEvent
from connectx.models.conversation import Conversation
from connectx.models.crypto_key import CryptoKey
from connectx.models.data_request import (
    DataRequest,
    DataRequestEvent,
    PrivacySettings,
    RequestDialog,
)
from connectx.models.inbox import (
    CannedResponse,
    ContactNameToken,
    ConversationLabel,
    InboxPreference,
    Label,
    Note,
    Notification,
    ReadMarker,
    Routing,
    Team,
    TeamMember,
)
from connectx.models.job import Job
from connectx.models.mail import MailMessage
from connectx.models.media import MediaFile
from connectx.models.message import Message, MessageStatusEvent
from connectx.models.outbox import ChannelSending, OutboxMessage
from connectx.models.policy import PolicyAcceptance, PolicyVersion
from connectx.models.privacy_rights import (
    PrivacyExport,
    ProcessingRestriction,
    RecipientEndpoint,
    RecipientNotice,
)
from connectx.models.retention import LedgerPrune, LegalHold, PeriodicRun, RetentionOverride
from connectx.models.security import SecurityNotice, SignInEvent, WorkspaceSuspension
from connectx.models.sweep_cursor import SweepCursor
from connectx.models.template import WaTemplate
from connectx.models.webhook_event import WebhookEvent
from connectx.models.workspace import Invitation, Membership, Workspace

__all__ = [
    "ActionToken",
    "ApiKey",
    "AuditEvent",
    "CannedResponse",
    "Channel",
    "ChannelSending",
    "ConfigGeneration",
    "ConsentKeywords",
    "ConsentRecord",
    "ConsentSuppression",
    "Contact",
    "ContactNameToken",
    "ContactPreferenceEvent",
    "Conversation",
    "ConversationLabel",
    "CryptoKey",
    "DataRequest",
    "DataRequestEvent",
    "InboxPreference",
    "Invitation",
    "Job",
    "Label",
    "LedgerPrune",
    "LegalHold",
    "LoginAttempt",
    "MailMessage",
    "MediaFile",
    "Membership",
    "Message",
    "MessageStatusEvent",
    "MetaApp",
    "Note",
    "Notification",
    "OutboxMessage",
    "PeriodicRun",
    "PolicyAcceptance",
    "PolicyVersion",
    "PrivacyExport",
    "PrivacySettings",
    "ProcessingRestriction",
    "ReadMarker",
    "RecipientEndpoint",
    "RecipientNotice",
    "RecoveryCode",
    "RequestDialog",
    "RetentionOverride",
    "Routing",
    "SecurityNotice",
    "SignInEvent",
    "SweepCursor",
    "Team",
    "TeamMember",
    "TemplateUpdate",
    "User",
    "UserSession",
    "WaTemplate",
    "WebhookEvent",
    "Workspace",
    "WorkspaceSuspension",
]
