"""The inbox's web app: the ``/inbox`` page and the htmx fragments it swaps (docs/inbox.md, the
web app part). Built over the inbox domain (``connectx.inbox``) and the conversation, message,
send and template services."""
