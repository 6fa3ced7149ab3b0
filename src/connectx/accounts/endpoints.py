"""The accounts JSON API: /api/v1/auth/* (anonymous) and /api/v1/account/* (signed in)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import schemas, service, sessions
from connectx.accounts.principal import Principal, require_user, truncated_ip
from connectx.accounts.throttle import is_remembered
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect, csrf_protect_entry
from connectx.kit.errors import DomainError, TooManyRequests
from connectx.kit.passwords import MAX_LENGTH, MIN_LENGTH
from connectx.kit.problems import problem_response

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in {
        401: "Not signed in, or wrong credentials",
        403: "CSRF token missing, or not allowed",
        409: "Conflict",
        410: "Link expired or already used",
        422: "Invalid input",
        429: "Too many attempts (see Retry-After)",
    }.items()
}

# The ways in act on nobody's session (anonymous CSRF rules); signing out acts on the session.
auth = APIRouter(
    prefix="/api/v1/auth",
    tags=["auth"],
    dependencies=[Depends(csrf_protect_entry)],
    responses=PROBLEMS,
)
session_auth = APIRouter(
    prefix="/api/v1/auth",
    tags=["auth"],
    dependencies=[Depends(csrf_protect)],
    responses=PROBLEMS,
)
account = APIRouter(
    prefix="/api/v1/account",
    tags=["account"],
    dependencies=[Depends(csrf_protect)],
    responses=PROBLEMS,
)
router = APIRouter()

DB = Depends(db_session, scope="function")
CHECK_MAIL = (
    "If an account uses that address, we have sent it a message with a link. "
    "Check your inbox (and spam folder)."
)


def answer(exc: DomainError) -> JSONResponse:
    """Answer a failure whose attempt record must be kept: returning (not raising) lets the
    request's unit of work commit it. Other failures propagate and roll back."""
    if not is_remembered(exc):
        raise exc
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyRequests) else None
    return problem_response(exc.status, exc.title, exc.detail, exc.code, headers, **exc.extra)


# -- /auth ------------------------------------------------------------------------------------


@auth.get("/signup-terms", response_model=schemas.SignupTerms)
async def signup_terms() -> schemas.SignupTerms:
    """The marketing wording and notice version a sign-up form must show."""
    return schemas.SignupTerms(
        marketing_wording=service.MARKETING_WORDING,
        notice_version=service.NOTICE_VERSION,
        password_min_length=MIN_LENGTH,
        password_max_length=MAX_LENGTH,
    )


@auth.post("/signup", status_code=status.HTTP_201_CREATED, response_model=schemas.SignupOut)
async def signup(
    body: schemas.SignupIn, request: Request, db: AsyncSession = DB
) -> schemas.SignupOut:
    """Create an account and e-mail a confirmation link (valid 24 hours)."""
    user = await service.sign_up(
        db,
        name=body.name,
        email=body.email,
        phone=body.phone,
        password=body.password,
        billing_address=body.billing_address,
        marketing_opt_in=body.marketing_opt_in,
        request=request,
    )
    return schemas.SignupOut(
        id=user.id,
        detail="Check your e-mail: open the link we sent to confirm your address, then sign in.",
    )


@auth.post("/verify", response_model=schemas.Accepted)
async def verify(body: schemas.TokenIn, request: Request, db: AsyncSession = DB) -> Any:
    """Confirm an e-mail address with the token from the mailed link."""
    await service.verify_email(db, body.token, request)
    return schemas.Accepted(detail="Your e-mail address is confirmed. You can sign in now.")


@auth.post("/verify/resend", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.Accepted)
async def resend_verification(
    body: schemas.EmailIn, request: Request, db: AsyncSession = DB
) -> Any:
    """Send the confirmation link again (the answer is the same whether or not the address has
    an account)."""
    try:
        await service.resend_verification(db, email=body.email, request=request)
    except DomainError as exc:
        return answer(exc)
    return schemas.Accepted(detail=CHECK_MAIL)


@auth.post("/signin", response_model=schemas.SigninOut)
async def signin(
    body: schemas.SigninIn, request: Request, response: Response, db: AsyncSession = DB
) -> Any:
    """Sign in with e-mail and password. Sets the ``cx_session`` cookie; with two-factor
    authentication on, the session needs ``POST /api/v1/auth/signin/2fa`` next."""
    try:
        result = await service.sign_in(
            db, email=body.email, password=body.password, request=request
        )
    except DomainError as exc:
        return answer(exc)
    sessions.set_session_cookie(response, result.raw_token, result.session)
    return schemas.SigninOut(
        status="second_factor_due" if result.second_factor_due else "signed_in",
        csrf_token=result.session.csrf_token,
        next=result.next_url,
    )


@auth.post("/signin/2fa", response_model=schemas.SigninOut)
async def signin_second_factor(
    body: schemas.CodeIn, request: Request, response: Response, db: AsyncSession = DB
) -> Any:
    """The authenticator code (or a recovery code) after the password; issues a new session."""
    try:
        result = await service.complete_second_factor(db, code=body.code, request=request)
    except DomainError as exc:
        return answer(exc)
    sessions.set_session_cookie(response, result.raw_token, result.session)
    return schemas.SigninOut(
        status="signed_in", csrf_token=result.session.csrf_token, next=result.next_url
    )


