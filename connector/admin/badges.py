"""Small pieces the console's pages share: coloured badges whose colour means what it says
(failed red, flagged amber, done green, waiting grey), times to the second, and the console's
stylesheet (no CDN: everything is served by the app)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html

TONES = {
    "failed": "red",
    "flagged": "amber",
    "open": "red",
    "succeeded": "green",
    "resolved": "green",
    "dismissed": "grey",
    "skipped": "grey",
    # returns.display's tones (the RMA and run lists), the same colours here
    "ok": "green",
    "warn": "amber",
    "bad": "red",
    "info": "blue",
    "muted": "grey",
}


def badge(text: str, tone: str) -> str:
    colour = TONES.get(tone, tone)
    return format_html('<span class="console-badge console-{}">{}</span>', colour, text)


def seconds(value: datetime | None) -> str:
    """A time to the second, in the site's time zone ("1 Dec 2026 14:03:07")."""
    if value is None:
        return "–"
    return timezone.localtime(value).strftime("%-d %b %Y %H:%M:%S")


class ConsoleMedia:
    """Adds the console stylesheet to a ModelAdmin's pages."""

    class Media:
        css = {"all": ("connector/console.css",)}
