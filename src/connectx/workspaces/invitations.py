"""Invitations by e-mail: create, list, revoke, expire (7 days), accept.

The address is encrypted under the invitation's own subject ("invitation:<id>", platform scope,
the same key that encrypts the invitation mail), and matched through the e-mail blind index. The
link carries a random token of which only the hash is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import sessions
from connectx.accounts.caller import Principal
from connectx.accounts.service import normalise_email
from connectx.audit.service import record
from connectx.config import get_settings
from connectx.kit import clock
from connectx.kit.crypto import CryptoError, random_token, token_hash
from connectx.kit.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from connectx.mail import service as mail
from connectx.models.account import User
from connectx.models.workspace import Invitation, Membership
from connectx.privacy.vault import Vault
from connectx.workspaces import repository as repo
from connectx.workspaces import service as workspaces
from connectx.workspaces.access import ROLES, effective_role

VALID_FOR = timedelta(days=7)
COLUMN = "invitations.email"


@dataclass
class InvitationView:
    id: int
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    status: str  # pending | accepted | revoked | expired


@dataclass
class Preview:
    """What the accept page shows to whoever holds the link."""

    invitation_id: int
    workspace_id: int
    workspace_name: str
    role: str
    email: str
    expires_at: datetime


def status_of(inv: Invitation, now: datetime) -> str:
    if inv.accepted_at is not None:
        return "accepted"
    if inv.revoked_at is not None:
        return "revoked"
    if now >= inv.expires_at:
        return "expired"
    return "pending"


def accept_link(token: str) -> str:
    return f"{get_settings().effective_public_url}/invitations/accept?token={quote(token)}"


def _subject(inv: Invitation) -> str:
    return f"invitation:{inv.id}"


async def _email(db: AsyncSession, inv: Invitation) -> str:
    try:
        return await Vault(db).decrypt(None, _subject(inv), COLUMN, inv.email_enc)
    except CryptoError:
        return "(erased)"


async def invite(db: AsyncSession, by: Principal, *, email: str, role: str) -> Invitation:
    """Invite ``email`` to the caller's workspace with ``role``; mails the link. A pending
    invitation to the same address is replaced (so inviting again re-sends)."""
    ws = await workspaces.current(db, by)
    acting = effective_role(by)
    if acting not in ("owner", "admin"):
        raise Forbidden("Only a workspace owner or admin can invite people.")
    if role not in ROLES:
        raise InvalidInput(f"Role must be one of: {', '.join(ROLES)}.", field="role")
    if role == "owner" and acting != "owner":
        raise Forbidden("Only an owner can invite another owner.")
    address = normalise_email(email)
    vault = Vault(db)
    index = await vault.blind_index("email", address)
    existing = await repo.user_by_email_index(db, index)
    if existing is not None and await repo.membership_of_user(db, ws.id, existing.id):
        raise Conflict("This person is already a member of the workspace.", field="email")
    now = clock.now()
    for old in await repo.pending_invitations(db, ws.id, now, index):
        await repo.mark_invitation(db, ws.id, old.id, revoked_at=now)
        await record(
            db,
            action="invitation.revoked",
            subject=_subject(old),
            data={"replaced": True},
            actor=by.actor,
            ip=by.ip,
            workspace_id=ws.id,
        )
    token = random_token()
    inv = Invitation(
        workspace_id=ws.id,
        email_index=index,
        email_enc=b"",
        role=role,
        token_hash=token_hash(token),
        invited_by=by.user_id,
        created_at=now,
        expires_at=now + VALID_FOR,
    )
    await repo.add(db, inv)  # the id names the encryption subject
    inv.email_enc = await vault.encrypt(None, _subject(inv), COLUMN, address)
    await db.flush()
    await record(
        db,
        action="invitation.created",
        subject=_subject(inv),
        data={"role": role},
        actor=by.actor,
        ip=by.ip,
        workspace_id=ws.id,
    )
    await mail.send(
        db,
        to=address,
        subject=f"You are invited to {ws.name} on ConnectX",
        body=(
            f"You have been invited to join {ws.name} on ConnectX as {role}.\n\n"
            f"Accept the invitation here:\n{accept_link(token)}\n\n"
            f"The link works until {inv.expires_at:%Y-%m-%d %H:%M} UTC. If you do not have a "
            "ConnectX account yet, the page lets you create one with this address.\n"
            "If you did not expect this, ignore this message.\n"
        ),
        kind="invitation",
        subject_ref=_subject(inv),
    )
    return inv


async def view(db: AsyncSession, inv: Invitation) -> InvitationView:
    return InvitationView(
        inv.id,
        await _email(db, inv),
        inv.role,
        inv.created_at,
        inv.expires_at,
        status_of(inv, clock.now()),
    )


async def list_invitations(db: AsyncSession, by: Principal) -> list[InvitationView]:
    """Pending invitations of the caller's workspace (accepted, revoked, expired ones drop off)."""
    ws = await workspaces.current(db, by)
    now = clock.now()
    rows = await repo.pending_invitations(db, ws.id, now)
    out = [await view(db, inv) for inv in rows]
    await record(
        db,
        action="invitations.viewed",
        subject=f"workspace:{ws.id}",
        data={"count": len(out)},
        actor=by.actor,
        ip=by.ip,
        workspace_id=ws.id,
    )
    return out


