"""A connection's secrets, as staff may see them: never the value, at most "set (…last 4)".

Everything the admin renders from free text the connector stored (check reports, run messages)
goes through :func:`redact` with the connection's own secrets as a last line of defence; the
clients redact at the source (brightpearl.errors, returns.platforms.errors).
"""

from __future__ import annotations

from brightpearl.errors import redact as redact_values

from .logging import redact as redact_webhook_paths

# Show the last four characters only of secrets long enough that four say little.
MIN_LENGTH_FOR_HINT = 12


def stored_secrets(connection) -> list[str]:
    names = (*connection.SECRET_FIELDS, "webhook_secret")
    return [v for v in (getattr(connection, n, None) for n in names) if v]


def secret_state(value: str | None) -> str:
    if not value:
        return "not set"
    if len(value) >= MIN_LENGTH_FOR_HINT:
        return f"set (…{value[-4:]})"
    return "set"


def redact(text, connection) -> str:
    return redact_webhook_paths(redact_values(str(text or ""), stored_secrets(connection)))
