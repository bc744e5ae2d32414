"""How the connector's records read in the admin: a run's counts in words, the colour of a
run's status, a credit's rows as a table (the shared helpers — badge, money, time — are in
returns/display.py)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join

from returns.display import money

from ..models import SyncEvent, SyncRun

RUN_TONES = {
    SyncRun.Status.SUCCEEDED: "ok",
    SyncRun.Status.PARTIAL: "warn",
    SyncRun.Status.FAILED: "bad",
    SyncRun.Status.RUNNING: "info",
    SyncRun.Status.SKIPPED: "muted",
}
OUTCOME_WORDS = {
    SyncEvent.Outcome.SUCCEEDED: "done",
    SyncEvent.Outcome.FAILED: "failed",
    SyncEvent.Outcome.FLAGGED: "flagged",
    SyncEvent.Outcome.SKIPPED: "skipped",
}
KIND_WORDS = dict(SyncEvent.Kind.choices)


def count_in_words(key: str, number: int) -> str:
    """`credit_failed` → "1 sales credit failed"; `pulled` → "3 returns read"."""
    if key == "pulled":
        return f"{number} return{'s' if number != 1 else ''} read from the platform"
    kind, _, outcome = key.rpartition("_")
    if kind in KIND_WORDS and outcome in OUTCOME_WORDS:
        return f"{number} {KIND_WORDS[kind].lower()}: {OUTCOME_WORDS[outcome]}"
    return f"{number} {key.replace('_', ' ')}"


def counts_in_words(counts: dict | None) -> str:
    """Failures and flags first; "nothing to do" for an empty run."""
    items = [(k, v) for k, v in (counts or {}).items() if v]
    if not items or all(k == "pulled" for k, _ in items):
        pulled = (counts or {}).get("pulled")
        return f"nothing to do ({count_in_words('pulled', pulled)})" if pulled else "nothing to do"

    def rank(item):
        key = item[0]
        return (0 if key.endswith("_failed") else 1 if key.endswith("_flagged") else 2, key)

    return "; ".join(count_in_words(k, v) for k, v in sorted(items, key=rank))


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
