"""What the inbox pages show and do, over the conversation, message, contact, template and send
services. Views stay thin; every read of personal data is audited by the services it calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.channels import repository as channels_repo
from connectx.contacts.service import ContactView
from connectx.conversations import paging
from connectx.conversations import service as conversations
from connectx.inbox.ui import presenter
from connectx.inbox.ui import repository as repo
from connectx.kit.errors import Conflict, InvalidInput, NotFound
from connectx.messages import service as messages
from connectx.messages.service import MessageView
from connectx.models.channel import Channel
from connectx.models.conversation import Conversation
from connectx.models.inbox import Label
from connectx.models.template import WaTemplate
from connectx.outbound import repository as outbound_repo
from connectx.outbound import service as outbound
from connectx.outbound.schemas import MediaIn, ReactionIn, SendIn, TemplateButtonIn, TemplateIn
from connectx.privacy.vault import Vault

THREAD_PAGE = 40
LIST_PAGE = 30


@dataclass
class Row:
    """One conversation in the list."""

    id: int
    status: str
    contact_id: int
    name: str
    phone: str | None
    last_message_at: datetime
    preview: str
    preview_mine: bool
    window_open: bool
    channel_id: int
    unread: int = 0
    assignee: str | None = None
    labels: list[Any] = field(default_factory=list)


@dataclass
class Thread:
    conversation: Conversation
    contact: ContactView | None
    channel: Channel
    bubbles: list[presenter.Bubble]
    older_cursor: str | None
    window_open: bool
    window_expires_at: datetime | None
    templates: list[WaTemplate] = field(default_factory=list)
    triage: Any = None  # triage.Triage: assignment, labels, snooze, restriction
    notes: list[Any] = field(default_factory=list)  # triage.NoteBubble of this page's stretch

    @property
    def title(self) -> str:
        return display_name(self.contact)

    @property
    def items(self) -> list[tuple[str, Any]]:
        """Messages and internal notes of the page in time order."""
        from connectx.inbox.ui.triage import merge

        return merge(self.bubbles, self.notes)


def display_name(contact: ContactView | None) -> str:
    if contact is None:
        return "Unknown contact"
    return contact.name or contact.phone or contact.username or f"Contact {contact.id}"


async def _preview_text(vault: Vault, message: Any) -> str:
    if message.type == "reaction":
        emoji = await vault.decrypt_or_none(
            message.workspace_id,
            messages.subject_of(message.contact_id),
            messages.REACTION,
            message.reaction_enc,
        )
        return f"Reacted {emoji}" if emoji else "Removed a reaction"
    if message.revoked_at is not None:
        return "Deleted message"
    body = await vault.decrypt_or_none(
        message.workspace_id,
        messages.subject_of(message.contact_id),
        messages.BODY,
        message.body_enc,
    )
    if message.type == "template":
        return f"Template: {body}" if body else "Template"
    return body[:140] if body else presenter.preview(None) or message.type.capitalize()


async def list_rows(
    db: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    channel_id: int | None,
    cursor: str | None,
    view: str = "all",
    q: str | None = None,
    unread: bool = False,
    label_id: int | None = None,
    limit: int = LIST_PAGE,
    every_label: list[Label] | None = None,
) -> tuple[list[Row], str | None]:
    """A page of the inbox list (views, status, number, search, unread; keyset paging) from the
    inbox domain, with each conversation's newest message as its preview. ``every_label``: the
    workspace's labels when the caller has read them already."""
    from connectx.inbox import listing

    assert principal.workspace_id is not None
    found, next_cursor = await listing.page(
        db,
        principal,
        view=view,
        status=status,
        channel_id=channel_id,
        q=q or None,
        unread=unread,
        label_id=label_id,
        cursor=cursor,
        limit=limit,
    )
    ids = [r.conversation.id for r in found]
    latest = await repo.latest_messages(db, principal.workspace_id, ids)
    vault = Vault(db)
    every: dict[int, Label] = {}
    if any(r.labels for r in found):
        if every_label is None:
            every_label = await _all_labels(db, principal.workspace_id)
        every = {label.id: label for label in every_label}
    rows = []
    for r in found:
        last = latest.get(r.conversation.id)
        row = await _row(vault, r.conversation, r.contact, last, r.unread, principal)
        row.labels = [every[i] for i in r.labels if i in every]
        rows.append(row)
    return rows, next_cursor


