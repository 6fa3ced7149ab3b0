"""``GET /api/v1/events``: the workspace's real-time events as server-sent events.

For signed-in members (cookie session; owners, admins and agents) and API keys with the
``read`` scope. Analysts, who see reports and not conversations, get 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from connectx.accounts.caller import Principal
from connectx.realtime import bus, stream
from connectx.workspaces.access import allow

router = APIRouter(prefix="/api/v1", tags=["events"])

readers = allow("read", "owner", "admin", "agent")


@router.get(
    "/events",
    summary="Real-time events of the workspace (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def events(
    request: Request,
    since: str | None = Query(
        None,
        description="Resume after this event id (what Last-Event-ID carries on reconnects; "
        "pages pass the id their snapshot was rendered at).",
        max_length=40,
    ),
    last_event_id: str | None = Header(None, alias="Last-Event-ID", include_in_schema=False),
    principal: Principal = Depends(readers),
) -> StreamingResponse:
    assert principal.workspace_id is not None
    feed = bus.feed_of(request.app)
    return StreamingResponse(
        stream.events_for(feed, principal.workspace_id, principal.user_id, last_event_id or since),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def head_id(request: Request, workspace_id: int) -> str:
    """The newest event id of the workspace, for a page to pass as ``since`` (its snapshot)."""
    from connectx.realtime.events import format_id

    return format_id(await bus.feed_of(request.app).head(workspace_id))
