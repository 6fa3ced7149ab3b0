"""Real-time workspace events for browsers and API clients (docs/realtime.md).

Services queue events with :func:`connectx.realtime.publish.after_commit`; once the transaction
commits they go to the bus (in-process, or Redis when ``CONNECTX_REDIS_URL`` is set), which keeps
a short per-workspace log for resuming and fans them out to every ``connectx serve`` process,
where ``GET /api/v1/events`` streams them to the workspace's members as server-sent events.
"""
