"""Shared pieces of the sandbox: the API error, the parsed request, time and money helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import parse_qs


class ApiError(Exception):
    """An answer in Brightpearl's errors envelope: `{"errors":[{"code","message"}]}`."""

    def __init__(self, status: int, code: str, message: str, extra: list | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.errors = [{"code": code, "message": message}] + list(extra or [])


def not_found(message: str = "Resource not found") -> ApiError:
    return ApiError(404, "CMNC-404", message)


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


@dataclass
class Request:
    """One parsed HTTP request as the handlers see it."""

    method: str
    path: str  # path after /public-api/{account} (or after /_sandbox/{account})
    query: dict[str, list[str]]
    body_bytes: bytes
    headers: dict[str, str]
    ruid: str = ""
    extra: dict = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self, required: bool = True):
        if not self.body_bytes.strip():
            if required:
                raise ApiError(400, "CMNC-010", "No JSON body was supplied")
            return None
        try:
            return json.loads(self.body_bytes.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "CMNC-011", f"The request body is not valid JSON: {exc}") from exc

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body_bytes.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[-1] for key, values in parsed.items()}


def parse_query(query_string: str) -> dict[str, list[str]]:
    return parse_qs(query_string or "", keep_blank_values=True)


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    """ISO 8601 with milliseconds and an offset, like Brightpearl's responses."""
    moment = moment or now()
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> datetime:
    text = text.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def decimal_or_none(value) -> Decimal | None:
    """A number given as JSON number or numeric string; None when it is not numeric."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def money(value: Decimal | int | float | str, places: int = 2) -> str:
    quantum = Decimal(1).scaleb(-places)
    return str(Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP))
