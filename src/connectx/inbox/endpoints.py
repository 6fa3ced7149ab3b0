"""``/api/v1`` of the inbox: the conversation list, assignment, snooze, labels, notes, read
markers, teams, routing, canned responses, notifications and preferences (docs/inbox.md).

People: owners, admins and agents work conversations; owners and admins manage teams, routing,
labels and canned responses. API keys: ``read`` to look, ``write`` to work conversations,
``admin`` to manage.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.conversations.schemas import ContactRef
from connectx.db.session import db_session
from connectx.inbox import (
    assignment,
    canned,
    contact_panel,
    labels,
    listing,
    notes,
    notifications,
    reads,
    teams,
)
from connectx.inbox.schemas import (
    AssignIn,
    CannedIn,
    CannedOut,
    CannedPatch,
    ConsentOut,
    ContactAttributesIn,
    ContactPanelOut,
    ConversationBrief,
    ConversationLabelsOut,
    InboxConversationOut,
    InboxPage,
    LabelIn,
    LabelOut,
    LabelPatch,
    LabelRefIn,
    NoteIn,
    NoteOut,
    NotificationOut,
    NotificationPage,
    PreferencesIn,
    PreferencesOut,
    RoutingIn,
    RoutingOut,
    SnoozeIn,
    TeamIn,
    TeamOut,
    UnreadCounts,
)
from connectx.kit.csrf import csrf_protect
from connectx.workspaces.access import allow

router = APIRouter(prefix="/api/v1", tags=["inbox"])

readers = allow("read", "owner", "admin", "agent")
workers = allow("write", "owner", "admin", "agent")
managers = allow("admin", "owner", "admin")
members = allow("read", "owner", "admin", "agent")
DB = Depends(db_session, scope="function")
CSRF = [Depends(csrf_protect)]


def row_out(row: listing.Row) -> InboxConversationOut:
    c = row.conversation
    return InboxConversationOut(
        id=c.id,
        status=c.status,
        channel_id=c.channel_id,
        contact=ContactRef(
            id=c.contact_id,
            name=row.contact.name if row.contact else None,
            phone=row.contact.phone if row.contact else None,
        ),
        assignee_user_id=c.assignee_user_id,
        team_id=c.team_id,
        assigned_at=c.assigned_at,
        snoozed_until=c.snoozed_until,
        labels=row.labels,
        unread=row.unread,
        opened_at=c.opened_at,
        last_message_at=c.last_message_at,
        last_inbound_at=c.last_inbound_at,
        window_open=row.window_open,
        window_expires_at=row.window_expires_at,
        resolved_at=c.resolved_at,
    )


# -- the list ---------------------------------------------------------------------------------
@router.get("/inbox/conversations", response_model=InboxPage, summary="The inbox's conversations")
async def inbox_conversations(
    view: str = Query("all", description="all, mine (assigned to me) or unassigned"),
    status: str | None = Query(None, description="open, pending or resolved; all when absent"),
    channel: int | None = Query(None, description="Only this number (channel id)."),
    team: int | None = Query(None, description="Only conversations of this team."),
    label: int | None = Query(None, description="Only conversations with this label id."),
    q: str | None = Query(None, description="The contact's name (words) or number (+971…)."),
    unread: bool = Query(False, description="Only conversations with unread customer messages."),
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
    limit: int = Query(50, description="1 to 200."),
    principal: Principal = Depends(readers),
    db: AsyncSession = DB,
) -> InboxPage:
    rows, next_cursor = await listing.page(
        db,
        principal,
        view=view,
        status=status,
        channel_id=channel,
        team_id=team,
        label_id=label,
        q=q,
        unread=unread,
        cursor=cursor,
        limit=limit,
    )
    return InboxPage(items=[row_out(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/inbox/conversations/{conversation_id}",
    response_model=InboxConversationOut,
    summary="One conversation as the inbox lists it",
)
async def inbox_conversation(
    conversation_id: int, principal: Principal = Depends(readers), db: AsyncSession = DB
) -> InboxConversationOut:
    return row_out(await listing.one(db, principal, conversation_id))


@router.get("/inbox/counts", response_model=UnreadCounts, summary="My unread counts")
async def unread_counts(
    principal: Principal = Depends(members), db: AsyncSession = DB
) -> UnreadCounts:
    counts = await reads.counts(db, principal)
    return UnreadCounts(**counts, notifications=await notifications.unread_count(db, principal))


# -- working a conversation -------------------------------------------------------------------
@router.put(
    "/conversations/{conversation_id}/assignment",
    response_model=InboxConversationOut,
    dependencies=CSRF,
    summary="Assign to a member and/or a team (or nobody)",
)
async def assign(
    conversation_id: int,
    body: AssignIn,
    principal: Principal = Depends(workers),
    db: AsyncSession = DB,
) -> InboxConversationOut:
    await assignment.assign(
        db, principal, conversation_id, user_id=body.user_id, team_id=body.team_id, to_me=body.me
    )
    return row_out(await listing.one(db, principal, conversation_id))


@router.post(
    "/conversations/{conversation_id}/snooze",
    response_model=InboxConversationOut,
    dependencies=CSRF,
    summary="Set aside (pending) until a time; it comes back as open",
)
async def snooze(
    conversation_id: int,
    body: SnoozeIn,
    principal: Principal = Depends(workers),
    db: AsyncSession = DB,
) -> InboxConversationOut:
    await assignment.snooze(db, principal, conversation_id, body.until)
    return row_out(await listing.one(db, principal, conversation_id))


@router.post(
    "/conversations/{conversation_id}/labels",
    response_model=ConversationLabelsOut,
    dependencies=CSRF,
    summary="Add a label",
)
async def add_label(
    conversation_id: int,
    body: LabelRefIn,
    principal: Principal = Depends(workers),
    db: AsyncSession = DB,
) -> ConversationLabelsOut:
    ids = await labels.attach(db, principal, conversation_id, body.label_id)
    return ConversationLabelsOut(conversation_id=conversation_id, labels=ids)


@router.delete(
    "/conversations/{conversation_id}/labels/{label_id}",
    response_model=ConversationLabelsOut,
    dependencies=CSRF,
    summary="Remove a label",
)
async def remove_label(
    conversation_id: int,
    label_id: int,
    principal: Principal = Depends(workers),
    db: AsyncSession = DB,
) -> ConversationLabelsOut:
    ids = await labels.detach(db, principal, conversation_id, label_id)
    return ConversationLabelsOut(conversation_id=conversation_id, labels=ids)


@router.get(
    "/conversations/{conversation_id}/notes",
    response_model=list[NoteOut],
    summary="Internal notes (members only; never sent to the customer)",
)
async def list_notes(
    conversation_id: int, principal: Principal = Depends(readers), db: AsyncSession = DB
) -> list[NoteOut]:
    views = await notes.list_for(db, principal, conversation_id)
    return [NoteOut.model_validate(v, from_attributes=True) for v in views]


@router.post(
    "/conversations/{conversation_id}/notes",
    response_model=NoteOut,
    status_code=201,
    dependencies=CSRF,
    summary="Write an internal note",
)
async def add_note(
    conversation_id: int,
    body: NoteIn,
    principal: Principal = Depends(workers),
    db: AsyncSession = DB,
) -> NoteOut:
    view = await notes.add(db, principal, conversation_id, body.body)
    return NoteOut.model_validate(view, from_attributes=True)


@router.post(
    "/conversations/{conversation_id}/read",
    status_code=204,
    dependencies=CSRF,
    summary="Mark read (for me)",
)
async def mark_read(
    conversation_id: int, principal: Principal = Depends(members), db: AsyncSession = DB
) -> Response:
    await reads.mark_read(db, principal, conversation_id)
    return Response(status_code=204)


# -- teams and routing ------------------------------------------------------------------------
@router.get("/teams", response_model=list[TeamOut], summary="Teams and their members")
async def list_teams(
    principal: Principal = Depends(readers), db: AsyncSession = DB
) -> list[TeamOut]:
    assert principal.workspace_id is not None
    found = await teams.list_with_members(db, principal.workspace_id)
    return [TeamOut(id=t.id, name=t.name, members=m) for t, m in found]


@router.post(
    "/teams", response_model=TeamOut, status_code=201, dependencies=CSRF, summary="Create a team"
)
async def create_team(
    body: TeamIn, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> TeamOut:
    team = await teams.create(db, principal, body.name)
    return TeamOut(id=team.id, name=team.name, members=[])


@router.patch("/teams/{team_id}", response_model=TeamOut, dependencies=CSRF, summary="Rename")
async def rename_team(
    team_id: int, body: TeamIn, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> TeamOut:
    assert principal.workspace_id is not None
    await teams.rename(db, principal, team_id, body.name)
    team, ids = await teams.get_with_members(db, principal.workspace_id, team_id)
    return TeamOut(id=team.id, name=team.name, members=ids)


@router.delete("/teams/{team_id}", status_code=204, dependencies=CSRF, summary="Delete a team")
async def delete_team(
    team_id: int, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> Response:
    await teams.delete(db, principal, team_id)
    return Response(status_code=204)


@router.put(
    "/teams/{team_id}/members/{user_id}",
    response_model=TeamOut,
    dependencies=CSRF,
    summary="Add a member to a team",
)
async def add_team_member(
    team_id: int, user_id: int, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> TeamOut:
    assert principal.workspace_id is not None
    await teams.add_member(db, principal, team_id, user_id)
    team, ids = await teams.get_with_members(db, principal.workspace_id, team_id)
    return TeamOut(id=team.id, name=team.name, members=ids)


@router.delete(
    "/teams/{team_id}/members/{user_id}",
    response_model=TeamOut,
    dependencies=CSRF,
    summary="Remove a member from a team",
)
async def remove_team_member(
    team_id: int, user_id: int, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> TeamOut:
    assert principal.workspace_id is not None
    await teams.remove_member(db, principal, team_id, user_id)
    team, ids = await teams.get_with_members(db, principal.workspace_id, team_id)
    return TeamOut(id=team.id, name=team.name, members=ids)


@router.get("/routing", response_model=list[RoutingOut], summary="Assignment rules per number")
async def list_routing(
    principal: Principal = Depends(readers), db: AsyncSession = DB
) -> list[RoutingOut]:
    assert principal.workspace_id is not None
    found = await assignment.routing_of(db, principal.workspace_id)
    return [RoutingOut.model_validate(r, from_attributes=True) for r in found]


@router.put(
    "/channels/{channel_id}/routing",
    response_model=RoutingOut,
    dependencies=CSRF,
    summary="Manual or round-robin assignment of a number's new conversations",
)
async def set_routing(
    channel_id: int,
    body: RoutingIn,
    principal: Principal = Depends(managers),
    db: AsyncSession = DB,
) -> RoutingOut:
    found = await assignment.set_routing(db, principal, channel_id, body.mode, body.team_id)
    return RoutingOut.model_validate(found, from_attributes=True)


# -- labels -----------------------------------------------------------------------------------
@router.get("/labels", response_model=list[LabelOut], summary="The workspace's labels")
async def list_labels(
    principal: Principal = Depends(readers), db: AsyncSession = DB
) -> list[LabelOut]:
    assert principal.workspace_id is not None
    return [
        LabelOut.model_validate(x, from_attributes=True)
        for x in await labels.list_all(db, principal.workspace_id)
    ]


@router.post(
    "/labels", response_model=LabelOut, status_code=201, dependencies=CSRF, summary="New label"
)
async def create_label(
    body: LabelIn, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> LabelOut:
    found = await labels.create(db, principal, body.name, body.color)
    return LabelOut.model_validate(found, from_attributes=True)


@router.patch("/labels/{label_id}", response_model=LabelOut, dependencies=CSRF, summary="Edit")
async def update_label(
    label_id: int, body: LabelPatch, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> LabelOut:
    found = await labels.update(db, principal, label_id, body.name, body.color)
    return LabelOut.model_validate(found, from_attributes=True)


@router.delete("/labels/{label_id}", status_code=204, dependencies=CSRF, summary="Delete")
async def delete_label(
    label_id: int, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> Response:
    await labels.delete(db, principal, label_id)
    return Response(status_code=204)


# -- canned responses -------------------------------------------------------------------------
@router.get(
    "/canned-responses",
    response_model=list[CannedOut],
    summary="Saved replies; ?prefix= for the composer's /shortcut",
)
async def list_canned(
    prefix: str | None = Query(None, max_length=33, description="What follows the '/' so far."),
    principal: Principal = Depends(readers),
    db: AsyncSession = DB,
) -> list[CannedOut]:
    assert principal.workspace_id is not None
    found = await canned.search(db, principal.workspace_id, prefix)
    return [CannedOut.model_validate(x, from_attributes=True) for x in found]


@router.get("/canned-responses/{canned_id}", response_model=CannedOut, summary="One reply")
async def get_canned(
    canned_id: int, principal: Principal = Depends(readers), db: AsyncSession = DB
) -> CannedOut:
    assert principal.workspace_id is not None
    found = await canned.get(db, principal.workspace_id, canned_id)
    return CannedOut.model_validate(found, from_attributes=True)


@router.post(
    "/canned-responses",
    response_model=CannedOut,
    status_code=201,
    dependencies=CSRF,
    summary="New saved reply",
)
async def create_canned(
    body: CannedIn, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> CannedOut:
    found = await canned.create(db, principal, body.shortcut, body.title, body.body)
    return CannedOut.model_validate(found, from_attributes=True)


@router.patch(
    "/canned-responses/{canned_id}", response_model=CannedOut, dependencies=CSRF, summary="Edit"
)
async def update_canned(
    canned_id: int,
    body: CannedPatch,
    principal: Principal = Depends(managers),
    db: AsyncSession = DB,
) -> CannedOut:
    found = await canned.update(
        db, principal, canned_id, shortcut=body.shortcut, title=body.title, body=body.body
    )
    return CannedOut.model_validate(found, from_attributes=True)


@router.delete(
    "/canned-responses/{canned_id}", status_code=204, dependencies=CSRF, summary="Delete"
)
async def delete_canned(
    canned_id: int, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> Response:
    await canned.delete(db, principal, canned_id)
    return Response(status_code=204)


# -- notifications and preferences ------------------------------------------------------------
@router.get("/notifications", response_model=NotificationPage, summary="My notifications")
async def list_notifications(
    unread: bool = Query(False, description="Only unread ones."),
    before: int | None = Query(None, description="Older than this notification id (paging)."),
    limit: int = Query(30, description="1 to 100."),
    principal: Principal = Depends(members),
    db: AsyncSession = DB,
) -> NotificationPage:
    items, count = await notifications.list_for(
        db, principal, unread=unread, before_id=before, limit=limit
    )
    return NotificationPage(
        items=[NotificationOut.model_validate(n, from_attributes=True) for n in items],
        unread=count,
    )


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationOut,
    dependencies=CSRF,
    summary="Mark one notification read",
)
async def read_notification(
    notification_id: int, principal: Principal = Depends(members), db: AsyncSession = DB
) -> NotificationOut:
    found = await notifications.mark_read(db, principal, notification_id)
    return NotificationOut.model_validate(found, from_attributes=True)


@router.post("/notifications/read-all", status_code=204, dependencies=CSRF, summary="Mark all read")
async def read_all_notifications(
    principal: Principal = Depends(members), db: AsyncSession = DB
) -> Response:
    await notifications.mark_all_read(db, principal)
    return Response(status_code=204)


@router.get("/inbox/preferences", response_model=PreferencesOut, summary="My inbox preferences")
async def get_preferences(
    principal: Principal = Depends(members), db: AsyncSession = DB
) -> PreferencesOut:
    found = await notifications.preferences(db, principal)
    return PreferencesOut(email_on_assignment=found.email_on_assignment)


@router.put(
    "/inbox/preferences",
    response_model=PreferencesOut,
    dependencies=CSRF,
    summary="E-mail me when a conversation is assigned to me (or not)",
)
async def set_preferences(
    body: PreferencesIn, principal: Principal = Depends(members), db: AsyncSession = DB
) -> PreferencesOut:
    found = await notifications.set_preferences(
        db, principal, email_on_assignment=body.email_on_assignment
    )
    return PreferencesOut(email_on_assignment=found.email_on_assignment)


# -- the contact side panel -------------------------------------------------------------------
def panel_out(p: contact_panel.Panel) -> ContactPanelOut:
    return ContactPanelOut(
        id=p.contact.id,
        name=p.contact.name,
        phone=p.contact.phone,
        username=p.contact.username,
        created_at=p.contact.created_at,
        last_inbound_at=p.contact.last_inbound_at,
        attributes=p.attributes,
        conversations=[
            ConversationBrief.model_validate(c, from_attributes=True) for c in p.conversations
        ],
        consent=[ConsentOut.model_validate(c, from_attributes=True) for c in p.consent],
        requests=p.requests,
    )


@router.get(
    "/contacts/{contact_id}/panel",
    response_model=ContactPanelOut,
    summary="The contact side panel: attributes, conversations, consent",
)
async def get_panel(
    contact_id: int, principal: Principal = Depends(readers), db: AsyncSession = DB
) -> ContactPanelOut:
    return panel_out(await contact_panel.panel(db, principal, contact_id))


@router.patch(
    "/contacts/{contact_id}/attributes",
    response_model=ContactPanelOut,
    dependencies=CSRF,
    summary="Set or remove the contact's attributes",
)
async def set_attributes(
    contact_id: int,
    body: ContactAttributesIn,
    principal: Principal = Depends(workers),
    db: AsyncSession = DB,
) -> ContactPanelOut:
    return panel_out(await contact_panel.update(db, principal, contact_id, body.attributes))
