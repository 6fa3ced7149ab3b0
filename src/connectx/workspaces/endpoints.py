"""JSON API of workspaces, members, invitations and API keys (thin: services hold the logic).

Callers are a signed-in person (session cookie; state changes need the CSRF token) or an API key
(``Authorization: Bearer cx_…``). Everything acts on the caller's current workspace.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, require_principal, require_user
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.workspaces import api_keys, invitations
from connectx.workspaces import repository as repo
from connectx.workspaces import service as workspaces
from connectx.workspaces.access import MANAGERS, allow
from connectx.workspaces.schemas import (
    AcceptIn,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    InvitationForMeOut,
    InvitationIn,
    InvitationOut,
    MemberOut,
    MeOut,
    MyWorkspaceOut,
    RoleIn,
    WorkspaceIn,
    WorkspaceOut,
    WorkspacePatch,
)

router = APIRouter(prefix="/api/v1", tags=["workspaces"], dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")

reader = allow("read")
manager = allow("admin", *MANAGERS)


@router.get("/me", response_model=MeOut, summary="Who is calling")
async def me(principal: Principal = Depends(require_principal), db: AsyncSession = DB) -> dict:
    """The caller: user id and name (session) or key id and scopes (API key, any scope), with
    the current workspace and role."""
    return await workspaces.whoami(db, principal)


# -- workspaces -------------------------------------------------------------------------------


@router.get("/workspaces", response_model=list[MyWorkspaceOut], summary="My workspaces")
async def my_workspaces(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> list[MyWorkspaceOut]:
    assert principal.user_id is not None
    rows = await workspaces.workspaces_of(db, principal.user_id)
    return [
        MyWorkspaceOut(id=ws.id, name=ws.name, role=role, current=ws.id == principal.workspace_id)
        for ws, role in rows
    ]


@router.post(
    "/workspaces", response_model=WorkspaceOut, status_code=201, summary="Create a workspace"
)
async def create_workspace(
    body: WorkspaceIn, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> WorkspaceOut:
    """You become its owner, and your session switches to it."""
    assert principal.user_id is not None
    ws = await workspaces.create_workspace(
        db,
        principal,
        owner_user_id=principal.user_id,
        name=body.name,
        address=body.address,
        phone=body.phone,
    )
    return WorkspaceOut.model_validate(ws)


@router.post(
    "/workspaces/{workspace_id}/switch",
    response_model=WorkspaceOut,
    summary="Switch this session to another of my workspaces",
)
async def switch_workspace(
    workspace_id: int, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> WorkspaceOut:
    return WorkspaceOut.model_validate(await workspaces.switch(db, principal, workspace_id))


@router.get("/workspace", response_model=WorkspaceOut, summary="The current workspace")
async def get_workspace(
    principal: Principal = Depends(reader), db: AsyncSession = DB
) -> WorkspaceOut:
    return WorkspaceOut.model_validate(await workspaces.current(db, principal))


@router.patch("/workspace", response_model=WorkspaceOut, summary="Change the business profile")
async def update_workspace(
    body: WorkspacePatch, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> WorkspaceOut:
    changes = body.model_dump(exclude_unset=True)
    return WorkspaceOut.model_validate(await workspaces.update_profile(db, principal, changes))


# -- members ----------------------------------------------------------------------------------


@router.get("/workspace/members", response_model=list[MemberOut], summary="Members")
async def list_members(
    principal: Principal = Depends(reader), db: AsyncSession = DB
) -> list[MemberOut]:
    return [MemberOut.model_validate(m) for m in await workspaces.list_members(db, principal)]


@router.get("/workspace/members/{member_id}", response_model=MemberOut, summary="One member")
async def get_member(
    member_id: int, principal: Principal = Depends(reader), db: AsyncSession = DB
) -> MemberOut:
    return MemberOut.model_validate(await workspaces.get_member(db, principal, member_id))


@router.patch(
    "/workspace/members/{member_id}", response_model=MemberOut, summary="Change a member's role"
)
async def change_role(
    member_id: int, body: RoleIn, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> MemberOut:
    """Owners and admins; only owners grant or take the owner role; the last owner stays."""
    await workspaces.change_role(db, principal, member_id, body.role)
    return MemberOut.model_validate(await workspaces.get_member(db, principal, member_id))


@router.delete("/workspace/members/{member_id}", status_code=204, summary="Remove a member")
async def remove_member(
    member_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    """Their sessions in this workspace and the API keys they created here stop working."""
    await workspaces.remove_member(db, principal, member_id)
    return Response(status_code=204)


# -- invitations ------------------------------------------------------------------------------


@router.get(
    "/workspace/invitations", response_model=list[InvitationOut], summary="Pending invitations"
)
async def list_invitations(
    principal: Principal = Depends(manager), db: AsyncSession = DB
) -> list[InvitationOut]:
    rows = await invitations.list_invitations(db, principal)
    return [InvitationOut.model_validate(i) for i in rows]


@router.post(
    "/workspace/invitations",
    response_model=InvitationOut,
    status_code=201,
    summary="Invite someone by e-mail",
)
async def invite(
    body: InvitationIn, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> InvitationOut:
    """Mails a link valid for 7 days. Inviting the same address again replaces the earlier
    invitation."""
    inv = await invitations.invite(db, principal, email=body.email, role=body.role)
    return InvitationOut.model_validate(await invitations.view(db, inv))


@router.delete(
    "/workspace/invitations/{invitation_id}", status_code=204, summary="Revoke an invitation"
)
async def revoke_invitation(
    invitation_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    await invitations.revoke(db, principal, invitation_id)
    return Response(status_code=204)


@router.post("/invitations/accept", response_model=MyWorkspaceOut, summary="Accept an invitation")
async def accept_invitation(
    body: AcceptIn, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> MyWorkspaceOut:
    """For the signed-in person whose verified e-mail the invitation was sent to."""
    membership = await invitations.accept(db, principal, body.token)
    ws = await repo.workspace(db, membership.workspace_id)
    assert ws is not None
    return MyWorkspaceOut(id=ws.id, name=ws.name, role=membership.role, current=True)


@router.get(
    "/invitations",
    response_model=list[InvitationForMeOut],
    summary="Pending invitations to my e-mail address",
)
async def my_invitations(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> list[InvitationForMeOut]:
    """Invitations to the signed-in person's verified address, from any workspace."""
    return [InvitationForMeOut.model_validate(i) for i in await invitations.for_me(db, principal)]