async def _all_labels(db: AsyncSession, workspace_id: int) -> list[Label]:
    from connectx.inbox import labels

    return await labels.list_all(db, workspace_id)


async def _row(
    vault: Vault | None,
    conversation: Conversation,
    contact: ContactView | None,
    last: Any,
    unread: bool = False,
    principal: Principal | None = None,
) -> Row:
    assignee = getattr(conversation, "assignee_user_id", None)
    mine = principal is not None and assignee is not None and assignee == principal.user_id
    return Row(
        unread=int(unread),
        assignee=("Mine" if mine else "Assigned") if assignee is not None else None,
        id=conversation.id,
        status=conversation.status,
        contact_id=conversation.contact_id,
        name=display_name(contact),
        phone=contact.phone if contact else None,
        last_message_at=conversation.last_message_at,
        preview=await _preview_text(vault, last) if vault and last is not None else "",
        preview_mine=last is not None and last.direction == "out",
        window_open=conversations.window_open(conversation),
        channel_id=conversation.channel_id,
    )


async def _templates_of(db: AsyncSession, channel: Channel) -> list[WaTemplate]:
    return await outbound_repo.templates(db, channel.workspace_id, channel.waba_id)


def _known(templates: list[WaTemplate]) -> dict[tuple[str, str], list[Any]]:
    return {(t.name, t.language): list(t.components or []) for t in templates}


async def thread(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    cursor: str | None = None,
    *,
    with_messages: bool = True,
    every_label: list[Label] | None = None,
) -> Thread:
    """A conversation with its newest page of messages (oldest first on screen); without
    messages for the header and composer. ``every_label``: the workspace's labels when the
    caller has read them already."""
    assert principal.workspace_id is not None
    conversation, contact = await conversations.get_for(db, principal, conversation_id)
    views: list[MessageView] = []
    older = None
    if with_messages:
        views, older = await messages.list_for(
            db, principal, conversation_id, cursor=cursor, limit=THREAD_PAGE
        )
        views.reverse()
    channel = await channels_repo.get(db, principal.workspace_id, conversation.channel_id)
    templates = await _templates_of(db, channel)
    earlier = await _quoted(db, principal, conversation, views)
    from connectx.inbox.ui import triage

    # Who can be assigned, read once: the header's menu and the notes' authors.
    members = await triage.people(db, principal.workspace_id)
    page_notes = []
    if with_messages:
        # The notes of this page's stretch of time: from its oldest message (all earlier ones
        # when there is no older page) up to where the newer page begins.
        start = views[0].sent_at if views and older else None
        end = paging.decode_time_id(cursor)[0] if cursor else None
        page_notes = await triage.notes_between(db, principal, conversation.id, start, end, members)
    return Thread(
        conversation=conversation,
        contact=contact,
        channel=channel,
        bubbles=presenter.bubbles(views, _known(templates), earlier),
        older_cursor=older,
        window_open=conversations.window_open(conversation),
        window_expires_at=conversations.window_expires_at(conversation),
        templates=[t for t in templates if t.status == "APPROVED"],
        triage=await triage.triage(db, principal, conversation, every_label, members),
        notes=page_notes,
    )


async def _quoted(
    db: AsyncSession, principal: Principal, conversation: Conversation, views: list[MessageView]
) -> dict[str, MessageView]:
    on_page = {v.wamid for v in views}
    missing = sorted({v.reply_to_wamid for v in views if v.reply_to_wamid} - on_page)
    assert principal.workspace_id is not None
    rows = await repo.by_wamids(db, principal.workspace_id, conversation.id, missing)
    return {v.wamid: v for v in await messages.views(db, rows)}


