"""Words for what the connector did, shared by the admin and the commands: a run's counts
(`credit_failed: 1`) read as "1 sales credit: failed"."""

from __future__ import annotations

from .models import SyncEvent

OUTCOME_WORDS = {
    SyncEvent.Outcome.SUCCEEDED: "done",
    SyncEvent.Outcome.FAILED: "failed",
    SyncEvent.Outcome.FLAGGED: "flagged",
    SyncEvent.Outcome.SKIPPED: "skipped",
}
# A dry run writes nothing: its items are what would happen (a planned write is "skipped").
DRY_OUTCOME_WORDS = {
    SyncEvent.Outcome.SUCCEEDED: "would be done",
    SyncEvent.Outcome.FAILED: "failed",
    SyncEvent.Outcome.FLAGGED: "would be flagged",
    SyncEvent.Outcome.SKIPPED: "planned",
}
KIND_WORDS = dict(SyncEvent.Kind.choices)


def count_in_words(key: str, number: int, *, dry_run: bool = False) -> str:
    """`credit_failed` → "1 sales credit: failed"; `pulled` → "3 returns read…"."""
    if key == "pulled":
        return f"{number} return{'s' if number != 1 else ''} read from the platform"
    kind, _, outcome = key.rpartition("_")
    words = DRY_OUTCOME_WORDS if dry_run else OUTCOME_WORDS
    if kind in KIND_WORDS and outcome in words:
        return f"{number} {KIND_WORDS[kind].lower()}: {words[outcome]}"
    return f"{number} {key.replace('_', ' ')}"


def counts_in_words(counts: dict | None, *, dry_run: bool = False) -> str:
    """Failures and flags first; "nothing to do" for an empty run."""
    items = [(k, v) for k, v in (counts or {}).items() if v]
    if not items or all(k == "pulled" for k, _ in items):
        pulled = (counts or {}).get("pulled")
        return f"nothing to do ({count_in_words('pulled', pulled)})" if pulled else "nothing to do"

    def rank(item):
        key = item[0]
        return (0 if key.endswith("_failed") else 1 if key.endswith("_flagged") else 2, key)

    return "; ".join(count_in_words(k, v, dry_run=dry_run) for k, v in sorted(items, key=rank))


DRY_RUN_NOTES = {
    SyncEvent.Outcome.SUCCEEDED: "would be done: ",
    SyncEvent.Outcome.FLAGGED: "would be flagged: ",
    SyncEvent.Outcome.FAILED: "failed: ",
    SyncEvent.Outcome.SKIPPED: "",
}


def dry_run_line(kind: str, outcome: str, rma_number: str, message: str) -> str:
    """One item of a dry run: what would happen, never "succeeded" (nothing is written)."""
    note = DRY_RUN_NOTES.get(outcome, f"{outcome}: ")
    if kind == SyncEvent.Kind.INTAKE and outcome == SyncEvent.Outcome.SUCCEEDED:
        note = "would be taken in: "
    label = KIND_WORDS.get(kind, kind)
    return f"{label:<20} {rma_number or '-':<14} {note}{message}".rstrip()
