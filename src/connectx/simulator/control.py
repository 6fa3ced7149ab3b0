"""``/_sim``: the simulator's own API for tests, benchmarks and people.

Make customers send messages and change their preferences, list what the platform sent, send
status callbacks or raw webhooks, move the clock, inject errors, change numbers and templates,
wait until every webhook is delivered. docs/simulator.md lists every call.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectx.simulator.core import SimInputError, Simulator
from connectx.simulator.payloads import encode
from connectx.simulator.settings import CustomerConfig


def sim(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SimInputError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise SimInputError("the body is a JSON object")
    return data


def control(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except SimInputError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        except (TypeError, ValueError) as exc:  # a number or base64 that is not one
            return JSONResponse({"detail": f"invalid value: {exc}"}, status_code=422)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    endpoint.__name__ = handler.__name__
    return endpoint


def customer_json(s: Simulator, key: str) -> dict[str, Any]:
    c = s.customers[key]
    return {
        "key": c.key,
        "wa_id": c.wa_id,
        "user_id": c.user_id,
        "name": c.name,
        "username": c.username,
        "hide_phone": c.hide_phone,
        "undeliverable": c.undeliverable,
        "marketing_stopped": c.marketing_stopped,
        "window_open": {pnid: s.window_open(pnid, c) for pnid in s.numbers},
    }


@control
async def state(request: Request) -> Any:
    s = sim(request)
    return {
        "graph_version": s.config.graph_version,
        "now": s.now(),
        "clock_frozen": s.clock.frozen,
        "callback_url": s.config.callback_url,
        "apps": [
            {"app_id": a.app_id, "callback_url": s.config.callback_for(a)} for a in s.apps.values()
        ],
        "numbers": [
            {
                "phone_number_id": n.phone_number_id,
                "display_phone_number": n.display_phone_number,
                "waba_id": n.waba_id,
                "app_id": n.app_id,
                "throughput": n.throughput,
            }
            for n in s.numbers.values()
        ],
        "customers": [customer_json(s, k) for k in s.customers],
    }


@control
async def customers(request: Request) -> Any:
    s = sim(request)
    if request.method == "GET":
        return {"data": [customer_json(s, k) for k in s.customers]}
    data = await body_of(request)
    try:
        config = CustomerConfig.model_validate(data)
    except ValueError as exc:
        raise SimInputError(str(exc)) from None
    customer = s.add_customer(config)
    return JSONResponse(customer_json(s, customer.key), status_code=201)


@control
async def customer_messages(request: Request) -> Any:
    s = sim(request)
    data = await body_of(request)
    result = s.customer_sends(request.path_params["customer"], data)
    return JSONResponse(result, status_code=201)


@control
async def customer_preferences(request: Request) -> Any:
    s = sim(request)
    data = await body_of(request)
    return s.set_preference(
        request.path_params["customer"], data.get("phone_number_id"), str(data.get("value"))
    )


@control
async def sent(request: Request) -> Any:
    s = sim(request)
    if request.method == "DELETE":
        s.sent.clear()
        s.sent_by_wamid.clear()
        return {"ok": True}
    q = request.query_params
    items = s.sent
    if q.get("phone_number_id"):
        items = [x for x in items if x.phone_number_id == q["phone_number_id"]]
    if q.get("kind"):
        items = [x for x in items if x.kind == q["kind"]]
    if q.get("to"):
        found = s.find_customer(q["to"])
        items = [x for x in items if found is not None and x.customer == found.key]
    if q.get("after_seq"):
        after = int(q["after_seq"])
        items = [x for x in items if x.seq > after]
    limit = int(q.get("limit", 1000))
    return {"data": [x.as_json() for x in items[:limit]], "total": len(items)}


@control
async def stats(request: Request) -> Any:
    return sim(request).stats_json()


@control
async def statuses(request: Request) -> Any:
    data = await body_of(request)
    errors = data.get("errors")
    if errors is None and data.get("code"):
        errors = [
            {
                "code": int(data["code"]),
                "title": data.get("title", "Error"),
                "message": data.get("title", "Error"),
                "error_data": {"details": data.get("details", "Injected by the simulator")},
            }
        ]
    update = sim(request).send_status(str(data.get("wamid")), str(data.get("status")), errors)
    return JSONResponse({"value": update.value}, status_code=202)


@control
async def webhooks(request: Request) -> Any:
    s = sim(request)
    if request.method == "GET":
        q = request.query_params
        with_body = q.get("body", "1") != "0"
        items = list(s.dispatcher.deliveries)
        if q.get("after_id"):
            after_id = int(q["after_id"])
            items = [d for d in items if d.id > after_id]
        return {"data": [d.as_json(with_body=with_body) for d in items]}
    data = await body_of(request)
    app_id = str(data.get("app_id") or next(iter(s.apps)))
    if app_id not in s.apps:
        raise SimInputError(f"no app {app_id!r}", 404)
    if "body_b64" in data:
        body = base64.b64decode(str(data["body_b64"]), validate=True)
    elif isinstance(data.get("payload"), dict | list):
        body = encode(data["payload"], escape_slashes=s.config.webhooks.escape_slashes)
    else:
        raise SimInputError("give payload (JSON) or body_b64 (exact bytes)")
    signature = data.get("signature")
    delivery = s.dispatcher.post_raw(app_id, body, str(signature) if signature else None)
    return JSONResponse({"id": delivery.id}, status_code=202)


@control
async def verify(request: Request) -> Any:
    s = sim(request)
    data = await body_of(request)
    app_id = str(data.get("app_id") or next(iter(s.apps)))
    app = s.apps.get(app_id)
    if app is None:
        raise SimInputError(f"no app {app_id!r}", 404)
    return await s.dispatcher.verify(app)


@control
async def settle(request: Request) -> Any:
    s = sim(request)
    data = await body_of(request)
    done = await s.dispatcher.settle(float(data.get("timeout_s", 30)))
    return {"settled": done, "outstanding": s.dispatcher.outstanding}


@control
async def clock(request: Request) -> Any:
    s = sim(request)
    if request.method == "POST":
        data = await body_of(request)
        try:
            if data.get("advance_s") is not None:
                s.clock.advance(float(data["advance_s"]))
        except (TypeError, ValueError):
            raise SimInputError("advance_s is a number of seconds") from None
        if data.get("freeze") is True:
            s.clock.freeze()
        elif data.get("freeze") is False:
            s.clock.unfreeze()
    return {"now": s.now(), "iso": s.clock.now().isoformat(), "frozen": s.clock.frozen}


@control
async def faults(request: Request) -> Any:
    s = sim(request)
    if request.method == "DELETE":
        s.faults.clear()
        return {"ok": True}
    if request.method == "POST":
        fault = s.add_fault(await body_of(request))
        return JSONResponse({"id": fault.id}, status_code=201)
    return {"data": [vars(f) for f in s.faults]}


@control
async def numbers(request: Request) -> Any:
    s = sim(request)
    data = await body_of(request)
    if request.method == "POST":
        number = s.add_number(data)
    else:
        number = s.update_number(request.path_params["pnid"], data)
    return JSONResponse(
        {"phone_number_id": number.phone_number_id, "throughput": number.throughput},
        status_code=201 if request.method == "POST" else 200,
    )


@control
async def template_status(request: Request) -> Any:
    s = sim(request)
    data = await body_of(request)
    template = s.set_template_status(
        request.path_params["waba"],
        request.path_params["name"],
        data.get("language"),
        str(data.get("status", "")),
        data.get("reason"),
    )
    return template.as_graph()


@control
async def reset(request: Request) -> Any:
    s = sim(request)
    await s.dispatcher.settle(5)
    s.reset()
    return {"ok": True}


@control
async def media_content(request: Request) -> Any:
    """A media file's bytes without a token, for the phone page."""
    s = sim(request)
    media = s.media.get(request.path_params["media_id"])
    if media is None:
        raise SimInputError("no such media", 404)
    return Response(media.data, media_type=media.mime_type, headers={"Cache-Control": "no-store"})


routes = [
    Route("/_sim/state", state, methods=["GET"]),
    Route("/_sim/customers", customers, methods=["GET", "POST"]),
    Route("/_sim/customers/{customer}/messages", customer_messages, methods=["POST"]),
    Route("/_sim/customers/{customer}/preferences", customer_preferences, methods=["POST"]),
    Route("/_sim/sent", sent, methods=["GET", "DELETE"]),
    Route("/_sim/stats", stats, methods=["GET"]),
    Route("/_sim/statuses", statuses, methods=["POST"]),
    Route("/_sim/webhooks", webhooks, methods=["GET", "POST"]),
    Route("/_sim/verify", verify, methods=["POST"]),
    Route("/_sim/settle", settle, methods=["POST"]),
    Route("/_sim/clock", clock, methods=["GET", "POST"]),
    Route("/_sim/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/_sim/numbers", numbers, methods=["POST"]),
    Route("/_sim/numbers/{pnid}", numbers, methods=["PATCH"]),
    Route("/_sim/templates/{waba}/{name}/status", template_status, methods=["POST"]),
    Route("/_sim/reset", reset, methods=["POST"]),
    Route("/_sim/media/{media_id}", media_content, methods=["GET"]),
]
