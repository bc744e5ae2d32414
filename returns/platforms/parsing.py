"""Lenient readers for platform payloads: bad values survive as raw text for intake to judge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any


def amount(value: Any):
    """Decimal when numeric; the raw text when not (intake records the problem); None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value)
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return str(value)
    return result if result.is_finite() else str(value)


def timestamp(value: Any) -> datetime | None:
    """ISO 8601 with or without offset/'Z', or 'YYYY-MM-DD HH:MM:SS'; naive means UTC."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def text(value: Any) -> str:
    return "" if value is None else str(value)


# Deeper than this is no payload any platform sends; json.loads itself would overflow the
# interpreter's stack somewhere above 1,000 levels (RecursionError), later code sooner.
MAX_JSON_DEPTH = 64


class UntrustedJsonError(ValueError):
    """An untrusted body we refuse to read: not UTF-8 JSON, nested too deeply, or carrying a
    NUL character (which PostgreSQL text cannot store)."""


def json_depth_exceeds(raw: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when brackets outside strings nest deeper than `limit` (one linear scan, no
    recursion, run before the parser so hostile nesting never reaches it)."""
    depth, in_string, escaped = 0, False, False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load_untrusted_json(
    raw: bytes | str, max_depth: int = MAX_JSON_DEPTH, *, allow_escaped_nul: bool = False
) -> Any:
    """Parse an untrusted JSON body, or raise `UntrustedJsonError` with the reason.
    `allow_escaped_nul`: leave `\\u0000` inside values to a validator that names the field."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UntrustedJsonError(f"Body is not UTF-8: {exc}") from None
    if "\x00" in raw:
        raise UntrustedJsonError("Body contains a NUL byte.")
    if json_depth_exceeds(raw, max_depth):
        raise UntrustedJsonError(f"JSON nested deeper than {max_depth} levels.")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UntrustedJsonError(f"Body is not JSON: {exc}") from None
    if not allow_escaped_nul and _has_nul(data):
        raise UntrustedJsonError("JSON contains a NUL character (\\u0000).")
    return data
