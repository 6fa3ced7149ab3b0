"""The web shell's own pages: the landing page and the API reference (the privacy policy's pages,
with its versions, are served by :mod:`connectx.policies.views`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from connectx.accounts.principal import Principal, optional_principal
from connectx.web.render import render

router = APIRouter()


def _person(principal: Principal | None) -> Principal | None:
    """Only signed-in people (not API keys) get the signed-in page furniture."""
    return principal if principal is not None and principal.user_id is not None else None


@router.get("/", response_class=HTMLResponse)
async def landing(
    request: Request, principal: Principal | None = Depends(optional_principal)
) -> HTMLResponse:
    return render(request, "web/landing.html", principal=_person(principal))


@router.get("/docs", response_class=HTMLResponse)
async def api_reference(request: Request) -> HTMLResponse:
    """Swagger UI for /openapi.json, from npm assets and without inline script (CSP)."""
    return render(request, "web/api_docs.html", openapi_url=request.app.openapi_url)