@session_auth.post("/signout", status_code=status.HTTP_204_NO_CONTENT)
async def signout(
    request: Request,
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    """End this session."""
    assert principal.session_id is not None
    await sessions.revoke(db, principal.session_id, actor=principal.actor, ip=principal.ip)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    sessions.clear_session_cookie(response)
    return response


@session_auth.post("/signout-everywhere", status_code=status.HTTP_204_NO_CONTENT)
async def signout_everywhere(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> Response:
    """End every session of this account, on every device, this one included."""
    assert principal.user_id is not None
    await sessions.revoke_all(
        db, principal.user_id, actor=principal.actor, ip=principal.ip, reason="sign out everywhere"
    )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    sessions.clear_session_cookie(response)
    return response


@auth.post("/forgot", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.Accepted)
async def forgot(body: schemas.EmailIn, request: Request, db: AsyncSession = DB) -> Any:
    """E-mail a one-time password-reset link (valid 1 hour). The answer is the same whether
    or not the address has an account."""
    try:
        await service.request_password_reset(db, email=body.email, request=request)
    except DomainError as exc:
        return answer(exc)
    return schemas.Accepted(detail=CHECK_MAIL)


@auth.post("/reset", response_model=schemas.Accepted)
async def reset(body: schemas.ResetIn, request: Request, db: AsyncSession = DB) -> Any:
    """Choose a new password with the token from the mailed link; signs out every session."""
    await service.reset_password(
        db, raw_token=body.token, new_password=body.password, request=request
    )
    response = JSONResponse(
        schemas.Accepted(
            detail="Your password is changed and every session was signed out. Sign in with "
            "the new password."
        ).model_dump()
    )
    sessions.clear_session_cookie(response)
    return response


# -- /account ---------------------------------------------------------------------------------


def _profile_out(p: service.Profile) -> schemas.ProfileOut:
    return schemas.ProfileOut(**p.__dict__)


@account.get("/profile", response_model=schemas.ProfileOut)
async def get_profile(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> schemas.ProfileOut:
    assert principal.user_id is not None
    user = await service.get_user(db, principal.user_id)
    return _profile_out(await service.profile(db, user))


@account.patch("/profile", response_model=schemas.ProfileOut)
async def update_profile(
    body: schemas.ProfileIn, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> schemas.ProfileOut:
    """Change name, phone or billing address (send only what changes)."""
    assert principal.user_id is not None
    address = body.billing_address
    updated = await service.update_profile(
        db,
        principal.user_id,
        name=body.name,
        phone=body.phone,
        billing_address=address if address and address.strip() else None,
        clear_billing_address=address is not None and not address.strip(),
        ip=principal.ip,
    )
    return _profile_out(updated)


@account.post("/password", response_model=schemas.PasswordChanged)
async def change_password(
    body: schemas.PasswordChangeIn,
    request: Request,
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Any:
    """Change the password (the current one is required); other sessions are signed out."""
    assert principal.user_id is not None
    try:
        count = await service.change_password(
            db,
            principal.user_id,
            current_password=body.current_password,
            new_password=body.new_password,
            current_session_id=principal.session_id,
            request=request,
        )
    except DomainError as exc:
        return answer(exc)
    return schemas.PasswordChanged(
        detail="Your password is changed. Your other sessions were signed out.",
        other_sessions_signed_out=count,
    )


@account.post("/2fa/enrol", response_model=schemas.EnrolmentOut)
async def enrol_two_factor(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> schemas.EnrolmentOut:
    """Start two-factor set-up: a new secret to scan or type. Confirm it with a code."""
    assert principal.user_id is not None
    enrolment = await service.start_two_factor(db, principal.user_id)
    return schemas.EnrolmentOut(**enrolment.__dict__)


@account.post("/2fa/confirm", response_model=schemas.RecoveryCodesOut)
async def confirm_two_factor(
    body: schemas.CodeIn,
    request: Request,
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Any:
    """Turn two-factor authentication on with a current code; returns 10 recovery codes."""
    assert principal.user_id is not None
    try:
        codes = await service.confirm_two_factor(
            db, principal.user_id, code=body.code, request=request
        )
    except DomainError as exc:
        return answer(exc)
    return schemas.RecoveryCodesOut(recovery_codes=codes, detail=RECOVERY_HINT)


RECOVERY_HINT = (
    "Keep these recovery codes somewhere safe: each signs you in once if you lose your "
    "phone. They are shown only now."
)


@account.post("/2fa/disable", status_code=status.HTTP_204_NO_CONTENT)
async def disable_two_factor(
    body: schemas.ProofIn,
    request: Request,
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    """Turn two-factor authentication off (needs a current code or the password)."""
    assert principal.user_id is not None
    try:
        await service.disable_two_factor(
            db, principal.user_id, code=body.code, password=body.password, request=request
        )
    except DomainError as exc:
        return answer(exc)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@account.post("/2fa/recovery-codes", response_model=schemas.RecoveryCodesOut)
async def regenerate_recovery_codes(
    body: schemas.ProofIn,
    request: Request,
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Any:
    """Replace the recovery codes (the old ones stop working); needs a code or the password."""
    assert principal.user_id is not None
    try:
        codes = await service.regenerate_recovery_codes(
            db, principal.user_id, code=body.code, password=body.password, request=request
        )
    except DomainError as exc:
        return answer(exc)
    return schemas.RecoveryCodesOut(recovery_codes=codes, detail=RECOVERY_HINT)


@account.get("/sessions", response_model=list[schemas.SessionOut])
async def list_sessions(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> list[schemas.SessionOut]:
    """Where this account is signed in."""
    assert principal.user_id is not None
    rows = await sessions.list_sessions(db, principal.user_id, principal.session_id)
    return [schemas.SessionOut(**row.__dict__) for row in rows]


@account.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(
    session_id: int,
    request: Request,
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    """Sign out one session (revoking the current one signs this client out)."""
    assert principal.user_id is not None
    await sessions.revoke_own(db, principal.user_id, session_id, ip=truncated_ip(request))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if session_id == principal.session_id:
        sessions.clear_session_cookie(response)
    return response


router.include_router(auth)
router.include_router(session_auth)
router.include_router(account)
