"""How the admin shows a status, an amount and a time — one way everywhere (the connector's
admin uses these too; this module imports nothing of the connector).

Colours mean what they say: amber needs a person (flagged), red failed, green done, blue on its
way, grey finished without effect. Never a green tick for something that needs attention.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from . import lifecycle

TONES = {
    "ok": ("#e6f4ea", "#1e6b34"),
    "warn": ("#fff4d6", "#8a5a00"),
    "bad": ("#fde7e7", "#a11b1b"),
    "info": ("#e7f0fb", "#1d4f91"),
    "muted": ("#eeeeee", "#555555"),
}

RMA_TONES = {
    lifecycle.FLAGGED: "warn",
    lifecycle.PROCESSED: "ok",
    lifecycle.CLOSED: "ok",
    lifecycle.REJECTED: "muted",
    lifecycle.CANCELLED: "muted",
}


def badge(text: str, tone: str) -> str:
    """A coloured label; the text carries the meaning, the colour only repeats it."""
    background, colour = TONES.get(tone, TONES["muted"])
    return format_html(
        '<span class="status-badge status-{}" style="background:{};color:{};padding:1px 7px;'
        'border-radius:9px;white-space:nowrap;font-weight:600">{}</span>',
        tone,
        background,
        colour,
        text,
    )


def rma_status_badge(rma) -> str:
    return badge(rma.get_status_display(), RMA_TONES.get(rma.status, "info"))


def money(amount, currency: str = "") -> str:
    """Two decimals and the currency: `10.00 GBP` (never `10.0000`)."""
    if amount in (None, ""):
        return "—"
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return str(amount)
    return f"{value:,.2f} {currency}".strip()


def when(moment) -> str:
    """A time to the second, in the site's time zone."""
    if moment is None:
        return "—"
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S}"


def shortened(text: str, length: int = 90) -> str:
    """A long text cut for a list column, whole in its tooltip."""
    text = text or ""
    if len(text) <= length:
        return text or "—"
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(length))
