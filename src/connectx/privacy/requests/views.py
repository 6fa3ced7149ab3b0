"""Pages of data-subject requests: the public privacy center (file, verify, the DPO form), the
account holder's own requests, a workspace's Requests tab, and the operator's (DPO's) view."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, optional_principal, require_user
from connectx.db.session import db_session
from connectx.kit import clock, csrf
from connectx.kit.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    TooManyRequests,
)
from connectx.kit.numbers import is_digits
from connectx.models.data_request import DataRequest
from connectx.privacy import consent
from connectx.privacy.requests import intake, service, settings, verification
from connectx.privacy.requests import repository as repo
from connectx.web.flash import set_flash
from connectx.web.navigation import redirect
from connectx.web.render import render
from connectx.workspaces.access import MANAGERS, allow

entry = APIRouter(dependencies=[Depends(csrf.csrf_protect_entry)])
signed = APIRouter(dependencies=[Depends(csrf.csrf_protect)])
routers = (entry, signed)
DB = Depends(db_session, scope="function")
WHO = Depends(optional_principal)
manager = allow("admin", *MANAGERS)
T = "requests/"


def _person(principal: Principal | None) -> Principal | None:
    return principal if principal is not None and principal.user_id is not None else None


def _common() -> dict[str, Any]:
    from connectx.retention import schedule
    from connectx.web.policy import privacy_policy

    return {
        "kinds": service.KINDS,
        "kind_words": service.KIND_WORDS,
        "purposes": consent.PURPOSES,
        "contact": privacy_policy().contact,
        **schedule.page_context(),
    }


def _center(
    request: Request,
    principal: Principal | None,
    *,
    error: DomainError | None = None,
    form: dict[str, Any] | None = None,
    dpo_form: dict[str, Any] | None = None,
    section: str = "file",
) -> HTMLResponse:
    response = csrf.page(
        request,
        T + "center.html",
        _person(principal),
        status_code=error.status if error is not None else 200,
        error=error.detail if error is not None else None,
        error_field=error.extra.get("field") if error is not None else None,
        section=section,
        form=form or {"who": "customer", "kind": "access"},
        dpo_form=dpo_form or {},
        **_common(),
    )
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


@entry.get("/privacy-center", response_class=HTMLResponse)
async def center(request: Request, principal: Principal | None = WHO) -> Response:
    return _center(request, principal)


@entry.post("/privacy-center/requests", response_class=HTMLResponse)
async def file_request(
    request: Request,
    who: str = Form(""),
    business: str = Form(""),
    kind: str = Form(""),
    address: str = Form(""),
    details: str = Form(""),
    purpose: str = Form(""),
    new_name: str = Form(""),
    new_email: str = Form(""),
    new_phone: str = Form(""),
    principal: Principal | None = WHO,
    db: AsyncSession = DB,
) -> Response:
    form = {
        "who": who,
        "business": business,
        "kind": kind,
        "address": address,
        "details": details,
        "purpose": purpose,
        "name": new_name,
        "email": new_email,
        "phone": new_phone,
    }
    try:
        filed = await intake.from_privacy_center(
            db,
            who=who,
            business=business,
            kind=kind,
            address=address,
            details=details,
            form=form,
            ip=request.client.host if request.client else None,
        )
    except DomainError as exc:
        await db.rollback()
        return _center(request, principal, error=exc, form=form)
    return _verify_page(request, principal, filed.request, delivered=filed.code_delivered)


def _verify_page(
    request: Request,
    principal: Principal | None,
    req: DataRequest | None,
    *,
    reference: str = "",
    delivered: bool = True,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return csrf.page(
        request,
        T + "center_verify.html",
        _person(principal),
        status_code=status_code,
        req=service.summary(req) if req is not None else None,
        reference=req.reference if req is not None else reference,
        delivered=delivered,
        error=error,
        **_common(),
    )


@entry.get("/privacy-center/verify", response_class=HTMLResponse)
async def verify_form(
    request: Request, ref: str = "", principal: Principal | None = WHO, db: AsyncSession = DB
) -> Response:
    req = await intake.by_reference(db, ref) if ref else None
    return _verify_page(request, principal, req, reference=ref)


@entry.post("/privacy-center/verify", response_class=HTMLResponse)
async def verify(
    request: Request,
    reference: str = Form(""),
    code: str = Form(""),
    principal: Principal | None = WHO,
    db: AsyncSession = DB,
) -> Response:
    req = await intake.by_reference(db, reference)
    if req is None:
        return _verify_page(
            request,
            principal,
            None,
            reference=reference,
            error="No request has that reference; check it (it looks like R-7K3M9QX2).",
            status_code=404,
        )
    check = await verification.check_code(db, req, code, actor="anonymous")
    if not check.ok:
        # The failed attempt is counted and kept (the transaction commits).
        return _verify_page(request, principal, req, error=check.message, status_code=422)
    return csrf.page(
        request,
        T + "center_done.html",
        _person(principal),
        req=service.summary(req),
        **_common(),
    )


@entry.post("/privacy-center/resend", response_class=HTMLResponse)
async def resend(
    request: Request,
    reference: str = Form(""),
    principal: Principal | None = WHO,
    db: AsyncSession = DB,
) -> Response:
    req = await intake.by_reference(db, reference)
    if req is None:
        return _verify_page(
            request,
            principal,
            None,
            reference=reference,
            error="No request has that reference.",
            status_code=404,
        )
    try:
        sent = await verification.send_code(db, req)
    except DomainError as exc:
        await db.rollback()
        response = _verify_page(request, principal, req, error=exc.detail, status_code=exc.status)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    return _verify_page(request, principal, req, delivered=sent.delivered)


@entry.post("/privacy-center/dpo", response_class=HTMLResponse)
async def dpo_inquiry(
    request: Request,
    name: str = Form(""),
    email: str = Form(""),
    message: str = Form(""),
    principal: Principal | None = WHO,
    db: AsyncSession = DB,
) -> Response:
    dpo_form = {"name": name, "email": email, "message": message}
    try:
        req = await intake.dpo_inquiry(
            db,
            name=name,
            email=email,
            message=message,
            ip=request.client.host if request.client else None,
        )
    except DomainError as exc:
        await db.rollback()
        return _center(request, principal, error=exc, dpo_form=dpo_form, section="dpo")
    return csrf.page(
        request, T + "center_done.html", _person(principal), req=service.summary(req), **_common()
    )


def _withdraw_page(
    request: Request,
    principal: Principal | None,
    req: DataRequest | None,
    *,
    token: str = "",
    done: bool = False,
    error: DomainError | None = None,
) -> HTMLResponse:
    return csrf.page(
        request,
        T + "center_withdraw.html",
        _person(principal),
        status_code=error.status if error is not None else 200,
        error=error.detail if error is not None else None,
        req=service.summary(req) if req is not None else None,
        can_withdraw=req is not None and req.status in service.WITHDRAWABLE,
        token=token,
        done=done,
    )


async def _withdrawable(db: AsyncSession, ref: str, token: str) -> DataRequest:
    req = await intake.by_reference(db, ref)
    if req is None or not await service.check_withdraw_token(req, token):
        raise NotFound(
            "This withdrawal link is not valid: use the link from our message about your "
            "request, as it was sent."
        )
    return req


@entry.get(service.WITHDRAW_PATH, response_class=HTMLResponse)
async def withdraw_form(
    request: Request,
    ref: str = "",
    token: str = "",
    principal: Principal | None = WHO,
    db: AsyncSession = DB,
) -> Response:
    """The link in the subject's messages: shows the request and a button (a GET changes
    nothing, so mail scanners following links withdraw nothing)."""
    try:
        req = await _withdrawable(db, ref, token)
    except DomainError as exc:
        return _withdraw_page(request, principal, None, error=exc)
    error = None
    if req.status not in service.WITHDRAWABLE:
        error = Conflict(
            f"Request {req.reference} is {req.status.replace('_', ' ')}: it can no "
            "longer be withdrawn."
        )
    return _withdraw_page(request, principal, req, token=token, error=error)


@entry.post(service.WITHDRAW_PATH, response_class=HTMLResponse)
async def withdraw(
    request: Request,
    ref: str = Form(""),
    token: str = Form(""),
    principal: Principal | None = WHO,
    db: AsyncSession = DB,
) -> Response:
    try:
        req = await _withdrawable(db, ref, token)
    except DomainError as exc:
        return _withdraw_page(request, principal, None, error=exc)
    try:
        await service.withdraw(
            db,
            req,
            actor=req.subject or "anonymous",
            via="link",
            ip=request.client.host if request.client else None,
        )
    except DomainError as exc:
        await db.rollback()
        req = await _withdrawable(db, ref, token)
        return _withdraw_page(request, principal, req, error=exc)
    return _withdraw_page(request, principal, req, done=True)


# -- account settings ----------------------------------------------------------------------------


async def _account_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    *,
    error: DomainError | None = None,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    assert principal.user_id is not None
    return render(
        request,
        T + "account.html",
        {"principal": principal},
        status_code=error.status if error is not None else 200,
        error=error.detail if error is not None else None,
        error_field=error.extra.get("field") if error is not None else None,
        requests=await service.list_for_user(db, principal.user_id),
        withdrawable=service.WITHDRAWABLE,
        form=form or {"kind": "access"},
        **_common(),
    )


@signed.get("/account/privacy", response_class=HTMLResponse)
async def account_requests(
    request: Request, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> Response:
    return await _account_page(request, db, principal)


@signed.post("/account/privacy/requests/{request_id}/withdraw", response_class=HTMLResponse)
async def account_withdraw(
    request: Request,
    request_id: int,
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    req = await repo.platform_request(db, request_id)
    if req is None or req.subject != f"user:{principal.user_id}":
        raise NotFound("No request of yours has that number.")
    try:
        await service.withdraw(db, req, actor=principal.actor, via="account", ip=principal.ip)
    except DomainError as exc:
        await db.rollback()
        return await _account_page(request, db, principal, error=exc)
    response = redirect("/account/privacy")
    set_flash(response, f"Request {req.reference} withdrawn: nothing was done with it.")
    return response


@signed.post("/account/privacy/requests", response_class=HTMLResponse)
async def account_file(
    request: Request,
    kind: str = Form(""),
    details: str = Form(""),
    purpose: str = Form(""),
    new_name: str = Form(""),
    new_email: str = Form(""),
    new_phone: str = Form(""),
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    form = {
        "kind": kind,
        "details": details,
        "purpose": purpose,
        "name": new_name,
        "email": new_email,
        "phone": new_phone,
    }
    try:
        req = await intake.from_account(db, principal, kind=kind, details=details, form=form)
    except DomainError as exc:
        await db.rollback()
        return await _account_page(request, db, principal, error=exc, form=form)
    response = redirect("/account/privacy")
    set_flash(
        response,
        f"Request {req.reference} received. We answer by {req.due_at:%d %B %Y} and e-mail you "
        "at every step.",
    )
    return response


# -- a workspace's Requests tab ------------------------------------------------------------------


async def _workspace_list(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    *,
    error: DomainError | None = None,
    status: str = "open",
) -> HTMLResponse:
    from connectx.workspaces import service as workspaces

    assert principal.workspace_id is not None
    rows = await repo.list_in_workspace(
        db,
        principal.workspace_id,
        status=status if status in ("open", "closed") else None,
        limit=200,
    )
    return render(
        request,
        T + "workspace_list.html",
        {"principal": principal},
        status_code=error.status if error is not None else 200,
        error=error.detail if error is not None else None,
        workspace=await workspaces.current(db, principal),
        manager=True,
        requests=[service.summary(r) for r in rows],
        status=status,
        settings=await settings.ensure(db, principal.workspace_id),
        active="requests",
    )


@signed.get("/workspace/requests", response_class=HTMLResponse)
async def workspace_requests(
    request: Request,
    status: str = "open",
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    return await _workspace_list(request, db, principal, status=status)


@signed.post("/workspace/requests/settings", response_class=HTMLResponse)
async def workspace_settings(
    request: Request,
    handle: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    try:
        await settings.update(db, principal, handle=handle)
    except DomainError as exc:
        await db.rollback()
        return await _workspace_list(request, db, principal, error=exc)
    response = redirect("/workspace/requests")
    set_flash(response, "Privacy center handle saved.")
    return response


BLANK_ROWS = 3


def _keyword_sections(keywords: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The keywords by language (as typed: Arabic script or not), each with blank rows to add."""
    rows: dict[str, list[dict[str, str]]] = {"en": [], "ar": []}
    for keyword in keywords:
        text = str(keyword.get("text") or "")
        rows["ar" if settings.is_arabic(text) else "en"].append(
            {"text": text, "kind": str(keyword.get("kind") or "")}
        )
    titles = {"en": "English (and other Latin-script languages)", "ar": "Arabic"}
    blank = [{"text": "", "kind": ""}] * BLANK_ROWS
    return [{"id": k, "title": titles[k], "rows": rows[k] + blank} for k in ("en", "ar")]


