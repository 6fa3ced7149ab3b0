"""The demo seed: a workspace "Demo Trading LLC" with a verified owner and an agent.

Idempotent: running it again finds what exists and creates only what is missing. The password is
generated once and kept in ``<data dir>/demo-password.txt`` (mode 0600) so every run prints the
same one; if the stored password no longer signs in (changed in the UI, file lost), a new one is
set and printed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import email_validator
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import service as accounts
from connectx.accounts.caller import Principal
from connectx.channels import repository as channels_repo
from connectx.channels import service as channels
from connectx.config import get_settings
from connectx.kit import passwords
from connectx.models.account import User
from connectx.simulator import settings as sim
from connectx.workspaces import repository as repo
from connectx.workspaces import service as workspaces

WORKSPACE_NAME = "Demo Trading LLC"
WORKSPACE_ADDRESS = "Office 12, Example Business Centre, Dubai, United Arab Emirates"
WORKSPACE_PHONE = "+971501234567"
OWNER_EMAIL = "demo@connectx.local"
OWNER_NAME = "Dana Demo"
OWNER_PHONE = "+971501234568"
AGENT_EMAIL = "agent@connectx.local"
AGENT_NAME = "Alex Agent"
AGENT_PHONE = "+971501234569"

SYSTEM = Principal(actor="system")


@dataclass
class DemoSeed:
    workspace_id: int
    owner_email: str
    agent_email: str
    password: str
    created: bool  # False when everything already existed
    signin_url: str
    channel_id: int | None  # the simulator's demo number, when connected here


def password_file() -> Path:
    return get_settings().data_dir / "demo-password.txt"


def _stored_password() -> str | None:
    path = password_file()
    if not path.exists():
        return None
    text = path.read_text().strip()
    return text or None


def _store_password(password: str) -> None:
    path = password_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")


def _new_password() -> str:
    return "demo-" + secrets.token_urlsafe(12)


async def _account(
    db: AsyncSession, email: str, name: str, phone: str, password: str
) -> tuple[User, bool]:
    """The demo account (created verified when missing), with ``password`` guaranteed to work."""
    user = await accounts.find_user_by_email(db, email)
    if user is None:
        user = await accounts.create_user(
            db,
            name=name,
            email=email,
            phone=phone,
            password=password,
            verified=True,
            consent_source="import",
            actor="system",
        )
        return user, True
    if not await passwords.verify_password(user.password_hash, password):
        await accounts.set_password(db, user.id, password, actor="system", reason="demo seed")
    return user, False


@contextmanager
def _local_addresses() -> Iterator[None]:
    """Accept the demo's ``*.local`` addresses while seeding. ``email-validator`` refuses the
    special-use ``local`` domain (RFC 6762) as not globally deliverable, which is right for
    sign-up, and exactly why the demo uses it: nothing can be mailed there by mistake."""
    names = email_validator.SPECIAL_USE_DOMAIN_NAMES
    removed = "local" in names
    if removed:
        names.remove("local")
    try:
        yield
    finally:
        if removed and "local" not in names:
            names.append("local")


async def seed(db: AsyncSession) -> DemoSeed:
    password = _stored_password() or _new_password()
    with _local_addresses():
        owner, created_owner = await _account(db, OWNER_EMAIL, OWNER_NAME, OWNER_PHONE, password)
        agent, created_agent = await _account(db, AGENT_EMAIL, AGENT_NAME, AGENT_PHONE, password)
    mine = [
        ws for ws, _ in await repo.workspaces_of_user(db, owner.id) if ws.name == WORKSPACE_NAME
    ]
    created_ws = not mine
    if mine:
        ws = mine[0]
    else:
        ws = await workspaces.create_workspace(
            db,
            SYSTEM,
            owner_user_id=owner.id,
            name=WORKSPACE_NAME,
            address=WORKSPACE_ADDRESS,
            phone=WORKSPACE_PHONE,
        )
    if await repo.membership_of_user(db, ws.id, agent.id) is None:
        await workspaces.add_member(db, SYSTEM, ws.id, agent.id, "agent")
    channel_id = await _demo_number(db, ws.id)
    _store_password(password)
    return DemoSeed(
        workspace_id=ws.id,
        owner_email=OWNER_EMAIL,
        agent_email=AGENT_EMAIL,
        password=password,
        created=created_owner or created_agent or created_ws,
        signin_url=f"{get_settings().effective_public_url}/signin",
        channel_id=channel_id,
    )


async def _demo_number(db: AsyncSession, workspace_id: int) -> int | None:
    """Connect the simulator's demo number (``connectx simulator`` defaults) so a newcomer can
    chat end to end without a Meta account. Left alone when that number is connected elsewhere."""
    existing = await channels_repo.live_channel_for_number(db, sim.DEMO_PHONE_NUMBER_ID)
    if existing is not None:
        return existing.id if existing.workspace_id == workspace_id else None
    owner = Principal(actor="system", workspace_id=workspace_id, role="owner")
    channel = await channels.connect(
        db,
        owner,
        channels.NewChannel(
            phone_number_id=sim.DEMO_PHONE_NUMBER_ID,
            display_phone_number=sim.DEMO_DISPLAY_NUMBER,
            waba_id=sim.DEMO_WABA_ID,
            access_token=sim.DEMO_ACCESS_TOKEN,
            app_id=sim.DEMO_APP_ID,
            app_secret=sim.DEMO_APP_SECRET,
            verify_token=sim.DEMO_VERIFY_TOKEN,
            name="Demo number (simulator)",
        ),
    )
    return channel.id
