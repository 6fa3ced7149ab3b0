"""Events of the webhook processor: new inbound messages and delivery statuses.

The processor reports each committed batch to :func:`on_batch_stored` (registered with
``intake.processor.on_stored`` when this module is imported: every process that runs background
work imports it through the task modules). The batch's outcome already carries each message's
conversation, direction and status (read inside the processing transaction), so publishing needs
no query and no second transaction; events carry ids and statuses only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectx.intake import processor
from connectx.realtime import publish
from connectx.realtime.events import Event

if TYPE_CHECKING:
    from connectx.intake.dispatch import Outcome


@processor.on_stored
async def on_batch_stored(outcome: Outcome) -> None:
    events = [
        Event(
            ws,
            "message.new",
            {"message_id": message_id, "conversation_id": conversation_id, "direction": direction},
        )
        for ws, refs in outcome.messages.items()
        for message_id, conversation_id, direction in refs
    ]
    events += [
        Event(
            ws,
            "message.status",
            {"message_id": message_id, "conversation_id": conversation_id, "status": status},
        )
        for ws, refs in outcome.statuses.items()
        for message_id, conversation_id, status in refs
    ]
    if events:
        await publish.send(events)