async def revoke(db: AsyncSession, by: Principal, invitation_id: int) -> None:
    ws = await workspaces.current(db, by)
    inv = await repo.invitation(db, ws.id, invitation_id)
    acting = effective_role(by)
    if acting not in ("owner", "admin"):
        raise Forbidden("Only a workspace owner or admin can revoke invitations.")
    if inv.role == "owner" and acting != "owner":
        raise Forbidden("Only an owner can revoke an invitation to become owner.")
    state = status_of(inv, clock.now())
    if state != "pending":
        raise Conflict(f"This invitation is already {state}.")
    if not await repo.mark_invitation(db, ws.id, inv.id, revoked_at=clock.now()):
        raise Conflict("This invitation was used or withdrawn meanwhile.")
    await record(
        db,
        action="invitation.revoked",
        subject=_subject(inv),
        actor=by.actor,
        ip=by.ip,
        workspace_id=ws.id,
    )


async def _by_token(db: AsyncSession, token: str) -> Invitation:
    inv = await repo.invitation_by_token_hash(db, token_hash(token or ""))
    if inv is None:
        raise NotFound(
            "This invitation link is not valid. Check that you copied the whole link, or ask "
            "for a new invitation."
        )
    state = status_of(inv, clock.now())
    if state == "expired":
        raise Gone("This invitation has expired (they last 7 days). Ask for a new one.")
    if state == "revoked":
        raise Gone("This invitation was withdrawn. Ask the workspace for a new one.")
    if state == "accepted":
        raise Gone("This invitation was already used. Sign in to reach the workspace.")
    return inv


async def preview(db: AsyncSession, token: str) -> Preview:
    inv = await _by_token(db, token)
    ws = await repo.workspace(db, inv.workspace_id)
    if ws is None:
        raise Gone("The workspace of this invitation no longer exists.")
    return Preview(inv.id, ws.id, ws.name, inv.role, await _email(db, inv), inv.expires_at)


async def _account(db: AsyncSession, by: Principal) -> User:
    if by.user_id is None:
        raise Forbidden("Sign in as the invited person to accept an invitation.")
    account = await repo.user(db, by.user_id)
    if account is None:
        raise NotFound("This account no longer exists.")
    return account


async def _join(db: AsyncSession, by: Principal, account: User, inv: Invitation) -> Membership:
    if account.email_verified_at is None:
        raise Forbidden(
            "Verify your e-mail address first (use the link we mailed you), then accept again."
        )
    if await repo.membership_of_user(db, inv.workspace_id, account.id) is not None:
        raise Conflict("You are already a member of this workspace.")
    now = clock.now()
    if not await repo.mark_invitation(db, inv.workspace_id, inv.id, accepted_at=now):
        raise Gone("This invitation was used or withdrawn meanwhile.")
    await record(
        db,
        action="invitation.accepted",
        subject=_subject(inv),
        actor=by.actor,
        ip=by.ip,
        workspace_id=inv.workspace_id,
    )
    membership = await workspaces.add_member(db, by, inv.workspace_id, account.id, inv.role)
    if by.session_id is not None:
        await sessions.switch_workspace(db, by.session_id, inv.workspace_id)
        by.workspace_id, by.role = inv.workspace_id, inv.role
    return membership


async def accept(db: AsyncSession, by: Principal, token: str) -> Membership:
    """The signed-in caller joins with the invited role, if their verified e-mail matches."""
    account = await _account(db, by)
    inv = await _by_token(db, token)
    if account.email_index != inv.email_index:
        raise Forbidden(
            "This invitation was sent to another e-mail address. Sign in with that address, "
            "or ask for an invitation to yours."
        )
    return await _join(db, by, account, inv)


@dataclass
class ForMe:
    """A pending invitation to the caller's own (verified) address."""

    id: int
    workspace_id: int
    workspace_name: str
    role: str
    expires_at: datetime


async def for_me(db: AsyncSession, by: Principal) -> list[ForMe]:
    """Pending invitations to the signed-in person's verified address, so someone who signed
    up after being invited can join without the link."""
    account = await _account(db, by)
    if account.email_verified_at is None:
        return []
    rows = await repo.pending_invitations_to(db, account.email_index, clock.now())
    return [ForMe(inv.id, ws.id, ws.name, inv.role, inv.expires_at) for inv, ws in rows]


async def accept_mine(db: AsyncSession, by: Principal, invitation_id: int) -> Membership:
    """Join through a pending invitation to the caller's own verified address (by id). Any
    other invitation, of any workspace, is answered as not found."""
    account = await _account(db, by)
    for inv, _ws in await repo.pending_invitations_to(db, account.email_index, clock.now()):
        if inv.id == invitation_id:
            return await _join(db, by, account, inv)
    raise NotFound(f"No pending invitation {invitation_id} for your e-mail address.")
