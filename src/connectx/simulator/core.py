"""The simulator's state and behaviour: business numbers, simulated customers and their
conversations, media, templates, what the platform sent, and the rules Meta enforces.

Everything lives in memory (optionally saved to a JSON file): it is a test double, not a
product store. Route handlers (:mod:`.graph`, :mod:`.control`, :mod:`.phone`) are thin and call
the methods here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import os
import random
import secrets
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import phonenumbers

from connectx.simulator import catalog, outbound, payloads
from connectx.simulator.catalog import Template
from connectx.simulator.clock import SimClock
from connectx.simulator.errors import GraphError, bad_token, invalid, no_object
from connectx.simulator.payloads import Update
from connectx.simulator.settings import (
    AppConfig,
    CustomerConfig,
    NumberConfig,
    SimConfig,
    TemplateConfig,
)
from connectx.simulator.webhooks import Dispatcher

log = logging.getLogger(__name__)

WINDOW_S = 24 * 3600
ENTRY_POINT_S = 72 * 3600
TYPING_S = 25
INBOUND_MEDIA_TTL_S = 7 * 24 * 3600
UPLOADED_MEDIA_TTL_S = 30 * 24 * 3600
STATUS_ORDER = ("accepted", "sent", "delivered", "read", "played")

# MIME types Meta accepts, and the size limit of each media kind (bytes).
MEDIA_KINDS: dict[str, tuple[tuple[str, ...], int]] = {
    "image": (("image/jpeg", "image/png"), 5 * 1024 * 1024),
    "sticker": (("image/webp",), 500 * 1024),
    "video": (("video/mp4", "video/3gpp"), 16 * 1024 * 1024),
    "audio": (
        ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/opus"),
        16 * 1024 * 1024,
    ),
    "document": (
        (
            "text/plain",
            "text/csv",
            "application/pdf",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        100 * 1024 * 1024,
    ),
}
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "application/pdf": "pdf",
    "text/plain": "txt",
}


class SimInputError(ValueError):
    """A request to the simulator's own API (``/_sim``, the phone page) that cannot be done."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def media_kind(mime: str) -> str | None:
    base = mime.split(";", 1)[0].strip().lower()
    for kind, (types, _) in MEDIA_KINDS.items():
        if base in types and kind != "sticker":
            return kind
    return "sticker" if base == "image/webp" else None


# A 1x1 PNG and stand-ins for other kinds: what a customer "sends" when no file is given.
_PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
PLACEHOLDER_MEDIA = {
    "image": ("image/jpeg", _PNG_1PX),
    "sticker": ("image/webp", b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10"),
    "video": ("video/mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"),
    "audio": ("audio/ogg", b"OggS\x00\x02" + b"\x00" * 20),
    "document": ("application/pdf", b"%PDF-1.4\n%simulated document\n%%EOF\n"),
}


@dataclass
class Customer:
    key: str
    wa_id: str | None
    user_id: str | None
    name: str | None = None
    username: str | None = None
    hide_phone: bool = False
    hidden_as: str = "empty"
    undeliverable: bool = False
    marketing_stopped: bool = False
    last_inbound: dict[str, float] = field(default_factory=dict)
    entry_point_until: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.username or self.wa_id or self.user_id or self.key

    @property
    def shown_id(self) -> str:
        """What the business can see of them: the phone, or the BSUID when it is hidden."""
        if self.wa_id and not self.hide_phone:
            return "+" + self.wa_id
        return self.user_id or ""

    def block(self) -> dict[str, Any]:
        return payloads.contact_block(
            wa_id=self.wa_id,
            user_id=self.user_id,
            name=self.name,
            username=self.username,
            hide_phone=self.hide_phone,
            hidden_as=self.hidden_as,
        )


@dataclass
class Media:
    id: str
    phone_number_id: str
    mime_type: str
    sha256: str
    file_size: int
    data: bytes
    created_at: float
    expires_at: float
    filename: str | None = None


@dataclass
class Item:
    """One message in a customer's conversation with a business number."""

    seq: int
    wamid: str
    phone_number_id: str
    customer: str
    direction: str  # "in" (customer to business) | "out"
    type: str
    text: str
    at: float
    status: str = "accepted"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sent:
    """A request the platform made to send a message or mark one read."""

    seq: int
    kind: str  # "message" | "read"
    phone_number_id: str
    at: float
    body: dict[str, Any]
    wamid: str | None = None
    customer: str | None = None
    type: str | None = None
    statuses: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fault:
    """An error to return instead of doing what was asked (tests of retry behaviour)."""

    id: int
    code: int | None
    http_status: int | None
    remaining: int  # -1: until removed
    endpoint: str = "messages"  # messages | media | templates | download | any
    phone_number_id: str | None = None
    to: str | None = None
    details: str | None = None

    def matches(self, endpoint: str, pnid: str | None, to: str | None) -> bool:
        if self.remaining == 0:
            return False
        if self.endpoint not in ("any", endpoint):
            return False
        if self.phone_number_id and self.phone_number_id != pnid:
            return False
        return not (self.to and self.to != to)

    def error(self) -> GraphError:
        status = self.http_status
        code = self.code
        if code is None:
            code = 131016 if status == 503 else 131000 if status and status >= 500 else 1
        return GraphError(code, self.details or "Injected by the simulator", status=status)


class Bucket:
    """A token bucket on the simulator's clock."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now

    def available(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= 1

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens = max(0.0, self.tokens - 1)


def bsuid_for(wa_id: str, salt: str = "") -> str:
    """A stable made-up BSUID for a phone: its country's code, a dot, 20 digits."""
    region = "US"
    for n in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(wa_id[:n] or 0))
        if wa_id[:n].isdigit() and regions:
            region = regions[0] if regions[0] != "001" else "ZZ"
            break
    digest = hashlib.sha256(f"{salt}{wa_id}".encode()).digest()
    number = str(int.from_bytes(digest[:9], "big")).rjust(20, "0")[-20:]
    return f"{region}.{number}"


def quick_replies(template: Template, content: dict[str, Any]) -> list[dict[str, str]]:
    """The quick-reply buttons of a sent template, with the payloads the send gave them."""
    payload_by_index: dict[int, str] = {}
    for c in content.get("components") or []:
        if isinstance(c, dict) and str(c.get("sub_type", "")).lower() == "quick_reply":
            for p in c.get("parameters") or []:
                if isinstance(p, dict) and p.get("type") == "payload":
                    with contextlib.suppress(TypeError, ValueError):
                        payload_by_index[int(c.get("index", -1))] = str(p.get("payload"))
    out = []
    for i, b in enumerate((template.component("BUTTONS") or {}).get("buttons") or []):
        if str(b.get("type", "")).upper() == "QUICK_REPLY":
            title = str(b.get("text", ""))
            out.append({"kind": "button", "id": payload_by_index.get(i, title), "title": title})
    return out


def new_media_id() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


