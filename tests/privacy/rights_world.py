"""A world for the data-subject rights tests, made the way production makes it: two businesses
(workspaces) with a connected number each, customers writing through signed webhooks, a file
sent, a consent decision, an agent's reply, a WhatsApp marketing opt-out, an agent viewing the
contact. The subject (Zara) writes to both businesses; the executors act on her as a customer of
business A. Every value of hers is distinct, so byte scans can look for each."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.media import store
from connectx.models.media import MediaFile
from connectx.models.message import Message
from connectx.privacy import consent
from connectx.privacy.rights import Subject
from connectx.privacy.vault import Vault
from tests.whatsapp.support import (
    DISPLAY_B,
    PNID_A,
    PNID_B,
    WABA_A,
    WABA_B,
    connect,
    delivered,
    drain,
    load,
)
from tests.workspaces.helpers import Caller, owner_of

# An agent's internal note about Zara, written through the inbox API.
NOTE = "zq-note: asked twice about the marmalade order"
# An attribute the business keeps about her (the inbox's contact panel).
ATTRIBUTE = ("loyalty_tier", "zq-attr-gold-since-2019")

# JPEG magic, then bytes nobody else has.
PHOTO = b"\xff\xd8\xff\xe0" + b"zara-photo-of-receipt-5521 " * 300


@dataclass
class Person:
    wa_id: str  # digits, as Meta sends it
    name: str
    bsuid: str
    words: str  # what they write

    @property
    def phone(self) -> str:
        return "+" + self.wa_id

    def values(self) -> list[bytes]:
        """What must never be readable once they are erased."""
        return [v.encode() for v in (self.wa_id, self.name, self.bsuid, self.words)]


ZARA = Person("971501234987", "Zara Quenby-Astor", "AE.88112233445566778899", "zq-marmalade-order")
OMAR = Person("971507771234", "Omar Vellacott", "AE.11223344556677889900", "ov-other-customer")
ZARA_AT_B = Person(ZARA.wa_id, ZARA.name, "AE.55443322110099887766", "zq-at-beta-travel")
YUSUF = Person("966551112233", "Yusuf Brannigan", "SA.99887766554433221100", "yb-beta-only")
CAPTION = "zq-caption-damaged-box"
REPLY = "zq-agent-reply-on-its-way"


@dataclass
class World:
    owner_a: Caller
    owner_b: Caller
    ws_a: int
    ws_b: int
    contacts: dict[str, int] = field(default_factory=dict)  # "zara", "omar", "zara_b", "yusuf"
    conversation: int = 0  # Zara's conversation in A
    photo_message: int = 0

    @property
    def subject(self) -> Subject:
        return Subject.contact(self.ws_a, self.contacts["zara"])

    def others(self) -> list[tuple[Person, int, str]]:
        return [
            (OMAR, self.ws_a, "omar"),
            (ZARA_AT_B, self.ws_b, "zara_b"),
            (YUSUF, self.ws_b, "yusuf"),
        ]


_wamid = 0


def _message(
    person: Person, pnid: str, waba: str, kind: str = "text", **extra: Any
) -> dict[str, Any]:
    global _wamid
    _wamid += 1
    payload = copy.deepcopy(load("message_text"))
    value = payload["entry"][0]["changes"][0]["value"]
    payload["entry"][0]["id"] = waba
    value["metadata"]["phone_number_id"] = pnid
    value["contacts"] = [
        {"profile": {"name": person.name}, "wa_id": person.wa_id, "user_id": person.bsuid}
    ]
    message = value["messages"][0]
    message.update(
        {
            "from": person.wa_id,
            "from_user_id": person.bsuid,
            "id": f"wamid.rights{_wamid}",
            "timestamp": str(int(clock.now().timestamp())),
        }
    )
    if kind == "text":
        message["text"] = {"body": person.words}
    else:
        del message["text"]
        message["type"] = kind
        message[kind] = extra
    return payload


def _preferences_stop(person: Person) -> dict[str, Any]:
    payload = copy.deepcopy(load("user_preferences_stop"))
    value = payload["entry"][0]["changes"][0]["value"]
    for contact in value.get("contacts", []):
        contact["wa_id"] = person.wa_id
        contact["user_id"] = person.bsuid
        contact.setdefault("profile", {})["name"] = person.name
    for pref in value.get("user_preferences", []):
        pref["wa_id"] = person.wa_id
        if "user_id" in pref:
            pref["user_id"] = person.bsuid
        pref["timestamp"] = int(clock.now().timestamp())
    return payload


async def _contact_id(owner: Caller, person: Person) -> int:
    r = await owner.get("/api/v1/contacts", params={"phone": person.phone})
    [item] = r.json()["items"]
    return int(item["id"])


async def _seal_photo(workspace_id: int, contact_id: int, message_id: int) -> None:
    """What the media download job does once Meta hands the file over (tests/media covers the
    download itself): seal it in the store and mark the row stored."""
    writer = store.SealedWriter(Vault(), workspace_id, contact_id)
    await writer.write(PHOTO)
    key = await writer.finish()
    async with unit_of_work() as db:
        await db.execute(
            update(MediaFile)
            .where(MediaFile.message_id == message_id)
            .values(
                state="stored",
                storage_key=key,
                size=len(PHOTO),
                mime_type="image/jpeg",
                sha256=hashlib.sha256(PHOTO).hexdigest(),
                stored_at=clock.now(),
            )
        )


async def build(app: Any) -> World:
    owner_a, ws_a = await owner_of(app, "Alpha Foods")
    owner_b, ws_b = await owner_of(app, "Beta Travel")
    await connect(owner_a)
    await connect(owner_b, pnid=PNID_B, waba=WABA_B, display=DISPLAY_B, token="EAAG-test-b-0002")
    world = World(owner_a, owner_b, ws_a, ws_b)
    client = owner_a.client
    for person, pnid, waba in (
        (ZARA, PNID_A, WABA_A),
        (OMAR, PNID_A, WABA_A),
        (ZARA_AT_B, PNID_B, WABA_B),
        (YUSUF, PNID_B, WABA_B),
    ):
        await delivered(client, _message(person, pnid, waba))
    photo = _message(
        ZARA,
        PNID_A,
        WABA_A,
        "image",
        caption=CAPTION,
        mime_type="image/jpeg",
        sha256=hashlib.sha256(PHOTO).hexdigest(),
        id="4471223300998877",
    )
    await delivered(client, photo)
    await delivered(client, _preferences_stop(ZARA))
    await drain()
    world.contacts = {
        "zara": await _contact_id(owner_a, ZARA),
        "omar": await _contact_id(owner_a, OMAR),
        "zara_b": await _contact_id(owner_b, ZARA_AT_B),
        "yusuf": await _contact_id(owner_b, YUSUF),
    }
    zara = world.contacts["zara"]
    async with unit_of_work() as db:
        world.photo_message = int(
            (
                await db.execute(
                    select(Message.id).where(Message.contact_id == zara, Message.type == "image")
                )
            ).scalar_one()
        )
        world.conversation = int(
            (
                await db.execute(
                    select(Message.conversation_id).where(Message.contact_id == zara).limit(1)
                )
            ).scalar_one()
        )
        for key, person_ws in (("zara", ws_a), ("omar", ws_a), ("zara_b", ws_b)):
            await consent.record(
                db,
                subject=f"contact:{world.contacts[key]}",
                workspace_id=person_ws,
                purpose="product_updates",
                channel="whatsapp",
                granted=True,
                source="api",
                wording="Yes, tell me about new products.",
                notice_version="2025-08-02",
                actor="system",
            )
    await _seal_photo(ws_a, zara, world.photo_message)
    r = await owner_a.post(
        f"/api/v1/conversations/{world.conversation}/messages",
        json={"type": "text", "text": REPLY},
    )
    assert r.status_code in (200, 201, 202), r.text
    assert (await owner_a.get(f"/api/v1/contacts/{zara}")).status_code == 200
    r = await owner_a.post(  # an internal note about her (never sent to her)
        f"/api/v1/conversations/{world.conversation}/notes",
        json={"body": NOTE},
    )
    assert r.status_code in (200, 201), r.text
    r = await owner_a.patch(  # an attribute the business keeps about her
        f"/api/v1/contacts/{zara}/attributes", json={"attributes": dict([ATTRIBUTE])}
    )
    assert r.status_code == 200, r.text
    r = await owner_a.post(  # a privacy request of hers (docs/privacy-requests.md)
        "/api/v1/privacy/requests",
        json={"contact_id": zara, "kind": "restriction", "identity_checked": True},
    )
    assert r.status_code == 201, r.text
    return world


async def messages_per_day(workspace_id: int) -> list[tuple[str, str, int]]:
    """An aggregate that must survive erasure: messages per day and direction."""
    async with unit_of_work() as db:
        day = func.substr(func.cast(Message.sent_at, type_=_text()), 1, 10)
        rows = await db.execute(
            select(day, Message.direction, func.count())
            .where(Message.workspace_id == workspace_id)
            .group_by(day, Message.direction)
            .order_by(day, Message.direction)
        )
        return [(str(d), str(direction), int(n)) for d, direction, n in rows.all()]


def _text() -> Any:
    from sqlalchemy import String

    return String()
