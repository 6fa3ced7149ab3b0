"""What the inbox's triage controls show and do: assignment (me, a member, a team), snooze,
labels, internal notes in the thread, canned responses for the composer's ``/shortcut``, the
notification bell and its e-mail preference, the contact panel (editable attributes, consent,
data requests) and the restriction banner. Over the inbox domain's services
(:mod:`connectx.inbox`), which audit and announce every change; views stay thin."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.inbox import assignment, canned, contact_panel, labels, notes, notifications
from connectx.inbox import repository as inbox_repo
from connectx.kit import clock
from connectx.kit.errors import InvalidInput, NotFound
from connectx.kit.numbers import is_digits
from connectx.models.conversation import Conversation
from connectx.models.inbox import CannedResponse, Label, Notification

# Snooze choices offered in the header (minutes); the JSON API takes any time up to a year.
SNOOZE_CHOICES = (
    (60, "1 hour"),
    (240, "4 hours"),
    (1440, "1 day"),
    (4320, "3 days"),
    (10080, "1 week"),
)
CANNED_QUERY = re.compile(r"^/([a-z0-9_-]{0,32})$")
CANNED_SHOWN = 8
BELL_SHOWN = 10


@dataclass
class Person:
    user_id: int
    name: str


async def people(db: AsyncSession, workspace_id: int) -> list[Person]:
    """The workspace's owners, admins and agents (who can be assigned), by name (their accounts
    in one statement; only the names are opened)."""
    from connectx.accounts.service import name_of
    from connectx.privacy.vault import CryptoError

    out = []
    for account in await inbox_repo.answering_accounts(db, workspace_id):
        try:
            name = await name_of(db, account)
        except CryptoError:  # the account holder was erased (key destroyed)
            name = "(erased account)"
        out.append(Person(account.id, name))
    return sorted(out, key=lambda p: p.name.casefold())


@dataclass
class Triage:
    """The header's state of a conversation: who has it, its labels, snooze, restriction."""

    assignee_id: int | None
    assignee: str | None
    team_id: int | None
    team: str | None
    mine: bool
    people: list[Person]
    teams: list[Any]
    labels: list[Label]
    all_labels: list[Label]
    snoozed_until: datetime | None
    restricted: bool
    snooze_choices: tuple[tuple[int, str], ...] = SNOOZE_CHOICES


async def triage(
    db: AsyncSession,
    principal: Principal,
    conversation: Conversation,
    every_label: list[Label] | None = None,
    members: list[Person] | None = None,
) -> Triage:
    """``every_label``, ``members``: the workspace's labels and :func:`people` when the caller
    has read them already."""
    from connectx.privacy.rights.restriction import is_restricted

    ws = conversation.workspace_id
    if members is None:
        members = await people(db, ws)
    names = {p.user_id: p.name for p in members}
    teams = await inbox_repo.teams(db, ws)
    if every_label is None:
        every_label = await labels.list_all(db, ws)
    attached = set((await inbox_repo.labels_of(db, ws, [conversation.id]))[conversation.id])
    assignee = conversation.assignee_user_id
    return Triage(
        assignee_id=assignee,
        assignee=(names.get(assignee, f"member {assignee}") if assignee is not None else None),
        team_id=conversation.team_id,
        team=next((t.name for t in teams if t.id == conversation.team_id), None),
        mine=assignee is not None and assignee == principal.user_id,
        people=members,
        teams=teams,
        labels=[label for label in every_label if label.id in attached],
        all_labels=every_label,
        snoozed_until=conversation.snoozed_until if conversation.status == "pending" else None,
        restricted=await is_restricted(db, conversation.contact_id),
    )


def optional_id(raw: str, name: str) -> int | None:
    """A form's id field: empty is none; anything but digits is refused (422)."""
    raw = raw.strip()
    if not raw:
        return None
    if not is_digits(raw):
        raise InvalidInput(f"Choose a {name.removesuffix('_id')} from the list.", field=name)
    return int(raw)


