"""The accounts HTML pages: sign up, verify, sign in (with 2FA), forgot/reset, account settings.

Plain forms that work without JavaScript; every POST carries a CSRF token (the session's, or the
anonymous double-submit value). A failed form is shown again with the message and the fields the
person typed (never the password).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import service, sessions
from connectx.accounts.principal import Principal, optional_principal
from connectx.accounts.throttle import is_remembered
from connectx.db.session import db_session
from connectx.kit import csrf
from connectx.kit.errors import DomainError, TooManyRequests, Unauthenticated
from connectx.kit.passwords import MAX_LENGTH, MIN_LENGTH
from connectx.web.flash import set_flash
from connectx.web.navigation import safe_next

# The ways in (anonymous CSRF rules) and the signed-in pages (the session's token).
entry = APIRouter(dependencies=[Depends(csrf.csrf_protect_entry)])
signed = APIRouter(dependencies=[Depends(csrf.csrf_protect)])
router = APIRouter()

DB = Depends(db_session, scope="function")
WHO = Depends(optional_principal)


def _person(principal: Principal | None) -> Principal | None:
    return principal if principal is not None and principal.user_id is not None else None


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _failed(db: AsyncSession, exc: DomainError) -> None:
    """Keep what a remembered failure recorded (a failed attempt); drop anything else."""
    if not is_remembered(exc):
        await db.rollback()


def _page(
    request: Request,
    template: str,
    principal: Principal | None = None,
    *,
    error: DomainError | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    response = csrf.page(
        request,
        f"accounts/{template}",
        principal,
        status_code=error.status if error is not None else status_code,
        error=error.detail if error is not None else None,
        error_field=error.extra.get("field") if error is not None else None,
        error_reason=error.extra.get("reason") if error is not None else None,
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        **context,
    )
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


# -- sign up and verification -----------------------------------------------------------------


@entry.get("/signup", response_class=HTMLResponse)
async def signup_form(request: Request, principal: Principal | None = WHO) -> Response:
    if _person(principal):
        return _redirect("/workspace")
    return _page(request, "signup.html", form={}, wording=service.MARKETING_WORDING)


@entry.post("/signup", response_class=HTMLResponse)
async def signup(
    request: Request,
    name: str = Form(""),
    email: str = Form(""),
    phone: str = Form(""),
    password: str = Form(""),
    billing_address: str = Form(""),
    marketing_opt_in: str | None = Form(None),
    db: AsyncSession = DB,
) -> Response:
    form = {
        "name": name,
        "email": email,
        "phone": phone,
        "billing_address": billing_address,
        "marketing_opt_in": bool(marketing_opt_in),
    }
    try:
        await service.sign_up(
            db,
            name=name,
            email=email,
            phone=phone,
            password=password,
            billing_address=billing_address or None,
            marketing_opt_in=bool(marketing_opt_in),
            request=request,
        )
    except DomainError as exc:
        await _failed(db, exc)
        return _page(
            request, "signup.html", error=exc, form=form, wording=service.MARKETING_WORDING
        )
    return _page(request, "check_email.html", status_code=201, purpose="signup")


def _no_referrer(response: Response) -> Response:
    """Pages opened from a link with a token: never send that URL on as a Referer."""
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@entry.get("/verify", response_class=HTMLResponse)
async def verify(request: Request, token: str = "", db: AsyncSession = DB) -> Response:
    try:
        await service.verify_email(db, token, request)
    except DomainError as exc:
        await _failed(db, exc)
        return _no_referrer(_page(request, "verify.html", error=exc))
    response = _redirect("/signin")
    set_flash(response, "Your e-mail address is confirmed. Sign in to continue.")
    return _no_referrer(response)


@entry.post("/verify/resend", response_class=HTMLResponse)
async def resend_verification(
    request: Request, email: str = Form(""), db: AsyncSession = DB
) -> Response:
    try:
        await service.resend_verification(db, email=email, request=request)
    except DomainError as exc:
        await _failed(db, exc)
        return _page(request, "verify.html", error=exc, email=email)
    return _page(request, "check_email.html", purpose="verify")


# -- sign in ----------------------------------------------------------------------------------


@entry.get("/signin", response_class=HTMLResponse)
async def signin_form(
    request: Request, next: str = "", principal: Principal | None = WHO
) -> Response:
    if _person(principal):
        return _redirect(safe_next(next))
    return _page(request, "signin.html", email="", next=safe_next(next, default=""))


@entry.post("/signin", response_class=HTMLResponse)
async def signin(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
    db: AsyncSession = DB,
) -> Response:
    try:
        result = await service.sign_in(db, email=email, password=password, request=request)
    except DomainError as exc:
        await _failed(db, exc)
        return _page(
            request, "signin.html", error=exc, email=email, next=safe_next(next, default="")
        )
    target = safe_next(next)
    if result.second_factor_due:
        wanted = safe_next(next, default="")
        target = "/signin/2fa" + (f"?{urlencode({'next': wanted})}" if wanted else "")
    response = _redirect(target)
    sessions.set_session_cookie(response, result.raw_token, result.session)
    return response


@entry.get("/signin/2fa", response_class=HTMLResponse)
async def second_factor_form(request: Request, next: str = "", db: AsyncSession = DB) -> Response:
    pending = await sessions.session_from_cookie(db, request)
    if pending is None or not pending.mfa_pending:
        response = _redirect("/signin")
        set_flash(response, "Your sign-in expired. Enter your e-mail address and password again.")
        return response
    return _page(request, "second_factor.html", next=safe_next(next, default=""))


@entry.post("/signin/2fa", response_class=HTMLResponse)
async def second_factor(
    request: Request, code: str = Form(""), next: str = Form(""), db: AsyncSession = DB
) -> Response:
    try:
        result = await service.complete_second_factor(db, code=code, request=request)
    except DomainError as exc:
        await _failed(db, exc)
        return _page(request, "second_factor.html", error=exc, next=safe_next(next, default=""))
    response = _redirect(safe_next(next))
    sessions.set_session_cookie(response, result.raw_token, result.session)
    return response


@signed.get("/signout", response_class=HTMLResponse)
async def signout_page(request: Request, principal: Principal | None = WHO) -> Response:
    if not _person(principal):
        return _redirect("/signin")
    return _page(request, "signout.html", principal)


@router.post("/signout", response_class=HTMLResponse)
async def signout(
    request: Request, principal: Principal | None = WHO, db: AsyncSession = DB
) -> Response:
    """Sign out. Without a live session there is nothing to protect or end: straight to the
    sign-in page (an expired session's form still works)."""
    person = _person(principal)
    if person is not None and person.session_id is not None:
        await csrf.csrf_protect(request, person)
        await sessions.revoke(db, person.session_id, actor=person.actor, ip=person.ip)
    response = _redirect("/signin")
    sessions.clear_session_cookie(response)
    set_flash(response, "You are signed out.")
    return response


# -- forgotten password -----------------------------------------------------------------------


@entry.get("/forgot", response_class=HTMLResponse)
async def forgot_form(request: Request) -> Response:
    return _page(request, "forgot.html", email="")


@entry.post("/forgot", response_class=HTMLResponse)
async def forgot(request: Request, email: str = Form(""), db: AsyncSession = DB) -> Response:
    try:
        await service.request_password_reset(db, email=email, request=request)
    except DomainError as exc:
        await _failed(db, exc)
        return _page(request, "forgot.html", error=exc, email=email)
    return _page(request, "check_email.html", purpose="reset")


@entry.get("/reset", response_class=HTMLResponse)
async def reset_form(request: Request, token: str = "", db: AsyncSession = DB) -> Response:
    try:
        await service.check_reset_token(db, token)
    except DomainError as exc:
        return _no_referrer(_page(request, "reset.html", error=exc, token="", usable=False))
    return _no_referrer(_page(request, "reset.html", token=token, usable=True))


@entry.post("/reset", response_class=HTMLResponse)
async def reset(
    request: Request, token: str = Form(""), password: str = Form(""), db: AsyncSession = DB
) -> Response:
    try:
        await service.reset_password(db, raw_token=token, new_password=password, request=request)
    except DomainError as exc:
        await _failed(db, exc)
        usable = exc.extra.get("field") == "password"
        return _page(request, "reset.html", error=exc, token=token if usable else "", usable=usable)
    response = _redirect("/signin")
    sessions.clear_session_cookie(response)
    set_flash(response, "Your password is changed and every session was signed out. Sign in.")
    return response


# -- account settings -------------------------------------------------------------------------


async def _account_page(
    request: Request,
    db: AsyncSession,
    person: Principal,
    *,
    error: DomainError | None = None,
    section: str | None = None,
    **context: Any,
) -> HTMLResponse:
    assert person.user_id is not None
    user = await service.get_user(db, person.user_id)
    profile = await service.profile(db, user)
    from connectx.accounts import twofactor

    return _page(
        request,
        "account.html",
        person,
        error=error,
        section=section,
        profile=profile,
        sessions=await sessions.list_sessions(db, person.user_id, person.session_id),
        recovery_left=(
            await twofactor.remaining_recovery_codes(db, user) if profile.two_factor_enabled else 0
        ),
        **context,
    )


async def _account_holder(principal: Principal | None = WHO) -> Principal:
    """The signed-in person (cookie session). Browsers without one are sent to sign in."""
    person = _person(principal)
    if person is None or not person.via_cookie:
        raise Unauthenticated("Sign in to manage your account.")
    return person


HOLDER = Depends(_account_holder)


@signed.get("/account", response_class=HTMLResponse)
async def account_page(
    request: Request, person: Principal = HOLDER, db: AsyncSession = DB
) -> Response:
    return await _account_page(request, db, person)


def _done(message: str, anchor: str = "") -> RedirectResponse:
    response = _redirect(f"/account{anchor}")
    set_flash(response, message)
    return response


@signed.post("/account/profile", response_class=HTMLResponse)
async def account_profile(
    request: Request,
    name: str = Form(""),
    phone: str = Form(""),
    billing_address: str = Form(""),
    person: Principal = HOLDER,
    db: AsyncSession = DB,
) -> Response:
    assert person.user_id is not None
    try:
        await service.update_profile(
            db,
            person.user_id,
            name=name,
            phone=phone,
            billing_address=billing_address if billing_address.strip() else None,
            clear_billing_address=not billing_address.strip(),
            ip=person.ip,
        )
    except DomainError as exc:
        await _failed(db, exc)
        return await _account_page(request, db, person, error=exc, section="profile")
    return _done("Your profile is saved.", "#profile")


@signed.post("/account/password", response_class=HTMLResponse)
async def account_password(
    request: Request,
    current_password: str = Form(""),
    new_password: str = Form(""),
    person: Principal = HOLDER,
    db: AsyncSession = DB,
) -> Response:
    assert person.user_id is not None
    try:
        await service.change_password(
            db,
            person.user_id,
            current_password=current_password,
            new_password=new_password,
            current_session_id=person.session_id,
            request=request,
        )
    except DomainError as exc:
        await _failed(db, exc)
        return await _account_page(request, db, person, error=exc, section="password")
    return _done("Your password is changed. Your other sessions were signed out.", "#password")


@signed.post("/account/2fa/enrol", response_class=HTMLResponse)
async def account_2fa_enrol(
    request: Request, person: Principal = HOLDER, db: AsyncSession = DB
) -> Response:
    assert person.user_id is not None
    try:
        enrolment = await service.start_two_factor(db, person.user_id)
    except DomainError as exc:
        await _failed(db, exc)
        return await _account_page(request, db, person, error=exc, section="two-factor")
    return _page(
        request,
        "enrol.html",
        person,
        secret=enrolment.secret,
        otpauth_uri=enrolment.otpauth_uri,
        qr_data_uri="data:image/svg+xml;base64,"
        + base64.b64encode(enrolment.qr_svg.encode()).decode(),
    )


@signed.post("/account/2fa/confirm", response_class=HTMLResponse)
async def account_2fa_confirm(
    request: Request,
    code: str = Form(""),
    person: Principal = HOLDER,
    db: AsyncSession = DB,
) -> Response:
    assert person.user_id is not None
    try:
        codes = await service.confirm_two_factor(db, person.user_id, code=code, request=request)
    except DomainError as exc:
        await _failed(db, exc)
        user = await service.get_user(db, person.user_id)
        from connectx.accounts import twofactor

        secret = await twofactor.secret_of(db, user)
        if secret is None or user.totp_enabled_at is not None:
            return await _account_page(request, db, person, error=exc, section="two-factor")
        email = await service.email_of(db, user)
        uri = twofactor.pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="ConnectX")
        return _page(
            request,
            "enrol.html",
            person,
            error=exc,
            secret=secret,
            otpauth_uri=uri,
            qr_data_uri="data:image/svg+xml;base64,"
            + base64.b64encode(twofactor.qr_svg(uri).encode()).decode(),
        )
    return _page(request, "recovery_codes.html", person, codes=codes, enabled_now=True)


