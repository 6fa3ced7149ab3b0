"""The Graph API endpoints ConnectX calls, under ``/{version}/``: send messages, upload, look
up, download and delete media, list/create/delete templates, read number details.

Handlers only translate HTTP to :class:`~connectx.simulator.core.Simulator` calls; every error is
a :class:`~connectx.simulator.errors.GraphError` rendered the way Meta renders it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectx.simulator.core import Simulator
from connectx.simulator.errors import GraphError, invalid

_NUMERIC = re.compile(r"^[0-9]{1,64}$")
MAX_UPLOAD = 100 * 1024 * 1024 + 1


class GraphVersion(Convertor[str]):
    regex = r"v[0-9]{1,3}\.[0-9]{1,2}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graphver", GraphVersion())


def sim(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


def token(request: Request) -> str | None:
    return Simulator.bearer(
        request.headers.get("authorization"), request.query_params.get("access_token")
    )


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("The request body is not valid JSON") from None


def graph(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except GraphError as exc:
            return exc.response()
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    endpoint.__name__ = handler.__name__
    return endpoint


@graph
async def send_message(request: Request) -> Any:
    body = await json_body(request)
    return sim(request).send(request.path_params["object_id"], token(request), body)


@graph
async def upload_media(request: Request) -> Any:
    simulator = sim(request)
    pnid = request.path_params["object_id"]
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        simulator.authorize(token(request), list(simulator.numbers.values()))
        raise invalid("Upload media as multipart/form-data with file, type and messaging_product")
    async with request.form(max_part_size=MAX_UPLOAD) as form:
        upload = form.get("file")
        data: bytes | None = None
        filename = None
        file_type = None
        if isinstance(upload, UploadFile):
            data = await upload.read()
            filename = upload.filename
            file_type = upload.content_type
        declared = form.get("type")
        mime = declared if isinstance(declared, str) and declared else file_type
        product = form.get("messaging_product")
        return simulator.upload_media(
            pnid,
            token(request),
            data=data,
            mime=mime,
            filename=filename,
            messaging_product=product if isinstance(product, str) else None,
        )


@graph
async def get_object(request: Request) -> Any:
    simulator = sim(request)
    object_id = request.path_params["object_id"]
    if object_id in simulator.numbers:
        return simulator.number_info(object_id, token(request))
    return simulator.media_info(object_id, token(request), base_url(request))


@graph
async def delete_object(request: Request) -> Any:
    return sim(request).delete_media(request.path_params["object_id"], token(request))


@graph
async def templates(request: Request) -> Any:
    simulator = sim(request)
    waba_id = request.path_params["object_id"]
    if request.method == "GET":
        query = dict(request.query_params)
        return simulator.list_templates(waba_id, token(request), query, base_url(request))
    if request.method == "POST":
        return simulator.create_template(waba_id, token(request), await json_body(request))
    return simulator.delete_template(
        waba_id,
        token(request),
        request.query_params.get("name"),
        request.query_params.get("hsm_id"),
    )


@graph
async def phone_numbers(request: Request) -> Any:
    return sim(request).phone_numbers(request.path_params["object_id"], token(request))


async def download(request: Request) -> Response:
    """The media URL handed out by ``GET /{media-id}``: needs the owner's Bearer token and
    expires (404) after ``media_url_ttl_s``."""
    q = request.query_params
    status, media = sim(request).download(
        q.get("mid", ""), q.get("ext", ""), q.get("hash", ""), token(request)
    )
    if media is None:
        if status == 401:
            return GraphError(190, "A valid access token is required to download media").response()
        if status >= 500:
            return GraphError(131016, "Injected by the simulator", status=status).response()
        return Response("URL signature expired", status_code=404, media_type="text/plain")
    headers = {"Content-Disposition": "attachment", "Cache-Control": "no-store"}
    return Response(media.data, media_type=media.mime_type, headers=headers)


@graph
async def unknown(request: Request) -> Any:
    simulator = sim(request)
    simulator.authorize(token(request), list(simulator.numbers.values()))
    raise GraphError(
        100,
        f"Unknown path components: {request.url.path}",
        subcode=2500,
        title="Invalid parameter",
    )


routes = [
    Route("/whatsapp_business/attachments/", download, methods=["GET"]),
    Route("/{version:graphver}/{object_id}/messages", send_message, methods=["POST"]),
    Route("/{version:graphver}/{object_id}/media", upload_media, methods=["POST"]),
    Route(
        "/{version:graphver}/{object_id}/message_templates",
        templates,
        methods=["GET", "POST", "DELETE"],
    ),
    Route("/{version:graphver}/{object_id}/phone_numbers", phone_numbers, methods=["GET"]),
    Route("/{version:graphver}/{object_id}", get_object, methods=["GET"]),
    Route("/{version:graphver}/{object_id}", delete_object, methods=["DELETE"]),
    Route(
        "/{version:graphver}/{rest:path}",
        unknown,
        methods=["GET", "POST", "DELETE", "PUT", "PATCH"],
    ),
]
