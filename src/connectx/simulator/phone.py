"""The "customer phone": a small server-rendered page where a person picks a simulated customer
and chats with a business number as them. What they type goes out as signed webhooks; the
business's replies (and read receipts, typing) appear by polling the thread every second.

Plain forms work without JavaScript; with htmx (served from the platform's installed assets) the
thread refreshes itself and sending does not reload the page. No inline script or style, so the
page runs under a strict Content-Security-Policy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from connectx.kit.linkify import linkify
from connectx.simulator.core import Customer, Item, SimInputError, Simulator, media_kind
from connectx.simulator.settings import CustomerConfig

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _hhmm(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M")


templates.env.filters["hhmm"] = _hhmm
templates.env.filters["linkify"] = linkify

QUICK_REACTIONS = ("👍", "❤️", "😂")
MAX_PAGE_UPLOAD = 16 * 1024 * 1024


def sim(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


def _number_id(request: Request, s: Simulator, given: str | None = None) -> str:
    pnid = given or request.query_params.get("number")
    if pnid and pnid in s.numbers:
        return pnid
    return s.first_number().phone_number_id


def _chat_url(key: str, pnid: str) -> str:
    return f"/phone/{key}?{urlencode({'number': pnid})}"


def _buttons(item: Item) -> list[dict[str, str]]:
    """Replies a customer can tap under a business message: reply buttons, list rows and
    template quick replies."""
    request = item.detail.get("request") or {}
    out: list[dict[str, str]] = []
    if item.type == "interactive":
        interactive = request.get("interactive") or {}
        action = interactive.get("action") or {}
        if interactive.get("type") == "button":
            for b in action.get("buttons") or []:
                reply = b.get("reply") or {}
                out.append(
                    {
                        "kind": "button_reply",
                        "id": str(reply.get("id")),
                        "title": str(reply.get("title")),
                    }
                )
        elif interactive.get("type") == "list":
            for section in action.get("sections") or []:
                for row in section.get("rows") or []:
                    out.append(
                        {
                            "kind": "list_reply",
                            "id": str(row.get("id")),
                            "title": str(row.get("title")),
                            "description": str(row.get("description") or ""),
                        }
                    )
    elif item.type == "template":
        s_template = item.detail.get("template_buttons") or []
        out.extend(s_template)
    return out


def _view(s: Simulator, item: Item) -> dict[str, Any]:
    request = item.detail.get("request") or {}
    media = None
    if item.direction == "out" and item.type in ("image", "video", "audio", "document", "sticker"):
        obj = request.get(item.type) or {}
        media = {"id": obj.get("id"), "link": obj.get("link")}
    elif item.direction == "in":
        message = item.detail.get("message") or {}
        obj = message.get(item.type) if isinstance(message.get(item.type), dict) else None
        if obj and obj.get("id") in s.media:
            media = {"id": obj["id"], "link": None}
    return {
        "item": item,
        "mine": item.direction == "in",
        "buttons": _buttons(item),
        "media": media,
        "reply_to": s.items.get(str(item.detail.get("reply_to") or "")),
    }


def _thread_context(
    request: Request, s: Simulator, customer: Customer, pnid: str
) -> dict[str, Any]:
    number = s.numbers[pnid]
    items = s.thread(pnid, customer)
    typing_until = s.typing.get((pnid, customer.key), 0)
    return {
        "request": request,
        "customer": customer,
        "number": number,
        "numbers": list(s.numbers.values()),
        "views": [_view(s, i) for i in items],
        "typing": typing_until > s.now(),
        "window_open": s.window_open(pnid, customer),
        "reactions": QUICK_REACTIONS,
        "chat_url": _chat_url(customer.key, pnid),
        "query": urlencode({"number": pnid}),
    }


def page(handler: Any) -> Any:
    """A page handler whose SimInputError (an unknown customer...) is a plain 4xx."""

    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except SimInputError as exc:
            return Response(str(exc), status_code=exc.status, media_type="text/plain")
        return response

    endpoint.__name__ = handler.__name__
    return endpoint


def _hx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def index(request: Request) -> Response:
    s = sim(request)
    pnid = _number_id(request, s)
    return templates.TemplateResponse(
        request,
        "simulator/index.html",
        {
            "customers": list(s.customers.values()),
            "numbers": list(s.numbers.values()),
            "number": s.numbers[pnid],
            "error": request.query_params.get("error"),
        },
    )


async def add_customer(request: Request) -> Response:
    s = sim(request)
    async with request.form() as form:
        wa_id = str(form.get("wa_id") or "").strip().lstrip("+").replace(" ", "") or None
        name = str(form.get("name") or "").strip() or None
        hide = form.get("hide_phone") == "on"
    try:
        customer = s.add_customer(CustomerConfig(wa_id=wa_id, name=name, hide_phone=hide))
    except (SimInputError, ValueError) as exc:
        message = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
        return RedirectResponse(f"/phone?{urlencode({'error': message})}", status_code=303)
    return RedirectResponse(_chat_url(customer.key, _number_id(request, s)), status_code=303)


def _customer(s: Simulator, key: str) -> Customer:
    customer = s.customers.get(key)
    if customer is None:
        raise SimInputError("no such customer", 404)
    return customer


async def chat(request: Request) -> Response:
    s = sim(request)
    try:
        customer = _customer(s, request.path_params["key"])
    except SimInputError:
        return RedirectResponse("/phone", status_code=303)
    pnid = _number_id(request, s)
    context = _thread_context(request, s, customer, pnid)
    context["error"] = request.query_params.get("error")
    return templates.TemplateResponse(request, "simulator/chat.html", context)


async def thread(request: Request) -> Response:
    s = sim(request)
    try:
        customer = _customer(s, request.path_params["key"])
    except SimInputError:
        return Response("no such customer", status_code=404)
    pnid = _number_id(request, s)
    return templates.TemplateResponse(
        request, "simulator/_thread.html", _thread_context(request, s, customer, pnid)
    )


async def _after(
    request: Request, s: Simulator, customer: Customer, pnid: str, error: str | None
) -> Response:
    if _hx(request):
        context = _thread_context(request, s, customer, pnid)
        context["error"] = error
        return templates.TemplateResponse(request, "simulator/_chat.html", context)
    url = _chat_url(customer.key, pnid)
    if error:
        url += "&" + urlencode({"error": error})
    return RedirectResponse(url, status_code=303)


@page
async def send(request: Request) -> Response:
    """The customer sends text, a file (image, video, audio, document, sticker) or both."""
    s = sim(request)
    customer = _customer(s, request.path_params["key"])
    error = None
    async with request.form(max_part_size=MAX_PAGE_UPLOAD) as form:
        pnid = _number_id(request, s, str(form.get("number") or ""))
        text = str(form.get("text") or "").strip()
        upload = form.get("file")
        spec: dict[str, Any] = {"phone_number_id": pnid}
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read()
            mime = upload.content_type or "application/octet-stream"
            kind = media_kind(mime) or "document"
            import base64

            spec.update(type=kind, content_b64=base64.b64encode(data).decode(), mime_type=mime)
            if kind == "document":
                spec["filename"] = upload.filename
            if text and kind in ("image", "video", "document"):
                spec["caption"] = text
        elif text:
            spec.update(type="text", text=text)
        else:
            error = "Type a message or choose a file."
        if reply_to := str(form.get("reply_to") or ""):
            spec["reply_to"] = reply_to
    if error is None:
        try:
            s.customer_sends(customer.key, spec)
        except SimInputError as exc:
            error = str(exc)
    return await _after(request, s, customer, pnid, error)


@page
async def reply(request: Request) -> Response:
    """The customer taps a reply button, a list row or a template quick reply."""
    s = sim(request)
    customer = _customer(s, request.path_params["key"])
    async with request.form() as form:
        pnid = _number_id(request, s, str(form.get("number") or ""))
        kind = str(form.get("kind") or "button_reply")
        spec: dict[str, Any] = {
            "phone_number_id": pnid,
            "reply_to": str(form.get("context") or "") or None,
        }
        title = str(form.get("title") or "")
        if kind == "button":
            spec.update(type="button", text=title, payload=str(form.get("id") or title))
        else:
            spec.update(
                type="interactive", reply_type=kind, id=str(form.get("id") or ""), title=title
            )
            if form.get("description"):
                spec["description"] = str(form.get("description"))
    error = None
    try:
        s.customer_sends(customer.key, spec)
    except SimInputError as exc:
        error = str(exc)
    return await _after(request, s, customer, pnid, error)


@page
async def react(request: Request) -> Response:
    s = sim(request)
    customer = _customer(s, request.path_params["key"])
    async with request.form() as form:
        pnid = _number_id(request, s, str(form.get("number") or ""))
        spec = {
            "phone_number_id": pnid,
            "type": "reaction",
            "message_id": str(form.get("message_id") or ""),
            "emoji": str(form.get("emoji") or ""),
        }
    error = None
    try:
        s.customer_sends(customer.key, spec)
    except SimInputError as exc:
        error = str(exc)
    return await _after(request, s, customer, pnid, error)


@page
async def preference(request: Request) -> Response:
    s = sim(request)
    customer = _customer(s, request.path_params["key"])
    async with request.form() as form:
        pnid = _number_id(request, s, str(form.get("number") or ""))
        value = str(form.get("value") or "")
    error = None
    try:
        s.set_preference(customer.key, pnid, value)
    except SimInputError as exc:
        error = str(exc)
    return await _after(request, s, customer, pnid, error)


async def home(request: Request) -> Response:
    return RedirectResponse("/phone", status_code=307)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/phone", index, methods=["GET"]),
    Route("/phone/customers", add_customer, methods=["POST"]),
    Route("/phone/{key}", chat, methods=["GET"]),
    Route("/phone/{key}/thread", thread, methods=["GET"]),
    Route("/phone/{key}/send", send, methods=["POST"]),
    Route("/phone/{key}/reply", reply, methods=["POST"]),
    Route("/phone/{key}/react", react, methods=["POST"]),
    Route("/phone/{key}/preferences", preference, methods=["POST"]),
]
