"""Brightpearl ID sets: ``"1-5,99,202-204"``.

Brightpearl accepts an ID set wherever a GET takes an ID, and webhooks deliver one in
``${resource-id}``. Compressing consecutive IDs into ranges keeps URLs short (long lists hit
HTTP 414), and :func:`chunk_ids` keeps each call under the per-endpoint cap (200 for orders and
goods-in notes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

MAX_IDS_PER_CALL = 200


def _parse_positive_int(text: str, whole: str) -> int:
    token = text.strip()
    if not token.isdigit() or not token.isascii():
        raise ValueError(f"not an ID in ID set {whole!r}: {text!r}")
    value = int(token)
    if value <= 0:
        raise ValueError(f"IDs are positive integers; got {value} in {whole!r}")
    return value


class IdSetTooLarge(ValueError):
    """The ID set names more IDs than the caller allows (found before expanding any range)."""


def parse_id_set(text: str | int, *, max_ids: int | None = None) -> list[int]:
    """Parse an ID set into a sorted list of distinct IDs.

    Accepts single IDs, ascending ranges and comma lists (``"1-5,99"``). Raises ``ValueError``
    for anything else (empty parts, descending ranges, ``*``, non-digits, zero), because a
    webhook body is untrusted input. With ``max_ids``, the size is counted from the ranges'
    bounds *before* any range is expanded and ``IdSetTooLarge`` is raised above it: the 12
    bytes ``"1-999999999"`` never become a billion integers.
    """
    if isinstance(text, bool):
        raise ValueError(f"not an ID set: {text!r}")
    if isinstance(text, int):
        if text <= 0:
            raise ValueError(f"IDs are positive integers; got {text}")
        return [text]
    if not isinstance(text, str):
        raise ValueError(f"not an ID set: {text!r}")
    if not text.strip():
        raise ValueError("empty ID set")
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        if "-" in part:
            lo_text, sep, hi_text = part.partition("-")
            if "-" in hi_text:
                raise ValueError(f"bad range in ID set {text!r}: {part!r}")
            lo = _parse_positive_int(lo_text, text)
            hi = _parse_positive_int(hi_text, text)
            if hi < lo:
                raise ValueError(f"descending range in ID set {text!r}: {part!r}")
            spans.append((lo, hi))
        else:
            value = _parse_positive_int(part, text)
            spans.append((value, value))
    merged = _merge(spans)
    if max_ids is not None:
        size = sum(hi - lo + 1 for lo, hi in merged)
        if size > max_ids:
            raise IdSetTooLarge(f"ID set names {size} IDs; at most {max_ids} are allowed")
    return [value for lo, hi in merged for value in range(lo, hi + 1)]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans covering the same IDs (so sizes count distinct IDs)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _normalise(ids: Iterable[int]) -> list[int]:
    out: set[int] = set()
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"IDs must be integers; got {value!r}")
        if value <= 0:
            raise ValueError(f"IDs are positive integers; got {value}")
        out.add(value)
    return sorted(out)


def format_id_set(ids: Iterable[int]) -> str:
    """Format IDs as a compact ID set: sorted, de-duplicated, runs of 3+ as ranges.

    Two consecutive IDs stay a list (``"4,5"``) — as short as ``"4-5"`` and easier to read.
    Raises ``ValueError`` for an empty input or a non-positive ID.
    """
    values = _normalise(ids)
    if not values:
        raise ValueError("an ID set cannot be empty")
    parts: list[str] = []
    start = prev = values[0]
    for value in values[1:] + [None]:  # type: ignore[list-item]
        if value is not None and value == prev + 1:
            prev = value
            continue
        if prev - start >= 2:
            parts.append(f"{start}-{prev}")
        elif prev == start:
            parts.append(str(start))
        else:
            parts.append(f"{start},{prev}")
        if value is not None:
            start = prev = value
    return ",".join(parts)


def chunk_ids(ids: Iterable[int], size: int = MAX_IDS_PER_CALL) -> Iterator[list[int]]:
    """Split IDs (sorted, de-duplicated) into lists of at most ``size`` for one call each."""
    if size <= 0:
        raise ValueError("chunk size must be positive")
    values = _normalise(ids)
    for i in range(0, len(values), size):
        yield values[i : i + size]
