"""How the connector's records read in the admin: the colour of a run's status, a credit's
rows as a table (a run's counts in words are in connector/wording.py; badge, money and time
in returns/display.py)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join

from returns.display import money

from ..models import SyncRun

RUN_TONES = {
    SyncRun.Status.SUCCEEDED: "ok",
    SyncRun.Status.PARTIAL: "warn",
    SyncRun.Status.FAILED: "bad",
    SyncRun.Status.RUNNING: "info",
    SyncRun.Status.SKIPPED: "muted",
}
ROW_COLUMNS = (
    ("item", "name"),
    ("product ID", "productId"),
    ("units", "quantity"),
    ("net", "net"),
    ("tax", "tax"),
    ("tax code", "taxCode"),
    ("nominal code", "nominalCode"),
)


def rows_table(rows: list[dict] | None, currency: str = "") -> str:
    """A credit's rows as sent to Brightpearl, as a table (net and tax with the currency)."""
    if not rows:
        return "—"

    def cell(row, key):
        value = row.get(key)
        if value in (None, ""):
            return "—"
        return money(value, currency) if key in ("net", "tax") else value

    head = format_html_join("", "<th>{}</th>", ((title,) for title, _ in ROW_COLUMNS))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((cell(row, key),) for _, key in ROW_COLUMNS)),)
            for row in rows
        ),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
