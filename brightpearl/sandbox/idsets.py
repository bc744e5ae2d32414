"""Private ID-set parser of the sandbox (`1-5,99,202-204`).

The client has its own parser; the sandbox keeps a separate one so it tests the client honestly.
"""

from __future__ import annotations


class IdSetError(ValueError):
    """The text is not a valid Brightpearl ID set."""


def parse_id_set(text: str) -> list[int]:
    """Return the IDs of an ID set in the order written, without duplicates."""
    text = (text or "").strip()
    if not text:
        raise IdSetError("empty ID set")
    ids: list[int] = []
    seen: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            low_text, _, high_text = part.partition("-")
            low, high = _positive(low_text), _positive(high_text)
            if high < low:
                raise IdSetError(f"descending range {part!r}")
            if high - low > 100_000:
                raise IdSetError(f"range too large {part!r}")
            values = range(low, high + 1)
        else:
            values = [_positive(part)]
        for value in values:
            if value not in seen:
                seen.add(value)
                ids.append(value)
    return ids


def _positive(text: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise IdSetError(f"not an ID: {text!r}")
    value = int(text)
    if value <= 0:
        raise IdSetError(f"IDs are positive: {text!r}")
    return value


def format_id_set(ids: list[int]) -> str:
    """Compact sorted IDs into ranges, as Brightpearl does in webhook bodies."""
    parts: list[str] = []
    ordered = sorted(set(ids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)