async def _keywords_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    *,
    keywords: list[dict[str, Any]] | None = None,
    error: DomainError | None = None,
) -> HTMLResponse:
    from connectx.workspaces import service as workspaces

    assert principal.workspace_id is not None
    if keywords is None:
        keywords = list((await settings.ensure(db, principal.workspace_id)).keywords)
    return render(
        request,
        T + "workspace_keywords.html",
        {"principal": principal},
        status_code=error.status if error is not None else 200,
        error=error.detail if error is not None else None,
        workspace=await workspaces.current(db, principal),
        manager=True,
        sections=_keyword_sections(keywords),
        kinds=service.KINDS,
        kind_words=service.KIND_WORDS,
        max_keywords=settings.MAX_KEYWORDS,
        max_keyword=settings.MAX_KEYWORD,
        active="requests",
    )


@signed.get("/workspace/requests/keywords", response_class=HTMLResponse)
async def workspace_keywords(
    request: Request, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    return await _keywords_page(request, db, principal)


@signed.post("/workspace/requests/keywords", response_class=HTMLResponse)
async def workspace_keywords_save(
    request: Request,
    text: list[str] = Form([]),
    kind: list[str] = Form([]),
    reset: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    if reset:
        keywords = [dict(k) for k in settings.DEFAULT_KEYWORDS]
    else:
        if len(kind) != len(text):
            raise InvalidInput("Each keyword row has a text and a kind.", field="keywords")
        keywords = [
            {"text": t.strip(), "kind": k or None}
            for t, k in zip(text, kind, strict=True)
            if t.strip()
        ]
    try:
        await settings.update(db, principal, keywords=keywords)
    except DomainError as exc:
        await db.rollback()
        return await _keywords_page(request, db, principal, keywords=keywords, error=exc)
    response = redirect("/workspace/requests/keywords")
    set_flash(
        response,
        "Default keywords restored." if reset else f"{len(keywords)} WhatsApp keywords saved.",
    )
    return response


async def _detail(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    req: DataRequest,
    *,
    base: str,
    error: DomainError | None = None,
    workspace: Any = None,
) -> HTMLResponse:
    return render(
        request,
        T + "detail.html",
        {"principal": principal},
        status_code=error.status if error is not None else 200,
        error=error.detail if error is not None else None,
        error_field=error.extra.get("field") if error is not None else None,
        req=await service.detail(db, req),
        base=base,
        workspace=workspace,
        manager=True,
        active="requests",
        max_extension=30,
    )


@signed.get("/workspace/requests/{request_id}", response_class=HTMLResponse)
async def workspace_request(
    request: Request,
    request_id: int,
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    from connectx.workspaces import service as workspaces

    assert principal.workspace_id is not None
    req = await repo.in_workspace(db, principal.workspace_id, request_id)
    await service.record_view(db, req, actor=principal.actor, ip=principal.ip)
    return await _detail(
        request,
        db,
        principal,
        req,
        base="/workspace/requests",
        workspace=await workspaces.current(db, principal),
    )


async def _decide(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    req: DataRequest,
    action: str,
    *,
    base: str,
    reason: str = "",
    days: str = "",
    answer: str = "",
) -> Response:
    request_id = req.id
    try:
        if action == "approve":
            await service.approve(db, req, actor=principal.actor, ip=principal.ip)
            message = f"Request {req.reference} approved and carried out; the person is told."
        elif action == "refuse":
            await service.refuse(db, req, actor=principal.actor, reason=reason, ip=principal.ip)
            message = f"Request {req.reference} refused; the person is told the reasons."
        elif action == "extend":
            text = days.strip()
            if not is_digits(text):
                raise InvalidInput("Enter the extension in whole days (1 to 30).", field="days")
            await service.extend(
                db, req, actor=principal.actor, days=int(text), reason=reason, ip=principal.ip
            )
            message = f"Request {req.reference} extended to {req.due_at:%d %B %Y}."
        else:
            await service.close_inquiry(db, req, actor=principal.actor, answer=answer)
            message = f"Inquiry {req.reference} answered."
    except DomainError as exc:
        await db.rollback()
        fresh = await repo.any_request(db, request_id)
        if fresh is None:
            raise
        workspace = None
        if fresh.workspace_id is not None:
            from connectx.workspaces import service as workspaces

            workspace = await workspaces.current(db, principal)
        return await _detail(
            request, db, principal, fresh, base=base, error=exc, workspace=workspace
        )
    response = redirect(f"{base}/{request_id}")
    set_flash(response, message)
    return response


async def _in_workspace(db: AsyncSession, principal: Principal, request_id: int) -> DataRequest:
    assert principal.workspace_id is not None
    return await repo.in_workspace(db, principal.workspace_id, request_id)


@signed.post("/workspace/requests/{request_id}/approve", response_class=HTMLResponse)
async def workspace_approve(
    request: Request,
    request_id: int,
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    req = await _in_workspace(db, principal, request_id)
    return await _decide(request, db, principal, req, "approve", base="/workspace/requests")


@signed.post("/workspace/requests/{request_id}/refuse", response_class=HTMLResponse)
async def workspace_refuse(
    request: Request,
    request_id: int,
    reason: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    req = await _in_workspace(db, principal, request_id)
    return await _decide(
        request, db, principal, req, "refuse", base="/workspace/requests", reason=reason
    )


@signed.post("/workspace/requests/{request_id}/extend", response_class=HTMLResponse)
async def workspace_extend(
    request: Request,
    request_id: int,
    days: str = Form(""),
    reason: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    req = await _in_workspace(db, principal, request_id)
    return await _decide(
        request, db, principal, req, "extend", base="/workspace/requests", reason=reason, days=days
    )


# -- the operator (ConnectX's DPO) ---------------------------------------------------------------


async def _operator(db: AsyncSession, principal: Principal) -> Principal:
    """Operators only; anyone else is told the page does not exist."""
    assert principal.user_id is not None
    if not await repo.is_operator(db, principal.user_id):
        raise NotFound("No such page.")
    return principal


async def operator(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> Principal:
    return await _operator(db, principal)


async def _operator_request(db: AsyncSession, request_id: int) -> DataRequest:
    req = await repo.platform_request(db, request_id)
    if req is None:
        raise NotFound(f"No request {request_id} to ConnectX.")
    return req


@signed.get("/operator/requests", response_class=HTMLResponse)
async def operator_requests(
    request: Request, principal: Principal = Depends(operator), db: AsyncSession = DB
) -> Response:
    now = clock.now()
    return render(
        request,
        T + "operator_list.html",
        {"principal": principal},
        requests=[service.summary(r) for r in await repo.list_platform(db, status="open")],
        overdue=[service.summary(r) for r in await repo.overdue(db, now)],
    )


@signed.get("/operator/requests/{request_id}", response_class=HTMLResponse)
async def operator_request(
    request: Request,
    request_id: int,
    principal: Principal = Depends(operator),
    db: AsyncSession = DB,
) -> Response:
    req = await _operator_request(db, request_id)
    await service.record_view(db, req, actor=principal.actor, ip=principal.ip)
    return await _detail(request, db, principal, req, base="/operator/requests")


@signed.post("/operator/requests/{request_id}/{action}", response_class=HTMLResponse)
async def operator_decide(
    request: Request,
    request_id: int,
    action: str,
    reason: str = Form(""),
    days: str = Form(""),
    answer: str = Form(""),
    principal: Principal = Depends(operator),
    db: AsyncSession = DB,
) -> Response:
    if action not in ("approve", "refuse", "extend", "answer"):
        raise NotFound("No such action.")
    req = await _operator_request(db, request_id)
    return await _decide(
        request,
        db,
        principal,
        req,
        action,
        base="/operator/requests",
        reason=reason,
        days=days,
        answer=answer,
    )
