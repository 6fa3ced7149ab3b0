"""``/workspace/channels``: the page where admins connect and disconnect WhatsApp numbers.

Thin: :mod:`connectx.channels.service` holds the logic. A form with a mistake is shown again with
the message and what was typed, except the token and secrets, which are never sent back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.channels import service
from connectx.channels.schemas import ChannelCreate
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.kit.errors import DomainError
from connectx.web.flash import set_flash
from connectx.web.navigation import redirect
from connectx.web.render import render
from connectx.workspaces import service as workspaces
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")
manager = allow("admin", *MANAGERS)

KEPT_FIELDS = ("name", "phone_number_id", "display_phone_number", "waba_id", "app_id")


async def _page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    status_code: int = 200,
    **ctx: Any,
) -> Response:
    assert principal.workspace_id is not None
    return render(
        request,
        "channels/channels.html",
        {
            "principal": principal,
            "workspace": await workspaces.current(db, principal),
            "channels": await service.list_channels(db, principal.workspace_id, True),
            "webhook_url": service.webhook_url(),
            "form": {},
            "error": None,
            **ctx,
        },
        status_code=status_code,
    )


@router.get("/workspace/channels")
async def channels_page(
    request: Request, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    return await _page(request, db, principal)


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "form"
    message = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{where.replace('_', ' ')}: {message}"


@router.post("/workspace/channels")
async def connect_channel(
    request: Request,
    name: str = Form(""),
    phone_number_id: str = Form(""),
    display_phone_number: str = Form(""),
    waba_id: str = Form(""),
    access_token: str = Form(""),
    app_id: str = Form(""),
    app_secret: str = Form(""),
    verify_token: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    typed = {
        "name": name,
        "phone_number_id": phone_number_id,
        "display_phone_number": display_phone_number,
        "waba_id": waba_id,
        "app_id": app_id,
    }
    try:
        body = ChannelCreate(
            name=name or None,
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            waba_id=waba_id,
            access_token=access_token,
            app_id=app_id,
            app_secret=app_secret,
            verify_token=verify_token or None,
        )
        channel = await service.connect(db, principal, service.NewChannel(**body.model_dump()))
    except ValidationError as exc:
        return await _page(request, db, principal, 422, error=_first_problem(exc), form=typed)
    except DomainError as exc:
        return await _page(request, db, principal, exc.status, error=exc.detail, form=typed)
    response = redirect("/workspace/channels")
    set_flash(response, f"Connected {channel.display_phone_number}. Set up the webhook below.")
    return response


@router.post("/workspace/channels/{channel_id}/disconnect")
async def disconnect_channel(
    channel_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    channel = await service.disconnect(db, principal, channel_id)
    response = redirect("/workspace/channels")
    set_flash(
        response,
        f"Disconnected {channel.display_phone_number}: its access token was destroyed. "
        "Its conversations stay.",
    )
    return response
