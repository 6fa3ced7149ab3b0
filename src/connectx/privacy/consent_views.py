"""Consent pages: the account holder's e-mail consents (a section of /account) and the
workspace's WhatsApp keywords (a section of /workspace/settings). Each section is also a page of
its own, so it works without JavaScript; with it, htmx loads the section into its host page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, require_user
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.kit.errors import DomainError, InvalidInput
from connectx.privacy import keywords, withdrawal
from connectx.web.flash import set_flash
from connectx.web.navigation import redirect
from connectx.web.render import render
from connectx.workspaces.access import MANAGERS, allow, is_manager

router = APIRouter(dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")
member = allow("read")
manager = allow("admin", *MANAGERS)


def _done(url: str, message: str) -> Response:
    response = redirect(url)
    set_flash(response, message)
    return response


def _fragment(request: Request) -> bool:
    return bool(request.headers.get("hx-request"))


# -- the account holder's e-mail consents -------------------------------------------------------


async def _email_page(
    request: Request, db: AsyncSession, person: Principal, status: int = 200, **ctx: Any
) -> Response:
    assert person.user_id is not None
    return render(
        request,
        "privacy/email_consent.html",
        {
            "principal": person,
            "states": await withdrawal.account_states(db, person.user_id),
            "wording": withdrawal.ACCOUNT_CHOICES,
            "fragment": _fragment(request),
            **ctx,
        },
        status_code=status,
    )


@router.get("/account/email-preferences")
async def email_preferences(
    request: Request, person: Principal = Depends(require_user), db: AsyncSession = DB
) -> Response:
    return await _email_page(request, db, person)


@router.post("/account/email-preferences")
async def save_email_preference(
    request: Request,
    purpose: str = Form(""),
    granted: str = Form(""),
    person: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    if granted not in ("yes", "no"):
        return await _email_page(request, db, person, 422, error="Choose subscribe or unsubscribe.")
    try:
        await withdrawal.decide_for_account(db, person, purpose, granted == "yes")
    except DomainError as exc:
        return await _email_page(request, db, person, exc.status, error=exc.detail)
    what = withdrawal.WHAT.get(purpose, purpose)
    message = (
        f"Subscribed to {what} e-mails."
        if granted == "yes"
        else f"Unsubscribed from {what} e-mails."
    )
    return _done("/account#email-preferences", message)


# -- the workspace's WhatsApp keywords ----------------------------------------------------------


def _split(raw: str) -> list[str]:
    return [w.strip() for w in raw.replace("\n", ",").split(",") if w.strip()]


async def _keywords_page(
    request: Request, db: AsyncSession, principal: Principal, status: int = 200, **ctx: Any
) -> Response:
    assert principal.workspace_id is not None
    return render(
        request,
        "privacy/keywords.html",
        {
            "principal": principal,
            "sets": await keywords.keyword_sets(db, principal.workspace_id),
            "manager": is_manager(principal),
            "fragment": _fragment(request),
            "form": ctx.pop("form", None),
            **ctx,
        },
        status_code=status,
    )


@router.get("/workspace/consent-keywords")
async def keywords_page(
    request: Request, principal: Principal = Depends(member), db: AsyncSession = DB
) -> Response:
    return await _keywords_page(request, db, principal)


@router.post("/workspace/consent-keywords")
async def save_keywords(
    request: Request,
    language: str = Form(""),
    stop: str = Form(""),
    start: str = Form(""),
    stop_reply: str = Form(""),
    start_reply: str = Form(""),
    remove: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    assert principal.workspace_id is not None
    form = {
        "language": language,
        "stop": stop,
        "start": start,
        "stop_reply": stop_reply,
        "start_reply": start_reply,
    }
    current = [k for k in await keywords.keyword_sets(db, principal.workspace_id) if k.custom]
    try:
        if remove:
            kept = [k for k in current if k.language != language.strip()]
            if len(kept) == len(current):
                raise InvalidInput(f"No keywords saved for {language!r}.", field="language")
            await keywords.save(db, principal, kept)
            return _done("/workspace/settings#keywords", f"Keywords for {language} removed.")
        new = keywords.check_set(language, _split(stop), _split(start), stop_reply, start_reply)
        merged = [k for k in current if k.language != new.language] + [new]
        await keywords.save(db, principal, merged)
    except DomainError as exc:
        return await _keywords_page(request, db, principal, exc.status, error=exc.detail, form=form)
    return _done("/workspace/settings#keywords", f"Keywords for {new.language} saved.")
