"""Routing table and per-request context shared by the service modules."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .common import ApiError, Request
from .idsets import IdSetError, parse_id_set
from .state import Account, SandboxState

# Order GET, goods-in GET and friends accept at most 200 IDs per call [DOC]; the sandbox applies the
# cap to every ID-set GET (a global cap is UNCONFIRMED).
MAX_IDS_PER_GET = 200


@dataclass
class Reply:
    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    """What a handler gets: the account (lock held), the request, and an outbox for webhooks."""

    state: SandboxState
    account: Account
    req: Request
    events: list[tuple[str, list[int]]] = field(default_factory=list)
    simulations: list[tuple[int, str, list[int], dict]] = field(default_factory=list)

    def emit(self, full_event: str, resource_ids: list[int]) -> None:
        self.events.append((full_event, list(resource_ids)))


Handler = Callable[..., object]


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return decorator

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        path_matched = False
        for route_method, pattern, handler in self.routes:
            found = pattern.match(path)
            if found:
                path_matched = True
                if route_method == method:
                    return handler, found.groupdict()
        if path_matched:
            raise ApiError(405, "CMNC-405", f"Method {method} is not supported on {path}")
        raise ApiError(404, "CMNC-404", f"No resource at {path}")


def id_set(text: str | None, *, required: bool = True) -> list[int] | None:
    """Parse an ID set from the URL; enforce the per-call cap."""
    if text is None or text.strip() in ("", "/"):
        if required:
            raise ApiError(400, "CMNC-400", "An ID set is required")
        return None
    try:
        ids = parse_id_set(text.strip("/"))
    except IdSetError as exc:
        raise ApiError(400, "CMNC-400", f"Invalid ID set: {exc}") from exc
    if len(ids) > MAX_IDS_PER_GET:
        raise ApiError(
            400,
            "CMNC-400",
            f"Too many IDs requested ({len(ids)}); the maximum is {MAX_IDS_PER_GET}",
        )
    return ids


def positive_int(value: object, field_name: str, code: str = "CMNC-400") -> int:
    """An integer given as JSON number or numeric string."""
    if isinstance(value, bool):
        raise ApiError(400, code, f"{field_name} must be a number")
    try:
        result = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise ApiError(400, code, f"{field_name} must be a number") from exc
    if result <= 0:
        raise ApiError(400, code, f"{field_name} must be a positive number")
    return result