async def one_message(
    db: AsyncSession, principal: Principal, conversation_id: int, message_id: int
) -> presenter.Bubble | None:
    """One message as the thread shows it (for live updates); None for reactions, edits and
    revokes, whose effect is on the message they name."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    conversation = await conversations.get(db, ws, conversation_id)
    message = await repo.message_in(db, ws, conversation.id, message_id)
    if message is None:
        raise NotFound(f"No message {message_id} in conversation {conversation_id}.")
    if message.type in presenter.EFFECT_TYPES and message.target_wamid:
        # A reaction, edit or revoke: what changed is the message it names.
        target = await repo.by_wamids(db, ws, conversation.id, [message.target_wamid])
        if not target:
            return None
        message = target[0]
    view = await messages.view(db, message)
    await audit.record_view(
        db,
        actor=principal.actor,
        action="messages.viewed",
        subject=f"contact:{conversation.contact_id}",
        workspace_id=ws,
        ip=principal.ip,
        data={"conversation": conversation.id, "messages": 1},
    )
    channel = await channels_repo.get(db, ws, conversation.channel_id)
    earlier = await _quoted(db, principal, conversation, [view])
    ours = await repo.our_reactions_to(db, ws, conversation.id, message.wamid)
    effects = await messages.views(db, ours)
    found = presenter.bubbles([view, *effects], _known(await _templates_of(db, channel)), earlier)
    return found[0] if found else None


async def send_text(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    text: str,
    reply_to: str | None,
    idempotency_key: str | None,
) -> outbound.Sent:
    text = text.strip()
    if not text:
        raise InvalidInput("Write a message first.", field="text")
    spec = SendIn(type="text", text=text, reply_to=reply_to or None, preview_url="http" in text)
    sent, _ = await outbound.send_in_conversation(
        db, principal, conversation_id, spec, idempotency_key
    )
    return sent


ATTACHMENT_KINDS = {"image": "image", "video": "video", "audio": "audio"}


def kind_of_upload(mime_type: str) -> str:
    """The WhatsApp message type for an uploaded file (anything else goes as a document)."""
    major = mime_type.split("/")[0]
    if mime_type == "image/webp":
        return "sticker"
    return ATTACHMENT_KINDS.get(major, "document")


async def send_attachment(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    data_b64: str,
    mime_type: str,
    filename: str,
    caption: str | None,
    idempotency_key: str | None,
) -> outbound.Sent:
    kind = kind_of_upload(mime_type)
    media = MediaIn(
        data_b64=data_b64,
        mime_type=mime_type,
        filename=filename or None,
        caption=(caption or None) if kind not in ("audio", "sticker") else None,
    )
    spec = SendIn(type=kind, media=media)
    sent, _ = await outbound.send_in_conversation(
        db, principal, conversation_id, spec, idempotency_key
    )
    return sent


async def react(
    db: AsyncSession, principal: Principal, conversation_id: int, message_id: int, emoji: str
) -> outbound.Sent:
    """React to a customer's message (an empty emoji removes our reaction)."""
    assert principal.workspace_id is not None
    message = await repo.message_in(db, principal.workspace_id, conversation_id, message_id)
    if message is None:
        raise NotFound(f"No message {message_id} in conversation {conversation_id}.")
    if message.direction != "in" or message.wamid.startswith("cx:"):
        raise InvalidInput("Only the customer's messages can be reacted to.", field="message")
    spec = SendIn(type="reaction", reaction=ReactionIn(message_id=message.wamid, emoji=emoji))
    sent, _ = await outbound.send_in_conversation(db, principal, conversation_id, spec, None)
    return sent


async def retry(
    db: AsyncSession, principal: Principal, conversation_id: int, message_id: int
) -> outbound.Sent:
    """Send a failed text or media message again (a new message; the failed one stays, so the
    history shows what happened). Never one whose secret was withheld (a 409: what is stored is
    the placeholder, not what the customer was to get)."""
    assert principal.workspace_id is not None
    message = await repo.message_in(db, principal.workspace_id, conversation_id, message_id)
    if message is None:
        raise NotFound(f"No message {message_id} in conversation {conversation_id}.")
    view = await messages.view(db, message)
    bubble = presenter.bubbles([view])[0] if view.type not in presenter.EFFECT_TYPES else None
    if bubble is not None and bubble.failure is not None and bubble.failure.withheld:
        raise Conflict(f"This message is not sent again. {presenter.WITHHELD_HINT}")
    if bubble is None or bubble.failure is None or not bubble.failure.retryable:
        raise InvalidInput(
            "Only a failed text or attachment whose error is temporary can be sent again.",
            field="message",
        )
    if view.type == "text":
        spec = SendIn(type="text", text=view.body or "", reply_to=view.reply_to_wamid)
    else:
        media_id = (view.content or {}).get("media_id") or message.media_id
        if not media_id:
            raise InvalidInput("The attachment is no longer available; attach it again.")
        spec = SendIn(
            type=view.type,
            media=MediaIn(id=str(media_id), caption=view.body),
            reply_to=view.reply_to_wamid,
        )
    sent, _ = await outbound.send_in_conversation(db, principal, conversation_id, spec, None)
    return sent


