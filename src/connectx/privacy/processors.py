"""Who else receives personal data: the registry of recipients and processors (policy §4, §5).

The record of processing (``connectx privacy ropa``) joins this registry to the data inventory:
a recipient receives a data category when one of its ``categories`` is that category or a parent
of it ("user.contact" covers "user.contact.email"). Keep it true: a new vendor, integration or
data flow gets an entry here in the same change that starts sending data to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connectx.kit.inventory import Basis, Purpose

# Categories derived from personal data that never leave the database (keyed hashes, truncations).
DERIVED = frozenset({"blind_index", "pseudonymous", "truncated"})


class Role(StrEnum):
    PROCESSOR = "processor"  # processes on our instructions under a data-processing agreement
    INDEPENDENT_CONTROLLER = "independent_controller"
    AFFILIATE = "affiliate"
    BUSINESS_PARTNER = "business_partner"
    AUTHORITY = "authority"


class Kind(StrEnum):
    VENDOR = "vendor"  # a service provider
    PLATFORM = "platform"
    AFFILIATE = "affiliate"
    PARTNER = "partner"
    PUBLIC = "public_body"
    SUCCESSOR = "successor"


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str
    kind: Kind
    role: Role
    service: str  # what they do for us
    purposes: tuple[Purpose, ...]
    bases: tuple[Basis, ...]
    categories: tuple[str, ...]  # data-category prefixes they receive
    location: str
    safeguards: str
    when: str = "always"  # when data flows to them
    # Holds the database itself (and so the keyed hashes derived from personal data).
    holds_database: bool = False
    # Whose data: account holders ("user"), workspaces' end customers ("contact"), or both.
    subjects: tuple[str, ...] = ("user", "contact")

    def receives(self, category: str) -> bool:
        if category.rsplit(".", 1)[-1] in DERIVED and not self.holds_database:
            return category in self.categories
        return any(category == c or category.startswith(c + ".") for c in self.categories)


REGISTRY: tuple[Recipient, ...] = (
    Recipient(
        id="hosting",
        name="Hosting provider (application, database and backup servers)",
        kind=Kind.VENDOR,
        role=Role.PROCESSOR,
        service="Infrastructure: runs ConnectX and stores its database and backups",
        purposes=(Purpose.SERVICE, Purpose.OPERATIONS, Purpose.SECURITY),
        bases=(Basis.CONTRACT, Basis.LEGITIMATE_INTERESTS),
        categories=("user", "business", "system"),
        location="The operator's chosen region (the deployment's data centre)",
        safeguards=(
            "Data-processing agreement; personal fields encrypted (AES-256-GCM) with keys the "
            "provider does not hold; the key store is kept apart from data backups"
        ),
        holds_database=True,
    ),
    Recipient(
        id="mail_relay",
        name="E-mail relay (the SMTP service at CONNECTX_SMTP_URL)",
        kind=Kind.VENDOR,
        role=Role.PROCESSOR,
        service="Delivers account e-mail: verification, password reset, invitations, notices",
        purposes=(Purpose.ACCOUNT, Purpose.ADMINISTRATIVE, Purpose.MARKETING),
        bases=(Basis.CONTRACT, Basis.CONSENT),
        categories=("user.contact.email", "user.content.mail", "user.name"),
        location="Configured by the operator (CONNECTX_SMTP_URL)",
        safeguards="Data-processing agreement; TLS to the relay; marketing only with consent",
        when="when CONNECTX_SMTP_URL is set (otherwise mail stays in the local outbox)",
        subjects=("user",),
    ),
    Recipient(
        id="meta_whatsapp",
        name="Meta Platforms (WhatsApp Business Cloud API)",
        kind=Kind.PLATFORM,
        role=Role.PROCESSOR,
        service="Carries WhatsApp messages between businesses and their customers",
        purposes=(Purpose.SERVICE, Purpose.SUPPORT, Purpose.MARKETING),
        bases=(Basis.CONTRACT, Basis.CONSENT, Basis.LEGITIMATE_INTERESTS),
        categories=(
            "user.contact.phone",
            "user.unique_id",
            "user.name",
            "user.profile",
            "user.content.message",
            "user.content.media",
            "user.consent.whatsapp_preference",
        ),
        location="Meta data centres (United States, European Union and others)",
        safeguards=(
            "WhatsApp Business terms and Meta's data-processing terms; standard contractual "
            "clauses for transfers; message content never used for advertising (policy §4)"
        ),
        when="for workspaces that connect a WhatsApp Business number",
        subjects=("contact",),
    ),
    Recipient(
        id="payment_processor",
        name="Payment processor",
        kind=Kind.VENDOR,
        role=Role.INDEPENDENT_CONTROLLER,
        service="Takes card payments for subscriptions; ConnectX stores only its tokens",
        purposes=(Purpose.SERVICE, Purpose.LEGAL),
        bases=(Basis.CONTRACT, Basis.LEGAL_OBLIGATION),
        categories=("user.financial", "user.contact.address", "user.contact.email", "user.name"),
        location="The processor's PCI DSS certified data centres",
        safeguards="PCI DSS; card numbers never reach ConnectX (no column can hold one)",
        when="when billing is enabled",
        subjects=("user",),
    ),
    Recipient(
        id="affiliates",
        name="ConnectX group affiliates",
        kind=Kind.AFFILIATE,
        role=Role.AFFILIATE,
        service="Customer support and operations staff of the group",
        purposes=(Purpose.SUPPORT, Purpose.OPERATIONS),
        bases=(Basis.LEGITIMATE_INTERESTS, Basis.CONTRACT),
        categories=("user.name", "user.contact", "business", "system"),
        location="United Arab Emirates (Dubai)",
        safeguards=(
            "Intra-group agreement binding affiliates to this privacy policy; audited access"
        ),
    ),
    Recipient(
        id="business_partners",
        name="Business partners",
        kind=Kind.PARTNER,
        role=Role.BUSINESS_PARTNER,
        service="Offers of partner products and promotions",
        purposes=(Purpose.MARKETING,),
        bases=(Basis.CONSENT,),
        categories=("user.name", "user.contact.email"),
        location="As named in the offer the person consents to",
        safeguards="Only with the person's consent for that partner; withdrawal honoured at once",
        when="only for people who consented to partner offers",
        subjects=("user",),
    ),
    Recipient(
        id="authorities",
        name="Courts, regulators and law enforcement",
        kind=Kind.PUBLIC,
        role=Role.AUTHORITY,
        service="Answering subpoenas, court orders and lawful requests",
        purposes=(Purpose.LEGAL,),
        bases=(Basis.LEGAL_OBLIGATION, Basis.VITAL_INTERESTS),
        categories=("user", "business", "system.audit"),
        location="The requesting jurisdiction",
        safeguards=(
            "Disclosed only when legally required, reviewed by the DPO, recorded in the audit log"
        ),
        when="on a lawful request",
    ),
    Recipient(
        id="successor",
        name="Acquirer or successor in a business transfer",
        kind=Kind.SUCCESSOR,
        role=Role.INDEPENDENT_CONTROLLER,
        service="Merger, sale of assets, financing or acquisition",
        purposes=(Purpose.LEGAL,),
        bases=(Basis.LEGITIMATE_INTERESTS,),
        categories=("user", "business"),
        location="The successor's",
        safeguards="Bound to this privacy policy; people notified before their data changes hands",
        when="in a business transfer",
    ),
)


def recipients_of(category: str) -> list[Recipient]:
    return [r for r in REGISTRY if r.receives(category)]


def by_id(recipient_id: str) -> Recipient:
    for r in REGISTRY:
        if r.id == recipient_id:
            return r
    raise KeyError(recipient_id)