class Simulator:
    def __init__(self, config: SimConfig, clock: SimClock | None = None) -> None:
        self.config = config
        self.clock = clock or SimClock()
        self.rng = random.Random(config.seed)
        self._url_key = secrets.token_bytes(32)
        self._saved: tuple[int, ...] | None = None
        self._seq = itertools.count(1)
        self._customer_seq = itertools.count(1)
        self._fault_seq = itertools.count(1)
        self.apps: dict[str, AppConfig] = {a.app_id: a for a in config.apps}
        self.numbers: dict[str, NumberConfig] = {n.phone_number_id: n for n in config.numbers}
        self.customers: dict[str, Customer] = {}
        self._identities: dict[str, str] = {}  # wa_id or user_id -> customer key
        self.templates: dict[str, list[Template]] = {}
        self.media: dict[str, Media] = {}
        self.threads: dict[tuple[str, str], list[Item]] = {}
        self.items: dict[str, Item] = {}
        self.sent: list[Sent] = []
        self.sent_by_wamid: dict[str, Sent] = {}
        self.faults: list[Fault] = []
        self.typing: dict[tuple[str, str], float] = {}
        self.stats: Counter[str] = Counter()
        self.callback_data: Counter[str] = Counter()
        self._throughput: dict[str, Bucket] = {}
        self._pairs: dict[tuple[str, str], Bucket] = {}
        self.dispatcher = Dispatcher(config, self.apps.get)
        for customer in config.customers:
            self.add_customer(customer)
        for template in config.templates:
            self.add_template(template)
        if config.state_file and config.state_file.exists():
            self.restore(json.loads(config.state_file.read_text(encoding="utf-8")))

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.dispatcher.start()

    async def stop(self) -> None:
        await self.dispatcher.stop()
        self.save()

    def now(self) -> float:
        return self.clock.time()

    # -- lookups -----------------------------------------------------------------------------
    def number(self, pnid: str) -> NumberConfig:
        number = self.numbers.get(pnid)
        if number is None:
            raise no_object(pnid, "post")
        return number

    def app_of(self, number: NumberConfig) -> AppConfig:
        assert number.app_id is not None
        return self.apps[number.app_id]

    def first_number(self) -> NumberConfig:
        return next(iter(self.numbers.values()))

    def numbers_of_waba(self, waba_id: str) -> list[NumberConfig]:
        return [n for n in self.numbers.values() if n.waba_id == waba_id]

    @staticmethod
    def bearer(authorization: str | None, query_token: str | None = None) -> str | None:
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
            return None
        return query_token or None

    def authorize(self, token: str | None, numbers: list[NumberConfig]) -> None:
        """The token must be one of these numbers' (Meta: 190 otherwise)."""
        if not token:
            raise bad_token("An access token is required to request this resource.")
        for number in numbers:
            if hmac.compare_digest(number.access_token.encode(), token.encode()):
                return
        raise bad_token("Error validating access token: the token is invalid or has expired.")

    def find_customer(self, ident: str) -> Customer | None:
        ident = ident.strip()
        if ident in self.customers:
            return self.customers[ident]
        key = self._identities.get(ident) or self._identities.get(ident.lstrip("+"))
        return self.customers.get(key) if key else None

    def _index(self, customer: Customer) -> None:
        for identity in (customer.wa_id, customer.user_id):
            if identity:
                self._identities[identity] = customer.key

    def customer(self, ident: str, *, create: bool = True) -> Customer:
        found = self.find_customer(ident)
        if found is not None:
            return found
        if not create:
            raise SimInputError(f"no simulated customer {ident!r}", 404)
        phone = ident.strip().lstrip("+")
        if phone.isdigit() and 7 <= len(phone) <= 15:
            return self.add_customer(CustomerConfig(wa_id=phone))
        if "." in ident and len(ident) <= 128:
            return self.add_customer(CustomerConfig(user_id=ident.strip(), hide_phone=True))
        raise SimInputError(
            "a customer is named by a phone in international digits (16505550101), a BSUID "
            "(US.1234...) or the key the simulator gave them (c1)"
        )

    def add_customer(self, config: CustomerConfig) -> Customer:
        wa_id = config.wa_id.lstrip("+") if config.wa_id else None
        if wa_id is not None and (not wa_id.isdigit() or not 7 <= len(wa_id) <= 15):
            raise SimInputError("wa_id is a phone number in international digits")
        for existing in (wa_id, config.user_id):
            if existing and self.find_customer(existing) is not None:
                raise SimInputError(f"a customer {existing} already exists", 409)
        user_id = config.user_id
        if user_id is None and wa_id and self.config.bsuids:
            user_id = bsuid_for(wa_id)
        customer = Customer(
            key=f"c{next(self._customer_seq)}",
            wa_id=wa_id,
            user_id=user_id,
            name=config.name,
            username=config.username,
            hide_phone=config.hide_phone or wa_id is None,
            hidden_as=config.hidden_as,
            undeliverable=config.undeliverable,
        )
        self.customers[customer.key] = customer
        self._index(customer)
        return customer

    def add_template(self, config: TemplateConfig) -> Template:
        template = catalog.from_config(config, next(self._seq))
        self.templates.setdefault(template.waba_id, []).append(template)
        return template

    def thread(self, pnid: str, customer: Customer) -> list[Item]:
        return self.threads.setdefault((pnid, customer.key), [])

    def window_open(self, pnid: str, customer: Customer) -> bool:
        last = customer.last_inbound.get(pnid)
        return last is not None and self.now() - last < WINDOW_S

    def _throughput_bucket(self, number: NumberConfig) -> Bucket:
        bucket = self._throughput.get(number.phone_number_id)
        if bucket is None or bucket.rate != number.throughput:
            bucket = Bucket(number.throughput, number.throughput, self.now())
            self._throughput[number.phone_number_id] = bucket
        return bucket

    def _pair_bucket(self, pnid: str, customer: Customer) -> Bucket:
        key = (pnid, customer.key)
        bucket = self._pairs.get(key)
        if bucket is None:
            pair = self.config.pair_rate
            bucket = Bucket(1 / pair.interval_s, pair.burst, self.now())
            self._pairs[key] = bucket
        return bucket

    def _fault(self, endpoint: str, pnid: str | None, to: str | None) -> None:
        for fault in self.faults:
            if fault.matches(endpoint, pnid, to):
                if fault.remaining > 0:
                    fault.remaining -= 1
                self.stats[f"faults_injected.{fault.code or fault.http_status}"] += 1
                raise fault.error()

    # -- Graph: messages ---------------------------------------------------------------------
    def send(self, pnid: str, token: str | None, body: Any) -> dict[str, Any]:
        try:
            return self._send(pnid, token, body)
        except GraphError as exc:
            self.stats[f"rejected.{exc.code}"] += 1
            raise

    def _send(self, pnid: str, token: str | None, body: Any) -> dict[str, Any]:
        number = self.numbers.get(pnid)
        if number is None:
            # Meta checks the token before it looks the object up.
            self.authorize(token, list(self.numbers.values()))
            raise no_object(pnid, "post")
        self.authorize(token, [number])
        request = outbound.parse(body)
        if request.kind == "read":
            return self._mark_read(number, request, body)
        if request.type in outbound.MEDIA_TYPES and request.content.get("id"):
            media = self.media.get(str(request.content["id"]))
            if media is None or media.phone_number_id != pnid or media.expires_at <= self.now():
                raise invalid(f"Param {request.type}['id'] is not a valid media id for this number")
        if request.type == "reaction" and request.content.get("message_id") not in self.items:
            raise invalid("Param reaction['message_id'] is not a message of this conversation")
        self._fault("messages", pnid, request.to or request.recipient)
        template: Template | None = None
        rendered: str | None = None
        if request.type == "template":
            template, rendered = self._template_for_send(number, request)
        customer = self._recipient(request)
        window_open = self.window_open(pnid, customer)
        async_error: GraphError | None = None
        if request.type != "template" and not window_open:
            error = GraphError(
                131047,
                "Message failed to send because more than 24 hours have passed since the "
                "customer last replied to this number.",
            )
            if self.config.window_errors == "sync":
                raise error
            async_error = error
        now = self.now()
        throughput = self._throughput_bucket(number)
        pair = self._pair_bucket(pnid, customer)
        if not throughput.available(now):
            raise GraphError(
                130429,
                "Message failed to send because there were too many messages sent from this "
                "phone number in a short period of time.",
            )
        if not pair.available(now):
            raise GraphError(
                131056,
                "Message failed to send because there were too many messages sent from this "
                "phone number to the same phone number in a short period of time.",
            )
        throughput.take(now)
        pair.take(now)
        if async_error is None:
            if customer.undeliverable:
                async_error = GraphError(131026, "Message undeliverable: receiver incapable.")
            elif (
                template is not None
                and template.category == "MARKETING"
                and customer.marketing_stopped
            ):
                async_error = GraphError(
                    131050, "The user has stopped marketing messages from this business."
                )
        wamid = payloads.new_wamid()
        record = Sent(
            seq=next(self._seq),
            kind="message",
            phone_number_id=pnid,
            at=now,
            body=body,
            wamid=wamid,
            customer=customer.key,
            type=request.type,
        )
        self.sent.append(record)
        self.sent_by_wamid[wamid] = record
        self.stats["accepted"] += 1
        self.stats[f"accepted.{pnid}"] += 1
        if request.callback_data is not None:
            self.callback_data[request.callback_data] += 1
        self.typing.pop((pnid, customer.key), None)
        detail: dict[str, Any] = {"request": body}
        if request.context_id:
            detail["reply_to"] = request.context_id
        if template is not None:
            detail["template_buttons"] = quick_replies(template, request.content)
        item = self._add_item(
            number,
            customer,
            wamid,
            "out",
            str(request.type),
            outbound.summary(request, rendered),
            detail,
        )
        if request.type == "reaction":
            target = self.items.get(str(request.content.get("message_id")))
            if target is not None:
                target.detail["business_reaction"] = request.content.get("emoji") or None
        self._schedule_statuses(number, customer, item, record, template, window_open, async_error)
        response: dict[str, Any] = {"messaging_product": "whatsapp"}
        if request.to is not None:
            response["contacts"] = [{"input": request.input, "wa_id": customer.wa_id or request.to}]
        else:
            response["contacts"] = [{"input": request.input, "user_id": customer.user_id}]
        message: dict[str, Any] = {"id": wamid}
        if template is not None:
            message["message_status"] = "accepted"
        response["messages"] = [message]
        return response

    def _recipient(self, request: outbound.Send) -> Customer:
        if request.to is not None:
            found = self.find_customer(request.to)
            return found or self.add_customer(CustomerConfig(wa_id=request.to))
        assert request.recipient is not None
        found = self.find_customer(request.recipient)
        return found or self.add_customer(CustomerConfig(user_id=request.recipient))

    def _template_for_send(
        self, number: NumberConfig, request: outbound.Send
    ) -> tuple[Template, str]:
        name = str(request.content.get("name"))
        language = str(request.content["language"]["code"])
        candidates = [
            t
            for t in self.templates.get(number.waba_id, [])
            if t.name == name and t.language == language
        ]
        if not candidates or candidates[0].status in (
            "PENDING",
            "REJECTED",
            "DELETED",
            "IN_APPEAL",
        ):
            raise GraphError(
                132001,
                f"template name ({name}) does not exist in {language}"
                if not candidates
                else f"template {name} ({language}) is {candidates[0].status}, not approved",
            )
        template = candidates[0]
        if template.status == "PAUSED":
            raise GraphError(132015, f"Template {name} is paused because of low quality")
        if template.status == "DISABLED":
            raise GraphError(132016, f"Template {name} has been disabled")
        rendered = catalog.check_send(template, list(request.content.get("components") or []))
        return template, rendered

    def _mark_read(
        self, number: NumberConfig, request: outbound.Send, body: dict[str, Any]
    ) -> dict[str, Any]:
        item = self.items.get(str(request.read_message_id))
        if item is None or item.direction != "in" or item.phone_number_id != number.phone_number_id:
            raise invalid(
                f"Param message_id {request.read_message_id!r} is not a message received by "
                "this number"
            )
        customer = self.customers[item.customer]
        for other in self.thread(number.phone_number_id, customer):
            if other.direction == "in" and other.seq <= item.seq:
                other.status = "read"
        if request.typing:
            self.typing[(number.phone_number_id, customer.key)] = self.now() + TYPING_S
        self.sent.append(
            Sent(
                seq=next(self._seq),
                kind="read",
                phone_number_id=number.phone_number_id,
                at=self.now(),
                body=body,
                wamid=item.wamid,
                customer=customer.key,
            )
        )
        self.stats["reads"] += 1
        return {"success": True}

    def _add_item(
        self,
        number: NumberConfig,
        customer: Customer,
        wamid: str,
        direction: str,
        kind: str,
        text: str,
        detail: dict[str, Any] | None = None,
    ) -> Item:
        item = Item(
            seq=next(self._seq),
            wamid=wamid,
            phone_number_id=number.phone_number_id,
            customer=customer.key,
            direction=direction,
            type=kind,
            text=text,
            at=self.now(),
            status="accepted" if direction == "out" else "delivered",
            detail=detail or {},
        )
        self.thread(number.phone_number_id, customer).append(item)
        self.items[wamid] = item
        return item

    # -- status callbacks ----------------------------------------------------------------------
    def _pricing(
        self, customer: Customer, pnid: str, template: Template | None, window_open: bool
    ) -> dict[str, Any]:
        entry_point = customer.entry_point_until.get(pnid, 0) > self.now()
        if template is None:
            kind = "free_entry_point" if entry_point else "free_customer_service"
            return payloads.pricing("service", kind, False)
        category = template.category.lower()
        if entry_point:
            return payloads.pricing(category, "free_entry_point", False)
        if category == "utility" and window_open:
            return payloads.pricing(category, "free_customer_service", False)
        return payloads.pricing(category, "regular", True)

    def _schedule_statuses(
        self,
        number: NumberConfig,
        customer: Customer,
        item: Item,
        record: Sent,
        template: Template | None,
        window_open: bool,
        error: GraphError | None,
    ) -> None:
        cfg = self.config.statuses
        step = cfg.delay_ms / 1000
        if error is not None:
            self._later(step, number, customer, item, record, "failed", None, error)
            return
        steps = {
            "none": [],
            "sent": ["sent"],
            "delivered": ["sent", "delivered"],
            "read": ["sent", "delivered", "read"],
        }[cfg.progress]
        if "read" in steps and cfg.played and item.type == "audio":
            steps = [*steps, "played"]
        if "delivered" in steps and len(steps) > 2 and self.rng.random() < cfg.skip_delivered:
            steps.remove("delivered")
        pricing = self._pricing(customer, number.phone_number_id, template, window_open)
        if self.rng.random() < cfg.shuffle:
            steps = list(reversed(steps))
        schedule = [(step * (i + 1), s) for i, s in enumerate(steps)]
        for delay, status in list(schedule):
            if self.rng.random() < cfg.duplicate:
                schedule.append((delay + step / 2, status))
        for delay, status in schedule:
            self._later(delay, number, customer, item, record, status, pricing, None)

    def _later(
        self,
        delay: float,
        number: NumberConfig,
        customer: Customer,
        item: Item,
        record: Sent,
        status: str,
        pricing: dict[str, Any] | None,
        error: GraphError | None,
    ) -> None:
        def build() -> Update:
            return self._status_update(number, customer, item, record, status, pricing, error)

        self.dispatcher.emit_later(delay, build)

    def _status_update(
        self,
        number: NumberConfig,
        customer: Customer,
        item: Item,
        record: Sent | None,
        status: str,
        pricing: dict[str, Any] | None,
        error: GraphError | None,
        errors: list[dict[str, Any]] | None = None,
    ) -> Update:
        now = self.now()
        entry: dict[str, Any] = {
            "id": item.wamid,
            "status": status,
            "timestamp": str(int(now)),
            **payloads.recipient_fields(
                customer.wa_id, customer.user_id, customer.hide_phone, customer.hidden_as
            ),
        }
        body = record.body if record is not None else {}
        if isinstance(body, dict) and body.get("biz_opaque_callback_data") is not None:
            entry["biz_opaque_callback_data"] = body["biz_opaque_callback_data"]
        if status == "failed":
            entry["errors"] = errors or ([error.as_status_error()] if error else [])
        elif pricing is not None:
            if self._version_tuple() < (24, 0):
                category = pricing["category"]
                expires = int(customer.last_inbound.get(number.phone_number_id, now) + WINDOW_S)
                conv = hashlib.sha256(
                    f"{number.phone_number_id}|{customer.key}|{category}".encode()
                ).hexdigest()[:32]
                entry["conversation"] = payloads.conversation(conv, category, expires)
            entry["pricing"] = dict(pricing)
        self._advance_status(item, record, status)
        meta = payloads.metadata(number.display_phone_number, number.phone_number_id)
        contacts = None if status == "failed" else [customer.block()]
        value = payloads.messages_value(meta, contacts=contacts, statuses=[entry])
        self.stats[f"statuses.{status}"] += 1
        assert number.app_id is not None
        return Update(number.app_id, number.waba_id, "messages", value)

    @staticmethod
    def _advance_status(item: Item, record: Sent | None, status: str) -> None:
        if record is not None:
            record.statuses.append(status)
        if item.status == "failed":
            return
        if status == "failed":
            item.status = "failed"
        elif status in STATUS_ORDER and STATUS_ORDER.index(status) > STATUS_ORDER.index(
            item.status if item.status in STATUS_ORDER else "accepted"
        ):
            item.status = status

    def _version_tuple(self) -> tuple[int, int]:
        major, minor = self.config.graph_version[1:].split(".")
        return int(major), int(minor)

    def send_status(
        self, wamid: str, status: str, errors: list[dict[str, Any]] | None = None
    ) -> Update:
        """Send a status callback for a message the platform sent (``/_sim/statuses``)."""
        item = self.items.get(wamid)
        if item is None or item.direction != "out":
            raise SimInputError(f"no message {wamid!r} was sent by the platform", 404)
        if status not in ("sent", "delivered", "read", "played", "failed"):
            raise SimInputError("status is one of sent, delivered, read, played, failed")
        number = self.numbers[item.phone_number_id]
        customer = self.customers[item.customer]
        record = self.sent_by_wamid.get(wamid)
        error = None
        if status == "failed" and not errors:
            error = GraphError(131026, "Message undeliverable")
        pricing = None
        if status != "failed":
            pricing = self._pricing(customer, number.phone_number_id, None, True)
        update = self._status_update(number, customer, item, record, status, pricing, error, errors)
        self.dispatcher.emit(update)
        return update

    # -- Graph: media ------------------------------------------------------------------------
    def upload_media(
        self,
        pnid: str,
        token: str | None,
        *,
        data: bytes | None,
        mime: str | None,
        filename: str | None,
        messaging_product: str | None,
    ) -> dict[str, Any]:
        number = self.numbers.get(pnid)
        self.authorize(token, [number] if number else list(self.numbers.values()))
        if number is None:
            raise no_object(pnid, "post")
        if messaging_product != "whatsapp":
            raise invalid("The parameter messaging_product is required and must be 'whatsapp'")
        if data is None:
            raise invalid("Param file is required (multipart/form-data)")
        self._fault("media", pnid, None)
        if not mime:
            raise invalid("Param type (the file's MIME type) is required")
        kind = media_kind(mime)
        if kind is None:
            raise GraphError(131053, f"Unsupported media type {mime}")
        limit = MEDIA_KINDS[kind][1]
        if len(data) > limit:
            raise GraphError(
                131053, f"The {kind} is {len(data)} bytes; the limit for {kind} is {limit} bytes"
            )
        if not data:
            raise GraphError(131053, "The uploaded file is empty")
        media = self._store_media(pnid, data, mime, filename, UPLOADED_MEDIA_TTL_S)
        return {"id": media.id}

    def _store_media(
        self, pnid: str, data: bytes, mime: str, filename: str | None, ttl: float
    ) -> Media:
        media = Media(
            id=new_media_id(),
            phone_number_id=pnid,
            mime_type=mime,
            sha256=hashlib.sha256(data).hexdigest(),
            file_size=len(data),
            data=data,
            created_at=self.now(),
            expires_at=self.now() + ttl,
            filename=filename,
        )
        self.media[media.id] = media
        return media

    def _live_media(self, media_id: str) -> Media | None:
        media = self.media.get(media_id)
        if media is None or media.expires_at <= self.now():
            return None
        return media

    def media_url(self, media: Media, base_url: str) -> str:
        expires = int(self.now() + self.config.media_url_ttl_s)
        digest = hmac.new(self._url_key, f"{media.id}:{expires}".encode(), hashlib.sha256)
        ext = EXTENSIONS.get(media.mime_type.split(";")[0], "bin")
        base = (self.config.public_url or base_url).rstrip("/")
        return (
            f"{base}/whatsapp_business/attachments/?mid={media.id}&ext={expires}"
            f"&hash={digest.hexdigest()}&type={ext}"
        )

    def media_info(self, media_id: str, token: str | None, base_url: str) -> dict[str, Any]:
        media = self._live_media(media_id)
        owners = [self.numbers[media.phone_number_id]] if media else list(self.numbers.values())
        self.authorize(token, owners)
        if media is None:
            raise no_object(media_id)
        self._fault("media", media.phone_number_id, None)
        return {
            "messaging_product": "whatsapp",
            "url": self.media_url(media, base_url),
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": media.file_size,
            "id": media.id,
        }

    def delete_media(self, media_id: str, token: str | None) -> dict[str, Any]:
        media = self._live_media(media_id)
        owners = [self.numbers[media.phone_number_id]] if media else list(self.numbers.values())
        self.authorize(token, owners)
        if media is None:
            raise no_object(media_id, "delete")
        del self.media[media_id]
        return {"success": True}

    def download(
        self, media_id: str, expires: str, digest: str, token: str | None
    ) -> tuple[int, Media | None]:
        """(HTTP status, media): 404 for an unknown or expired url, 401 without the owner's
        token."""
        media = self.media.get(media_id)
        try:
            exp = int(expires)
        except ValueError:
            return 404, None
        expected = hmac.new(self._url_key, f"{media_id}:{exp}".encode(), hashlib.sha256)
        if media is None or not hmac.compare_digest(expected.hexdigest(), digest):
            return 404, None
        if exp <= self.now() or media.expires_at <= self.now():
            return 404, None
        number = self.numbers[media.phone_number_id]
        if not token or not hmac.compare_digest(number.access_token.encode(), token.encode()):
            return 401, None
        try:
            self._fault("download", media.phone_number_id, None)
        except GraphError as exc:
            return exc.http_status, None
        return 200, media

    # -- Graph: templates ------------------------------------------------------------------------
    def _waba(self, waba_id: str, token: str | None, method: str = "get") -> None:
        numbers = self.numbers_of_waba(waba_id)
        self.authorize(token, numbers or list(self.numbers.values()))
        if not numbers:
            raise no_object(waba_id, method)

    def list_templates(
        self, waba_id: str, token: str | None, query: dict[str, str], base_url: str
    ) -> dict[str, Any]:
        self._waba(waba_id, token)
        self._fault("templates", None, None)
        templates = list(self.templates.get(waba_id, []))
        for key in ("status", "category", "language"):
            if query.get(key):
                wanted = {
                    v.strip().upper() if key != "language" else v.strip()
                    for v in query[key].split(",")
                }
                templates = [t for t in templates if getattr(t, key) in wanted]
        if query.get("name"):
            templates = [t for t in templates if query["name"].lower() in t.name]
        try:
            limit = int(query.get("limit") or catalog.PAGE_DEFAULT)
        except ValueError:
            raise invalid("Param limit must be a number") from None
        if not 1 <= limit <= catalog.PAGE_MAX:
            raise invalid(f"Param limit must be between 1 and {catalog.PAGE_MAX}")
        fields = [f.strip() for f in query["fields"].split(",")] if query.get("fields") else None
        page = catalog.paginate(
            templates,
            limit=limit,
            after=query.get("after"),
            before=query.get("before"),
            fields=fields,
        )
        paging: dict[str, Any] = {"cursors": {"before": page.before, "after": page.after}}
        base = f"{base_url.rstrip('/')}/{self.config.graph_version}/{waba_id}/message_templates"
        keep = {k: v for k, v in query.items() if k not in ("after", "before", "access_token")}
        keep["limit"] = str(limit)
        if page.has_next and page.after:
            paging["next"] = f"{base}?{urlencode({**keep, 'after': page.after})}"
        if page.has_previous and page.before:
            paging["previous"] = f"{base}?{urlencode({**keep, 'before': page.before})}"
        if not page.data:
            paging = {"cursors": {"before": None, "after": None}}
        return {"data": page.data, "paging": paging}

    def create_template(self, waba_id: str, token: str | None, body: Any) -> dict[str, Any]:
        self._waba(waba_id, token, "post")
        self._fault("templates", None, None)
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object")
        fields = catalog.validate_new(body)
        for t in self.templates.get(waba_id, []):
            if t.name == fields["name"] and t.language == fields["language"]:
                raise GraphError(
                    100,
                    f"There is already {fields['language']} content for this template. You can "
                    "create a new template and try again.",
                    subcode=2388024,
                    title="Invalid parameter",
                )
        review = self.config.template_review
        status = {"approve": "APPROVED", "pending": "PENDING", "reject": "REJECTED"}[review]
        template = Template(
            id=catalog.new_template_id(),
            waba_id=waba_id,
            status=status,
            seq=next(self._seq),
            rejected_reason="INVALID_FORMAT" if status == "REJECTED" else "NONE",
            **fields,
        )
        self.templates.setdefault(waba_id, []).append(template)
        if status != "PENDING":
            self._template_event(template, status, template.rejected_reason)
        return {"id": template.id, "status": template.status, "category": template.category}

    def delete_template(
        self, waba_id: str, token: str | None, name: str | None, hsm_id: str | None
    ) -> dict[str, Any]:
        self._waba(waba_id, token, "delete")
        if not name:
            raise invalid("Param name is required")
        templates = self.templates.get(waba_id, [])
        doomed = [t for t in templates if t.name == name and (not hsm_id or t.id == hsm_id)]
        if not doomed:
            raise invalid(f"Message template {name!r} was not found")
        self.templates[waba_id] = [t for t in templates if t not in doomed]
        return {"success": True}

    def set_template_status(
        self, waba_id: str, name: str, language: str | None, status: str, reason: str | None
    ) -> Template:
        status = status.upper()
        if status not in catalog.STATUSES:
            raise SimInputError(f"status is one of {', '.join(catalog.STATUSES)}")
        for t in self.templates.get(waba_id, []):
            if t.name == name and (language is None or t.language == language):
                t.status = status
                if status == "REJECTED":
                    t.rejected_reason = reason or "INVALID_FORMAT"
                self._template_event(t, status, reason)
                return t
        raise SimInputError(f"no template {name!r} in WABA {waba_id}", 404)

    def _template_event(self, template: Template, event: str, reason: str | None) -> None:
        numbers = self.numbers_of_waba(template.waba_id)
        if not numbers:
            return
        assert numbers[0].app_id is not None
        value = payloads.template_status_value(
            template.id, template.name, template.language, event, reason, template.category
        )
        self.dispatcher.emit(
            Update(numbers[0].app_id, template.waba_id, "message_template_status_update", value)
        )

    def number_info(self, pnid: str, token: str | None) -> dict[str, Any]:
        number = self.numbers[pnid]
        self.authorize(token, [number])
        return {
            "verified_name": number.verified_name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": number.display_phone_number,
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "HIGH" if number.throughput > 80 else "STANDARD"},
            "id": number.phone_number_id,
        }

    def phone_numbers(self, waba_id: str, token: str | None) -> dict[str, Any]:
        self._waba(waba_id, token)
        data = [
            {k: v for k, v in self.number_info(n.phone_number_id, token).items()}
            for n in self.numbers_of_waba(waba_id)
            if token and hmac.compare_digest(n.access_token.encode(), token.encode())
        ]
        return {"data": data}

    # -- simulated customers -----------------------------------------------------------------
    def customer_sends(
        self, ident: str, spec: dict[str, Any], *, deliver: bool | None = None
    ) -> dict[str, Any]:
        """A simulated customer sends a message to a business number: its webhook goes out
        (unless ``deliver`` is false), the 24-hour window opens."""
        if not isinstance(spec, dict):
            raise SimInputError("the message is a JSON object")
        pnid = spec.get("phone_number_id") or self.first_number().phone_number_id
        number = self.numbers.get(str(pnid))
        if number is None:
            raise SimInputError(f"no business number {pnid!r} is configured", 404)
        customer = self.customer(ident)
        message, summary = self._build_inbound(number, customer, spec)
        now = self.now()
        kind = str(message.get("type"))
        detail: dict[str, Any] = {"message": message}
        context = message.get("context")
        if isinstance(context, dict) and context.get("id"):
            detail["reply_to"] = context["id"]
        if kind == "reaction":
            target = self.items.get(str(message.get("reaction", {}).get("message_id")))
            if target is not None:
                target.detail["customer_reaction"] = message["reaction"].get("emoji") or None
        self._add_item(number, customer, str(message["id"]), "in", kind, summary, detail)
        if kind != "system":
            customer.last_inbound[number.phone_number_id] = now
            if "referral" in message:
                customer.entry_point_until[number.phone_number_id] = now + ENTRY_POINT_S
        throughput = self._throughput_bucket(number)
        if throughput.available(now):
            throughput.take(now)  # inbound counts against the number's throughput too
        meta = payloads.metadata(number.display_phone_number, number.phone_number_id)
        contacts = [customer.block()] if kind != "system" else None
        value = payloads.messages_value(meta, contacts=contacts, messages=[message])
        assert number.app_id is not None
        update = Update(number.app_id, number.waba_id, "messages", value)
        if kind == "system":
            self._apply_system(customer, message.get("system", {}))
        self.stats["inbound"] += 1
        if deliver is None:
            deliver = bool(spec.get("deliver", True))
        if deliver:
            for _ in range(1 + int(bool(spec.get("duplicate")))):
                self.dispatcher.emit(update)
        return {
            "wamid": message["id"],
            "customer": customer.key,
            "message": message,
            "payload": payloads.envelope([update]),
        }

    def _apply_system(self, customer: Customer, system: dict[str, Any]) -> None:
        kind = system.get("type")
        if kind == "user_changed_number" and system.get("wa_id"):
            self._identities.pop(customer.wa_id or "", None)
            customer.wa_id = str(system["wa_id"])
        elif kind == "user_changed_user_id" and system.get("user_id"):
            self._identities.pop(customer.user_id or "", None)
            customer.user_id = str(system["user_id"])
        self._index(customer)

    def set_preference(self, ident: str, pnid: str | None, value: str) -> dict[str, Any]:
        if value not in ("stop", "resume"):
            raise SimInputError("value is stop or resume")
        number = self.numbers.get(pnid or self.first_number().phone_number_id)
        if number is None:
            raise SimInputError(f"no business number {pnid!r} is configured", 404)
        customer = self.customer(ident)
        customer.marketing_stopped = value == "stop"
        meta = payloads.metadata(number.display_phone_number, number.phone_number_id)
        value_obj = payloads.preference_value(
            meta,
            customer.block(),
            wa_id=None if customer.hide_phone else customer.wa_id,
            user_id=customer.user_id,
            value=value,
            timestamp=int(self.now()),
        )
        assert number.app_id is not None
        update = Update(number.app_id, number.waba_id, "user_preferences", value_obj)
        self.dispatcher.emit(update)
        return payloads.envelope([update])

    def _media_for(
        self, number: NumberConfig, kind: str, obj: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        """The media object of an inbound message, backed by media the simulator serves."""
        obj = dict(obj)
        if obj.get("id") and obj["id"] in self.media:
            media = self.media[str(obj["id"])]
        elif obj.get("id"):
            return obj  # an id the test made up: passed through untouched
        else:
            raw = spec.get("content_b64")
            mime = spec.get("mime_type") or obj.get("mime_type")
            if raw is not None:
                try:
                    data = base64.b64decode(str(raw), validate=True)
                except ValueError:
                    raise SimInputError("content_b64 is not base64") from None
                if not mime:
                    raise SimInputError("give mime_type with content_b64")
            else:
                default_mime, data = PLACEHOLDER_MEDIA[kind]
                mime = mime or default_mime
            media = self._store_media(
                number.phone_number_id,
                data,
                str(mime),
                obj.get("filename") or spec.get("filename"),
                INBOUND_MEDIA_TTL_S,
            )
        obj.update({"mime_type": media.mime_type, "sha256": media.sha256, "id": media.id})
        if spec.get("with_url", True):
            base = self.config.public_url or f"http://{self.config.host}:{self.config.port}"
            obj["url"] = self.media_url(media, base)
        return obj

    def _build_inbound(
        self, number: NumberConfig, customer: Customer, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        if isinstance(spec.get("raw"), dict):
            raw: dict[str, Any] = json.loads(json.dumps(spec["raw"]))
            raw.setdefault("id", payloads.new_wamid())
            raw.setdefault("timestamp", str(int(self.now())))
            raw.setdefault("type", "unknown")
            return raw, f"[{raw['type']}]"
        kind = spec.get("type", "text")
        if not isinstance(kind, str) or not kind:
            raise SimInputError("type is a message type such as text, image, location")
        if kind == "voice":
            kind, spec = "audio", {**spec, "voice": True}
        message: dict[str, Any] = {
            **payloads.sender_fields(
                customer.wa_id, customer.user_id, customer.hide_phone, customer.hidden_as
            ),
            "id": spec.get("wamid") or payloads.new_wamid(),
            "timestamp": str(int(spec.get("timestamp") or self.now())),
            "type": kind,
        }
        given = spec.get(kind)
        summary = f"[{kind}]"
        if kind == "text":
            body = given.get("body") if isinstance(given, dict) else given or spec.get("body")
            if not isinstance(body, str) or not body:
                raise SimInputError("a text message needs text (a non-empty string)")
            message["text"] = {"body": body}
            summary = body
        elif kind in payloads.MEDIA_TYPES:
            obj = dict(given) if isinstance(given, dict) else {}
            for key in ("caption", "filename"):
                if spec.get(key) and key not in obj:
                    obj[key] = spec[key]
            if kind == "audio" and spec.get("voice"):
                obj["voice"] = True
            if kind == "sticker":
                obj.setdefault("animated", bool(spec.get("animated", False)))
            if kind == "document" and "filename" not in obj:
                obj["filename"] = "document.pdf"
            message[kind] = self._media_for(number, kind, obj, spec)
            summary = f"[{obj.get('filename') or kind}] {obj.get('caption') or ''}".strip()
        elif kind == "location":
            loc = (
                given
                if isinstance(given, dict)
                else {
                    k: spec[k]
                    for k in ("latitude", "longitude", "name", "address", "url")
                    if k in spec
                }
            )
            if "latitude" not in loc or "longitude" not in loc:
                raise SimInputError("a location needs latitude and longitude")
            message["location"] = loc
            summary = f"[location] {loc.get('name') or ''}".strip()
        elif kind == "contacts":
            shared = (
                given
                if isinstance(given, list)
                else spec.get("contacts_list")
                or [
                    {
                        "name": {"formatted_name": "Dana Example", "first_name": "Dana"},
                        "phones": [
                            {"phone": "+1 650 555 0177", "type": "CELL", "wa_id": "16505550177"}
                        ],
                    }
                ]
            )
            message["contacts"] = shared
            summary = "[contact card]"
        elif kind == "interactive":
            message["interactive"], summary = self._interactive_reply(given, spec)
        elif kind == "button":
            obj = (
                given
                if isinstance(given, dict)
                else {"payload": spec.get("payload") or spec.get("text"), "text": spec.get("text")}
            )
            if not obj.get("text"):
                raise SimInputError("a button reply needs text")
            message["button"] = obj
            summary = str(obj["text"])
        elif kind == "reaction":
            obj = (
                given
                if isinstance(given, dict)
                else {"message_id": spec.get("message_id"), "emoji": spec.get("emoji", "")}
            )
            if not obj.get("message_id"):
                raise SimInputError("a reaction needs message_id (the message reacted to)")
            if not obj.get("emoji"):
                obj = (
                    {"message_id": obj["message_id"]}
                    if spec.get("emoji") is None
                    else {**obj, "emoji": ""}
                )
            message["reaction"] = obj
            summary = obj.get("emoji") or "(reaction removed)"
        elif kind == "order":
            obj = (
                given
                if isinstance(given, dict)
                else {
                    "catalog_id": "1234567890",
                    "text": spec.get("text", ""),
                    "product_items": spec.get("product_items")
                    or [
                        {
                            "product_retailer_id": "SKU-1",
                            "quantity": 2,
                            "item_price": 12.5,
                            "currency": "USD",
                        }
                    ],
                }
            )
            message["order"] = obj
            summary = "[order]"
        elif kind == "system":
            message["system"], summary = self._system(customer, given, spec)
            if message["system"].get("type") == "user_changed_number":
                message.pop("from_user_id", None)
        elif kind == "unsupported":
            message["errors"] = payloads.unsupported_errors()
            if isinstance(given, dict):
                message["unsupported"] = given
        elif kind == "edit":
            obj = (
                given
                if isinstance(given, dict)
                else {
                    "original_message_id": spec.get("original_message_id"),
                    "message": {"type": "text", "text": {"body": spec.get("text")}},
                }
            )
            if not obj.get("original_message_id"):
                raise SimInputError("an edit needs original_message_id")
            message["edit"] = obj
            summary = f"(edited) {spec.get('text') or ''}".strip()
            target = self.items.get(str(obj["original_message_id"]))
            if target is not None and spec.get("text"):
                target.text = str(spec["text"])
                target.detail["edited"] = True
        elif kind == "revoke":
            obj = (
                given
                if isinstance(given, dict)
                else {"original_message_id": spec.get("original_message_id")}
            )
            if not obj.get("original_message_id"):
                raise SimInputError("a revoke needs original_message_id")
            message["revoke"] = obj
            summary = "(message deleted)"
            target = self.items.get(str(obj["original_message_id"]))
            if target is not None:
                target.detail["revoked"] = True
        else:  # a type Meta may add tomorrow: sent as given
            message[kind] = given if given is not None else {}
        self._decorate(number, customer, message, spec)
        if isinstance(spec.get("fields"), dict):
            message.update(spec["fields"])
        return message, summary

    def _interactive_reply(self, given: Any, spec: dict[str, Any]) -> tuple[dict[str, Any], str]:
        if isinstance(given, dict) and given.get("type"):
            reply = given
        else:
            kind = spec.get("reply_type", "button_reply")
            if kind == "nfm_reply":
                reply = {
                    "type": "nfm_reply",
                    "nfm_reply": {
                        "name": "flow",
                        "body": "Sent",
                        "response_json": json.dumps(spec.get("response") or {"flow_token": "t"}),
                    },
                }
            else:
                if kind not in ("button_reply", "list_reply"):
                    raise SimInputError("reply_type is button_reply, list_reply or nfm_reply")
                inner = {"id": spec.get("id"), "title": spec.get("title")}
                if kind == "list_reply" and spec.get("description"):
                    inner["description"] = spec["description"]
                if not inner["id"] or not inner["title"]:
                    raise SimInputError("an interactive reply needs id and title")
                reply = {"type": kind, kind: inner}
        inner = reply.get(str(reply.get("type")), {})
        title = inner.get("title") or inner.get("body") or "[interactive]"
        return reply, str(title)

    def _system(
        self, customer: Customer, given: Any, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        if isinstance(given, dict) and given.get("type"):
            return dict(given), str(given.get("body") or "[system]")
        kind = spec.get("system_type", "user_changed_number")
        name = customer.label
        if kind == "user_changed_number":
            new = str(spec.get("new_wa_id") or "").lstrip("+")
            if not new.isdigit():
                raise SimInputError("user_changed_number needs new_wa_id (digits)")
            body = f"User {name} changed from {customer.wa_id} to {new}"
            return {"body": body, "wa_id": new, "type": kind}, body
        if kind == "user_changed_user_id":
            new = str(spec.get("new_user_id") or bsuid_for(customer.wa_id or name, "changed"))
            body = "User changed their business-scoped user ID"
            return {"body": body, "user_id": new, "type": kind}, body
        if kind == "customer_identity_changed":
            body = f"{name}'s security code changed"
            return {"body": body, "identity": secrets.token_hex(8), "type": kind}, body
        raise SimInputError(
            "system_type is user_changed_number, user_changed_user_id or customer_identity_changed"
        )

    def _decorate(
        self,
        number: NumberConfig,
        customer: Customer,
        message: dict[str, Any],
        spec: dict[str, Any],
    ) -> None:
        context: dict[str, Any] = {}
        reply_to = spec.get("reply_to")
        if reply_to:
            target = self.items.get(str(reply_to))
            if target is not None and target.direction == "out":
                context["from"] = payloads.digits(number.display_phone_number)
            else:
                context["from"] = customer.wa_id or ""
            context["id"] = str(reply_to)
        if spec.get("frequently_forwarded"):
            context["forwarded"] = True
            context["frequently_forwarded"] = True
        elif spec.get("forwarded"):
            context["forwarded"] = True
        product = spec.get("referred_product")
        if product:
            context["referred_product"] = (
                product
                if isinstance(product, dict)
                else {"catalog_id": "1234567890", "product_retailer_id": "SKU-1"}
            )
        if context:
            message["context"] = context
        referral = spec.get("referral")
        if referral:
            message["referral"] = (
                referral if isinstance(referral, dict) else (payloads.default_referral())
            )

    # -- sim controls --------------------------------------------------------------------------
    def add_fault(self, spec: dict[str, Any]) -> Fault:
        code, status = spec.get("code"), spec.get("http_status")
        if code is None and status is None:
            raise SimInputError("a fault needs code (a Meta error code) and/or http_status")
        try:
            fault = Fault(
                id=next(self._fault_seq),
                code=int(code) if code is not None else None,
                http_status=int(status) if status is not None else None,
                remaining=int(spec.get("count", 1)),
                endpoint=str(spec.get("endpoint", "messages")),
                phone_number_id=spec.get("phone_number_id"),
                to=str(spec["to"]).lstrip("+") if spec.get("to") else None,
                details=spec.get("details"),
            )
        except (TypeError, ValueError):
            raise SimInputError("code, http_status and count are numbers") from None
        if fault.endpoint not in ("messages", "media", "templates", "download", "any"):
            raise SimInputError("endpoint is messages, media, templates, download or any")
        self.faults.append(fault)
        return fault

    def update_number(self, pnid: str, changes: dict[str, Any]) -> NumberConfig:
        number = self.numbers.get(pnid)
        if number is None:
            raise SimInputError(f"no business number {pnid!r}", 404)
        merged = number.model_dump() | {k: v for k, v in changes.items() if v is not None}
        try:
            updated = NumberConfig.model_validate(merged)
        except ValueError as exc:
            raise SimInputError(str(exc)) from None
        if updated.app_id not in self.apps:
            raise SimInputError(f"no app {updated.app_id!r}")
        self.numbers[pnid] = updated
        self.config.numbers = list(self.numbers.values())
        return updated

    def add_number(self, spec: dict[str, Any]) -> NumberConfig:
        try:
            number = NumberConfig.model_validate(spec)
        except ValueError as exc:
            raise SimInputError(str(exc)) from None
        if number.phone_number_id in self.numbers:
            raise SimInputError(f"number {number.phone_number_id} exists", 409)
        if number.app_id is None:
            number.app_id = next(iter(self.apps))
        if number.app_id not in self.apps:
            raise SimInputError(f"no app {number.app_id!r}")
        self.numbers[number.phone_number_id] = number
        self.config.numbers = list(self.numbers.values())
        return number

    def reset(self) -> None:
        """Forget conversations, sends, media, faults and counters (not numbers, customers'
        identities or templates)."""
        self.threads.clear()
        self.items.clear()
        self.sent.clear()
        self.sent_by_wamid.clear()
        self.media.clear()
        self.faults.clear()
        self.typing.clear()
        self.stats.clear()
        self.callback_data.clear()
        self._throughput.clear()
        self._pairs.clear()
        for c in self.customers.values():
            c.last_inbound.clear()
            c.entry_point_until.clear()
            c.marketing_stopped = False

    def stats_json(self) -> dict[str, Any]:
        return {
            "accepted": self.stats["accepted"],
            "inbound": self.stats["inbound"],
            "reads": self.stats["reads"],
            "rejected": {
                k.split(".", 1)[1]: v for k, v in self.stats.items() if k.startswith("rejected.")
            },
            "accepted_by_number": {
                k.split(".", 1)[1]: v for k, v in self.stats.items() if k.startswith("accepted.")
            },
            "statuses": {
                k.split(".", 1)[1]: v for k, v in self.stats.items() if k.startswith("statuses.")
            },
            "repeated_callback_data": sum(1 for v in self.callback_data.values() if v > 1),
            "webhooks": dict(self.dispatcher.counts),
            "webhooks_outstanding": self.dispatcher.outstanding,
        }

    # -- persistence ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "clock_offset_s": self.clock.offset.total_seconds(),
            "customers": [asdict(c) for c in self.customers.values()],
            "templates": [t.to_state() for ts in self.templates.values() for t in ts],
            "media": [
                {**asdict(m), "data": base64.b64encode(m.data).decode()}
                for m in self.media.values()
            ],
            "items": [asdict(i) for i in sorted(self.items.values(), key=lambda i: i.seq)],
            "sent": [s.as_json() for s in self.sent],
            "url_key": base64.b64encode(self._url_key).decode(),
        }

    def _fingerprint(self) -> tuple[int, ...]:
        return (
            len(self.customers),
            len(self.items),
            len(self.sent),
            len(self.media),
            sum(len(t) for t in self.templates.values()),
            sum(self.stats.values()),
            int(self.clock.offset.total_seconds()),
        )

    def save(self, *, force: bool = True) -> None:
        """Write the state file (when configured); ``force=False`` skips an unchanged state."""
        path = self.config.state_file
        if path is None:
            return
        fingerprint = self._fingerprint()
        if not force and fingerprint == self._saved:
            return
        self._saved = fingerprint
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(self.snapshot()), encoding="utf-8")
        os.replace(tmp, path)

    def restore(self, state: dict[str, Any]) -> None:
        from datetime import timedelta

        self.clock.offset = timedelta(seconds=float(state.get("clock_offset_s", 0)))
        if state.get("url_key"):
            self._url_key = base64.b64decode(state["url_key"])
        self.customers = {c["key"]: Customer(**c) for c in state.get("customers", [])}
        self._identities = {}
        for customer in self.customers.values():
            self._index(customer)
        keys = [int(k[1:]) for k in self.customers if k[1:].isdigit()]
        self._customer_seq = itertools.count(max(keys, default=0) + 1)
        self.templates = {}
        for t in state.get("templates", []):
            template = Template(**t)
            self.templates.setdefault(template.waba_id, []).append(template)
        self.media = {
            m["id"]: Media(**{**m, "data": base64.b64decode(m["data"])})
            for m in state.get("media", [])
        }
        self.items, self.threads = {}, {}
        for raw in state.get("items", []):
            item = Item(**raw)
            self.items[item.wamid] = item
            self.threads.setdefault((item.phone_number_id, item.customer), []).append(item)
        self.sent = [Sent(**s) for s in state.get("sent", [])]
        self.sent_by_wamid = {s.wamid: s for s in self.sent if s.wamid and s.kind == "message"}
        top = max(
            [i.seq for i in self.items.values()]
            + [s.seq for s in self.sent]
            + [t.seq for ts in self.templates.values() for t in ts],
            default=0,
        )
        self._seq = itertools.count(top + 1)
