"""The overview's small charts, drawn on the server as inline SVG (no script, no CDN): returns
per day by outcome (stacked bars) and Brightpearl requests per hour against the budget."""

from __future__ import annotations

from django.conf import settings
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .services.overview import OUTCOMES, ConnectionOverview

COLOURS = {
    "processed": "#2e7d32",
    "flagged": "#e0a100",
    "in progress": "#90a4ae",
    "ended": "#6d4c41",
}
WIDTH, HEIGHT, GAP = 14, 60, 3


def _svg(width: int, label: str, body: list[SafeString]) -> SafeString:
    return format_html(
        '<svg class="console-svg" role="img" aria-label="{}" width="{}" height="{}" '
        'viewBox="0 0 {} {}">{}<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#bbb"/></svg>',
        label,
        width,
        HEIGHT + 16,
        width,
        HEIGHT + 16,
        format_html_join("", "{}", ((part,) for part in body)),
        HEIGHT,
        width,
        HEIGHT,
    )


def returns_chart(view: ConnectionOverview) -> SafeString:
    """Stacked bars, one per day; hover a segment for the number."""
    days = view.returns_per_day
    top = max([sum(counts.values()) for _, counts in days] + [1])
    body: list[str] = []
    for index, (day, counts) in enumerate(days):
        x, y = index * (WIDTH + GAP), HEIGHT
        for outcome in OUTCOMES:
            n = counts.get(outcome, 0)
            if not n:
                continue
            height = max(1, round(HEIGHT * n / top))
            y -= height
            body.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}: {} {}</title></rect>",
                    x,
                    y,
                    WIDTH,
                    height,
                    COLOURS[outcome],
                    day,
                    n,
                    outcome,
                )
            )
        if index % 3 == 0:
            body.append(
                format_html(
                    '<text x="{}" y="{}" font-size="9" fill="#666">{}</text>', x, HEIGHT + 12, day
                )
            )
    total = sum(sum(c.values()) for _, c in days)
    return _svg(len(days) * (WIDTH + GAP), f"{total} returns in {len(days)} days", body)


def budget_chart(view: ConnectionOverview) -> SafeString:
    """Requests per hour as a share of the hourly budget (per-minute budget × 60)."""
    budget = max(1, settings.BRIGHTPEARL_REQUESTS_PER_MINUTE * 60)
    hours = view.requests_per_hour
    body = [
        format_html(
            '<line x1="0" y1="0" x2="{}" y2="0" stroke="#c62828" stroke-dasharray="3,2">'
            "<title>Budget: {} requests an hour</title></line>",
            len(hours) * 8,
            budget,
        )
    ]
    for index, (hour, used) in enumerate(hours):
        share = min(1.0, used / budget)
        height = round(HEIGHT * share) if used else 0
        colour = "#c62828" if share > 0.8 else "#0b4f9c"
        body.append(
            format_html(
                '<rect x="{}" y="{}" width="6" height="{}" fill="{}">'
                "<title>{}: {} requests ({} of the budget)</title></rect>",
                index * 8,
                HEIGHT - max(height, 1),
                max(height, 1),
                colour if used else "#e0e0e0",
                hour,
                used,
                f"{share:.0%}",
            )
        )
    used_total = sum(used for _, used in hours)
    label = f"{used_total} Brightpearl requests in 24 hours"
    return _svg(len(hours) * 8, label, body)


def legend() -> SafeString:
    return format_html_join(
        "",
        '<span><i class="console-swatch" style="background:{}"></i>{}</span>',
        ((colour, outcome) for outcome, colour in COLOURS.items()),
    )