async def assign(
    db: AsyncSession, principal: Principal, conversation_id: int, to: str, user: str, team: str
) -> None:
    """``to`` "me" (assign to the caller, keeping the team), "nobody", or "pick" (``user`` and
    ``team`` from the form; empty is none)."""
    assert principal.workspace_id is not None
    current = await inbox_repo.conversation(db, principal.workspace_id, conversation_id)
    if to == "me":
        await assignment.assign(
            db, principal, conversation_id, user_id=None, team_id=current.team_id, to_me=True
        )
    elif to == "nobody":
        await assignment.assign(db, principal, conversation_id, user_id=None, team_id=None)
    elif to == "pick":
        await assignment.assign(
            db,
            principal,
            conversation_id,
            user_id=optional_id(user, "user_id"),
            team_id=optional_id(team, "team_id"),
        )
    else:
        raise InvalidInput("to is me, nobody or pick.", field="to")


async def snooze(
    db: AsyncSession, principal: Principal, conversation_id: int, minutes: str, until: str = ""
) -> None:
    """For one of the preset ``minutes``, or ``until`` a chosen time (ISO 8601 with its zone;
    the page sends the agent's local choice as UTC), which wins when both are given."""
    assert principal.workspace_id is not None
    await inbox_repo.conversation(db, principal.workspace_id, conversation_id)  # 404 first
    if until.strip():
        try:
            when = datetime.fromisoformat(until.strip())
        except ValueError:
            raise InvalidInput("Choose a date and time to snooze until.", field="until") from None
    elif not is_digits(minutes.strip()) or int(minutes) <= 0:
        raise InvalidInput("Choose how long to snooze for.", field="minutes")
    else:
        when = clock.now() + timedelta(minutes=int(minutes))
    await assignment.snooze(db, principal, conversation_id, when)


async def set_label(
    db: AsyncSession, principal: Principal, conversation_id: int, label_id: int, on: bool
) -> None:
    if on:
        await labels.attach(db, principal, conversation_id, label_id)
    else:
        await labels.detach(db, principal, conversation_id, label_id)


# -- internal notes ---------------------------------------------------------------------------
@dataclass
class NoteBubble:
    id: int
    author: str
    body: str | None
    created_at: datetime

    @property
    def dom_id(self) -> str:
        return f"note-{self.id}"


async def _bubbles(
    db: AsyncSession, ws: int, views: list[notes.NoteView], members: list[Person] | None = None
) -> list[NoteBubble]:
    if views and members is None:
        members = await people(db, ws)
    names = {p.user_id: p.name for p in members or []}
    return [
        NoteBubble(
            v.id,
            names.get(v.author_user_id, "A former member") if v.author_user_id else "API",
            v.body,
            v.created_at,
        )
        for v in views
    ]


async def notes_between(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    start: datetime | None,
    end: datetime | None,
    members: list[Person] | None = None,
) -> list[NoteBubble]:
    """The conversation's notes written in [start, end) (None: unbounded), oldest first: a
    thread page shows the notes of its stretch of time among its messages. ``members``:
    :func:`people` when the caller has read them already."""
    assert principal.workspace_id is not None
    views = await notes.list_for(db, principal, conversation_id, start=start, end=end)
    return await _bubbles(db, principal.workspace_id, views, members)


async def add_note(
    db: AsyncSession, principal: Principal, conversation_id: int, body: str
) -> NoteBubble:
    assert principal.workspace_id is not None
    await inbox_repo.conversation(db, principal.workspace_id, conversation_id)  # 404 first
    view = await notes.add(db, principal, conversation_id, body)
    return (await _bubbles(db, principal.workspace_id, [view]))[0]


async def one_note(
    db: AsyncSession, principal: Principal, conversation_id: int, note_id: int
) -> NoteBubble:
    found = [n for n in await notes_between(db, principal, conversation_id, None, None)]
    for n in found:
        if n.id == note_id:
            return n
    raise NotFound(f"No note {note_id} in conversation {conversation_id}.")


