"""Lenient readers for platform payloads: bad values survive as raw text for intake to judge."""

from __future__ import annotations

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
