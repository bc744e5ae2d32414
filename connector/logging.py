"""Logging helpers: keep secrets out of logs (webhook URLs carry a per-connection secret in
their path) and put the connection, RMA, run and Brightpearl request ID on every line."""

import contextvars
import logging
import re

from pythonjsonlogger.json import JsonFormatter as JsonFormatterBase

WEBHOOK_SECRET_IN_PATH = re.compile(r"(/webhooks/[a-z]+/\d+/)[^/\s?\"']+")


def redact(text: str) -> str:
    return WEBHOOK_SECRET_IN_PATH.sub(r"\1•••", text)


class RedactWebhookSecrets(logging.Filter):
    """Rewrites a record's message (access logs of the web server included) before output."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


# --- Context on every line -----------------------------------------------------------------
# The connection, RMA, sync run, Brightpearl request ID and Celery task a line is about. Set
# by `bind` (tasks, sync runs, the Brightpearl client's responses: see connector.observability)
# and read by `AddLogContext`; a value passed in `extra=` wins for that one line.
CONTEXT_FIELDS = ("connection", "rma", "run", "brightpearl_request_id", "task")
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "connector_log_context", default=None
)


def bind(**values) -> contextvars.Token:
    """Add fields to the current context (this thread / task); returns a token for `reset`."""
    current = dict(_context.get() or {})
    current.update({k: str(v) for k, v in values.items() if v not in (None, "")})
    return _context.set(current)


def reset(token: contextvars.Token | None = None) -> None:
    """Restore the context before `bind` (or clear it)."""
    if token is None:
        _context.set({})
    else:
        _context.reset(token)


def current() -> dict[str, str]:
    return dict(_context.get() or {})


class AddLogContext(logging.Filter):
    """Puts the bound context on the record: as fields for the JSON formatter and as a short
    `[connection=1 run=7 rma=RMA-1003]` suffix for the readable one."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        parts = []
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value in (None, ""):
                value = context.get(name, "")
            setattr(record, name, value)
            if value != "" and name != "task":
                parts.append(f"{name}={value}")
        record.context_suffix = f" [{' '.join(parts)}]" if parts else ""
        return True


class JsonFormatter(JsonFormatterBase):
    """python-json-logger's formatter; context fields that are empty are left out, and the
    readable formatter's suffix never appears in JSON."""

    def process_log_record(self, log_record):
        log_record.pop("context_suffix", None)
        for name in CONTEXT_FIELDS:
            if log_record.get(name) in ("", None):
                log_record.pop(name, None)
        return super().process_log_record(log_record)
