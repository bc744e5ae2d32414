"""What the Loop and ReturnGO sandboxes share when they build and change their records:
timestamps as the platforms print them, a seeded line expanded into one item per unit, and
the `python -m …sandbox` command line. The server side they share (control API, rate limits,
webhook sending, `configure`) lives on `sandbox_http.SandboxServer`.

Test and demo code, framework-free (no Django).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from .sandbox_http import utcnow


def iso(moment: datetime) -> str:
    """A timestamp as both platforms print it: UTC, to the second, with an offset."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(value: str) -> datetime:
    """An ISO 8601 timestamp ("Z" accepted, naive read as UTC); ValueError when it is not one."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def touched(previous: datetime | None) -> str:
    """The new "last updated" of a record changed now: never earlier than, nor equal to, the
    previous one (two changes within one second still move it), so cursors see every change."""
    now = utcnow().replace(microsecond=0)
    if previous and now <= previous:
        now = previous + timedelta(seconds=1)
    return iso(now)


def units(lines: list[dict] | None) -> Iterator[tuple[int, dict]]:
    """(position, line) once per unit of each seeded line: both platforms send one item per
    unit. No lines seeds one unit of "SKU-1"."""
    for position, spec in enumerate(lines or [{"sku": "SKU-1"}], start=1):
        for _ in range(int(spec.get("quantity", 1))):
            yield position, spec


def parse_seed_times(body: dict, parse: Callable[[str], datetime]) -> dict:
    """A control-API seed body with its `created_at` / `updated_at` strings read as times."""
    for key in ("created_at", "updated_at"):
        if body.get(key):
            body[key] = parse(body[key])
    return body


def command_line(
    description: str,
    *,
    port: int,
    api_key: str,
    rate_limit: str,
    seed_help: str,
    webhook_help: str | None = None,
) -> argparse.ArgumentParser:
    """The options every returns-platform sandbox command takes; a platform adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--api-key", default=api_key)
    parser.add_argument("--rate-limit", default=rate_limit, help="calls/seconds[,…]")
    parser.add_argument("--webhook-url", default="", help=webhook_help)
    parser.add_argument("--seed-demo", action="store_true", help=seed_help)
    return parser