@signed.post("/account/2fa/disable", response_class=HTMLResponse)
async def account_2fa_disable(
    request: Request,
    code: str = Form(""),
    password: str = Form(""),
    person: Principal = HOLDER,
    db: AsyncSession = DB,
) -> Response:
    assert person.user_id is not None
    try:
        await service.disable_two_factor(
            db, person.user_id, code=code or None, password=password or None, request=request
        )
    except DomainError as exc:
        await _failed(db, exc)
        return await _account_page(request, db, person, error=exc, section="two-factor")
    return _done("Two-factor authentication is off.", "#two-factor")


@signed.post("/account/2fa/recovery-codes", response_class=HTMLResponse)
async def account_recovery_codes(
    request: Request,
    code: str = Form(""),
    password: str = Form(""),
    person: Principal = HOLDER,
    db: AsyncSession = DB,
) -> Response:
    assert person.user_id is not None
    try:
        codes = await service.regenerate_recovery_codes(
            db, person.user_id, code=code or None, password=password or None, request=request
        )
    except DomainError as exc:
        await _failed(db, exc)
        return await _account_page(request, db, person, error=exc, section="two-factor")
    return _page(request, "recovery_codes.html", person, codes=codes, enabled_now=False)


@signed.post("/account/sessions/{session_id}/revoke", response_class=HTMLResponse)
async def account_revoke_session(
    request: Request,
    session_id: int,
    person: Principal = HOLDER,
    db: AsyncSession = DB,
) -> Response:
    assert person.user_id is not None
    try:
        await sessions.revoke_own(db, person.user_id, session_id, ip=person.ip)
    except DomainError as exc:
        await _failed(db, exc)
        return await _account_page(request, db, person, error=exc, section="sessions")
    if session_id == person.session_id:
        response = _redirect("/signin")
        sessions.clear_session_cookie(response)
        set_flash(response, "You are signed out.")
        return response
    return _done("That session is signed out.", "#sessions")


@signed.post("/account/signout-everywhere", response_class=HTMLResponse)
async def account_signout_everywhere(
    request: Request, person: Principal = HOLDER, db: AsyncSession = DB
) -> Response:
    assert person.user_id is not None
    await sessions.revoke_all(
        db, person.user_id, actor=person.actor, ip=person.ip, reason="sign out everywhere"
    )
    response = _redirect("/signin")
    sessions.clear_session_cookie(response)
    set_flash(response, "You are signed out on every device.")
    return response


router.include_router(entry)
router.include_router(signed)