@router.post(
    "/invitations/{invitation_id}/accept",
    response_model=MyWorkspaceOut,
    summary="Accept one of my invitations",
)
async def accept_my_invitation(
    invitation_id: int, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> MyWorkspaceOut:
    """Join through an invitation to my own verified address, without the mailed link."""
    membership = await invitations.accept_mine(db, principal, invitation_id)
    ws = await repo.workspace(db, membership.workspace_id)
    assert ws is not None
    return MyWorkspaceOut(id=ws.id, name=ws.name, role=membership.role, current=True)


# -- API keys ---------------------------------------------------------------------------------


@router.get("/workspace/api-keys", response_model=list[ApiKeyOut], summary="API keys")
async def list_api_keys(
    principal: Principal = Depends(manager), db: AsyncSession = DB
) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(k) for k in await api_keys.list_keys(db, principal)]


@router.get("/workspace/api-keys/{api_key_id}", response_model=ApiKeyOut, summary="One API key")
async def get_api_key(
    api_key_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await api_keys.get(db, principal, api_key_id))


@router.post(
    "/workspace/api-keys", response_model=ApiKeyCreated, status_code=201, summary="Create a key"
)
async def create_api_key(
    body: ApiKeyIn, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> ApiKeyCreated:
    """The response holds the key itself, this once; only its hash is kept."""
    new = await api_keys.create(db, principal, name=body.name, scopes=body.scopes)
    return ApiKeyCreated(**ApiKeyOut.model_validate(new.key).model_dump(), key=new.secret)


@router.delete("/workspace/api-keys/{api_key_id}", status_code=204, summary="Revoke a key")
async def revoke_api_key(
    api_key_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    await api_keys.revoke(db, principal, api_key_id)
    return Response(status_code=204)
