"""JSON logs with a request id; every line passes the redaction filter."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from connectx.kit.redaction import redact

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_scrub_value(v) for v in value]
    return value


def scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Rewrite a record's message, extra fields and traceback through the redaction filter."""
    try:
        record.msg = redact(record.getMessage())
    except Exception:  # a bad format string must not lose the record
        record.msg = redact(str(record.msg))
    record.args = None
    for key, value in list(record.__dict__.items()):
        if key not in _STANDARD and isinstance(value, str | dict | list | tuple | set):
            setattr(record, key, _scrub_value(value))
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        # Formatters that render the exception themselves (the JSON one does) would print the
        # unredacted traceback: they all fall back to ``exc_text`` when ``exc_info`` is empty.
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    if not hasattr(record, "request_id"):
        record.request_id = request_id.get()
    return record


class RedactionFilter(logging.Filter):
    """Handler filter: also scrubs fields given with ``extra=`` (set after record creation)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


_base_factory = logging.getLogRecordFactory()


def _factory(
    *args: Any, _make: Any = _base_factory, _scrub: Any = scrub, **kwargs: Any
) -> logging.LogRecord:
    # (bound as defaults: at interpreter shutdown this module's globals may already be None)
    record: logging.LogRecord = _make(*args, **kwargs)
    try:
        return _scrub(record)
    except Exception:  # never let an unredacted record through: keep only where it came from
        record.msg, record.args = "(log record not shown: it could not be redacted)", None
        record.exc_info = record.exc_text = record.stack_info = None
        return record


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is emitted (not when logging was
    configured): a stream replaced and closed meanwhile (test runners capture per test) would
    turn every later record into a logging error."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


def install() -> None:
    """Scrub every record of this process at creation, whichever handler receives it."""
    logging.setLogRecordFactory(_factory)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactionFilter) for f in handler.filters):
            handler.addFilter(RedactionFilter())


def configure(level: str = "INFO", json: bool = True) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_connectx", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler._connectx = True  # type: ignore[attr-defined]
    formatter: logging.Formatter
    if json:
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "asctime": "time"},
        )
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(RedactionFilter())
    root.addHandler(handler)
    install()
    root.setLevel(level)
    for name in (
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "dramatiq",
        "sqlalchemy",
        "aiosqlite",
        "asyncio",
        "alembic",
    ):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    # Uvicorn's access log carries query strings (tokens in one-time links): ours replaces it.
    # Not propagated either: uvicorn decides per connection whether to build its access line
    # by ``hasHandlers()``, which a propagating logger answers with the root's handler, and it
    # then worked out the client's address and the quoted path of every request before the
    # disabled logger dropped them (~4 % of a webhook POST's time in the loop, session 16).
    access = logging.getLogger("uvicorn.access")
    access.propagate = False
    access.disabled = True
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)


def extra(**fields: Any) -> dict[str, Any]:
    return {"extra": fields}
