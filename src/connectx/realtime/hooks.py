"""Events of the webhook processor: new inbound messages and delivery statuses.

The processor reports each committed batch to :func:`on_batch_stored` (registered with
``intake.processor.on_stored`` when this module is imported: every process that runs background
work imports it through the task modules). One short read per batch maps the batch's ids to
conversations; events carry ids and statuses only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectx.db.session import unit_of_work
from connectx.intake import processor
from connectx.realtime import publish
from connectx.realtime import repository as repo
from connectx.realtime.events import Event

if TYPE_CHECKING:
    from connectx.intake.dispatch import Outcome


@processor.on_stored
async def on_batch_stored(outcome: Outcome) -> None:
    if not outcome.message_ids and not outcome.status_wamids:
        return
    events: list[Event] = []
    async with unit_of_work() as db:
        for ws, ids in outcome.message_ids.items():
            for message_id, conversation_id, direction, _status in await repo.message_refs(
                db, ws, ids
            ):
                events.append(
                    Event(
                        ws,
                        "message.new",
                        {
                            "message_id": message_id,
                            "conversation_id": conversation_id,
                            "direction": direction,
                        },
                    )
                )
        for ws, wamids in outcome.status_wamids.items():
            for message_id, conversation_id, status in await repo.status_refs(db, ws, wamids):
                events.append(
                    Event(
                        ws,
                        "message.status",
                        {
                            "message_id": message_id,
                            "conversation_id": conversation_id,
                            "status": status,
                        },
                    )
                )
    await publish.send(events)