async def template_for(
    db: AsyncSession, principal: Principal, conversation_id: int, key: str
) -> presenter.TemplateForm:
    """The picker's form for ``key`` ("name|language"), from the conversation number's approved
    templates."""
    assert principal.workspace_id is not None
    conversation = await conversations.get(db, principal.workspace_id, conversation_id)
    channel = await channels_repo.get(db, principal.workspace_id, conversation.channel_id)
    name, _, language = key.partition("|")
    tpl = await outbound_repo.template(db, principal.workspace_id, channel.waba_id, name, language)
    if tpl is None or tpl.status != "APPROVED":
        raise InvalidInput(
            "Choose one of this number's approved templates (sync templates if it is missing).",
            field="template",
        )
    return presenter.template_form(tpl)


async def send_template(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    key: str,
    header: dict[str, str],
    body: dict[str, str],
    buttons: dict[int, str],
    idempotency_key: str | None,
) -> outbound.Sent:
    form = await template_for(db, principal, conversation_id, key)
    missing = presenter.template_preview(form, header, body, buttons).missing
    if missing:
        raise InvalidInput(f"Fill in {', '.join(missing)}.", field="template")
    spec = SendIn(
        type="template",
        template=TemplateIn(
            name=form.name,
            language=form.language,
            body=presenter.param_values(form.body_params, body, form.named),
            header_text=(
                presenter.param_values(form.header_params, header, form.named)
                if form.header_params
                else None
            ),
            buttons=[
                TemplateButtonIn(index=b.index, sub_type="url", parameter=buttons[b.index])
                for b in form.buttons
                if b.needs_param
            ],
        ),
    )
    sent, _ = await outbound.send_in_conversation(
        db, principal, conversation_id, spec, idempotency_key
    )
    return sent


async def row(db: AsyncSession, principal: Principal, conversation_id: int) -> Row:
    """One conversation as the list shows it (for live updates)."""
    from connectx.inbox import listing

    assert principal.workspace_id is not None
    found = await listing.one(db, principal, conversation_id)
    conversation = found.conversation
    latest = await repo.latest_messages(db, principal.workspace_id, [conversation.id])
    last = latest.get(conversation.id)
    one = await _row(Vault(db), conversation, found.contact, last, found.unread, principal)
    if found.labels:
        every = {label.id: label for label in await _all_labels(db, principal.workspace_id)}
        one.labels = [every[i] for i in found.labels if i in every]
    return one


async def conversation(
    db: AsyncSession, principal: Principal, conversation_id: int
) -> Conversation:
    """The caller's workspace's conversation (404 otherwise), checked before reading a form."""
    assert principal.workspace_id is not None
    return await conversations.get(db, principal.workspace_id, conversation_id)


async def set_status(
    db: AsyncSession, principal: Principal, conversation_id: int, status: str
) -> Conversation:
    await conversation(db, principal, conversation_id)
    found, _ = await conversations.set_status(db, principal, conversation_id, status)
    return found


@dataclass
class SidePanel:
    conversation: Conversation
    contact: ContactView
    history: list[Row]
    consent: list[Any]
    attributes: dict[str, str]
    requests: list[dict[str, Any]] | None
    restricted: bool


async def side_panel(db: AsyncSession, principal: Principal, conversation_id: int) -> SidePanel:
    """The contact beside a thread: who they are, the workspace's attributes about them
    (editable), their conversations, their consent, their data requests, whether processing is
    restricted (one ``contact.viewed`` audit entry, by the inbox's contact panel)."""
    from connectx.inbox import contact_panel
    from connectx.privacy.rights.restriction import is_restricted

    assert principal.workspace_id is not None
    conversation = await conversations.get(db, principal.workspace_id, conversation_id)
    found = await contact_panel.panel(db, principal, conversation.contact_id)
    history = [await _row(None, c, found.contact, None) for c in found.conversations]
    return SidePanel(
        conversation=conversation,
        contact=found.contact,
        history=history,
        consent=found.consent,
        attributes=found.attributes,
        requests=found.requests,
        restricted=await is_restricted(db, conversation.contact_id),
    )


async def update_attributes(
    db: AsyncSession, principal: Principal, conversation_id: int, changes: dict[str, str | None]
) -> None:
    from connectx.inbox import contact_panel

    assert principal.workspace_id is not None
    conversation = await conversations.get(db, principal.workspace_id, conversation_id)
    await contact_panel.update(db, principal, conversation.contact_id, changes)