def merge(bubbles: list[Any], note_list: list[NoteBubble]) -> list[tuple[str, Any]]:
    """Messages and notes in time order, as ("m", bubble) and ("n", note) items."""
    items: list[tuple[datetime, int, str, Any]] = [(b.sent_at, 0, "m", b) for b in bubbles] + [
        (n.created_at, 1, "n", n) for n in note_list
    ]
    items.sort(key=lambda t: (t[0], t[1]))
    return [(kind, item) for _, _, kind, item in items]


# -- canned responses -------------------------------------------------------------------------
async def canned_matches(db: AsyncSession, workspace_id: int, text: str) -> list[CannedResponse]:
    """The composer's text is ``/sho…`` (nothing else typed): the saved replies whose shortcut
    starts so. Anything else: none."""
    found = CANNED_QUERY.match(text.strip().lower()) if text.startswith("/") else None
    if found is None:
        return []
    return (await canned.search(db, workspace_id, found.group(1) or None))[:CANNED_SHOWN]


# -- the bell ---------------------------------------------------------------------------------
@dataclass
class BellItem:
    id: int
    conversation_id: int | None
    by: str
    created_at: datetime
    unread: bool


@dataclass
class Bell:
    unread: int
    items: list[BellItem] = field(default_factory=list)
    email_on_assignment: bool = False


async def bell(db: AsyncSession, principal: Principal) -> Bell | None:
    """The member's latest notifications and their e-mail preference (None for API keys)."""
    if principal.user_id is None or principal.workspace_id is None:
        return None
    items, unread = await notifications.list_for(
        db, principal, unread=False, before_id=None, limit=BELL_SHOWN
    )
    names = {p.user_id: p.name for p in await people(db, principal.workspace_id)} if items else {}
    preference = await notifications.preferences(db, principal)
    return Bell(
        unread=unread,
        items=[_bell_item(n, names) for n in items],
        email_on_assignment=preference.email_on_assignment,
    )


def _bell_item(n: Notification, names: dict[int, str]) -> BellItem:
    actor = n.actor or ""
    if actor.startswith("user:") and actor[5:].isdigit():
        by = names.get(int(actor[5:]), "a former member")
    elif actor == "system":
        by = "round-robin"
    else:
        by = "the API"
    return BellItem(n.id, n.conversation_id, by, n.created_at, n.read_at is None)


# -- the contact panel ------------------------------------------------------------------------
async def requests_of_contact(
    db: AsyncSession, workspace_id: int, contact_id: int
) -> list[dict[str, Any]]:
    """The contact's data-subject requests in this workspace (ids, kind, status, clock; no
    personal data), the panel's hook (:func:`connectx.inbox.contact_panel.provide_requests`)."""
    from connectx.privacy.requests.service import list_for_contact

    return [
        {
            "id": r.id,
            "reference": r.reference,
            "kind": r.kind,
            "kind_words": r.kind_words,
            "status": r.status,
            "received_at": r.received_at,
            "due_at": r.clock.due_at,
            "clock": r.clock.words,
            "closed": r.closed_at is not None,
        }
        for r in await list_for_contact(db, workspace_id, contact_id)
    ]


contact_panel.provide_requests(requests_of_contact)


def attribute_changes(form: Any) -> dict[str, str | None]:
    """The panel form: ``attr.<key>`` for each existing attribute (empty removes it) and
    ``new_key``/``new_value`` for one more."""
    changes: dict[str, str | None] = {}
    for key, value in form.multi_items():
        key = str(key)
        if key.startswith("attr.") and isinstance(value, str):
            changes[key[5:]] = value
    new_key = str(form.get("new_key") or "").strip().lower()
    new_value = str(form.get("new_value") or "").strip()
    if new_key or new_value:
        if not new_key or not new_value:
            raise InvalidInput("A new attribute needs both a name and a value.", field="new_key")
        changes[new_key] = new_value
    return changes
