"""Loop Returns HTTP client: `X-Authorization` key, 300 calls/min per key.

Loop's action endpoints (process, close, cancel, flag, note) answer a refusal with HTTP 200
more often than not. Loop's Returns OpenAPI documents these replies (docs/returns-platforms.md
§1.5): success is the string `"true"`; a refusal is `{"errors": {"message", "code"}}`
(closed / open / flagged), `{"message": …}` (cancelled, in review, cannot be modified),
`{"content": …}` (cancel of an expired or flagged return), `{"error": {"message"}}` or the string
`"false"`. `read_action_reply` reads every one of them; only the documented success is success.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import NotFound, Refused, ValidationError
from ..http import JsonHttpClient, path_segment

LOOP_API_URL = "https://api.loopreturns.com/api/v1"
# Loop refuses list windows longer than 120 days (422); we split longer ranges.
MAX_WINDOW = timedelta(days=120)
MAX_PAGE_SIZE = 750
# Loop notes must be shorter than 255 characters.
NOTE_MAX_CHARS = 254

# Loop's list leaves out `cancelled` and `review` returns unless asked for by name. Whether
# `state` takes a comma list is UNCONFIRMED, so we ask once per group: None = Loop's default
# set (open, closed, expired), then cancelled, then review. One place to change it.
LIST_STATE_QUERIES: tuple[str | None, ...] = (None, "cancelled", "review")


def loop_time(moment: datetime) -> str:
    """Loop's documented example form: 2022-01-01T00:00:00.000Z (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def split_windows(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """[since, until] in consecutive windows of at most 120 days."""
    windows = []
    start = since
    while start < until:
        end = min(start + MAX_WINDOW, until)
        windows.append((start, end))
        start = end
    return windows or [(since, until)]


class LoopClient(JsonHttpClient):
    def __init__(self, api_key: str, base_url: str = "", **options: Any):
        super().__init__(base_url or LOOP_API_URL, {"X-Authorization": api_key}, **options)

    def error_code_and_message(self, body: Any, fallback: str) -> tuple[str, str]:
        if isinstance(body, dict):
            errors = body.get("errors") or body.get("error")
            if isinstance(errors, dict):
                # Loop's 401 envelope has `code` and `http_code` swapped as published.
                code = str(errors.get("code") or errors.get("http_code") or "")
                return code, str(errors.get("message") or fallback)
        return "", fallback

    def _action(self, method: str, path: str, **kwargs) -> Any:
        """Send one action and read its 2xx reply as Loop documents it (see the module doc)."""
        body = self.request(method, path, **kwargs)
        read_action_reply(body, path, secrets=self.secrets)
        return body

    # -- reads -------------------------------------------------------------------------------
    def list_returns(
        self,
        since: datetime,
        until: datetime,
        *,
        state: str | None = None,
        page_size: int = 250,
        window_on: str = "updated_at",
    ) -> Iterator[dict]:
        """Every return updated (``window_on="created_at"``: created) in [since, until] in one
        state group, across pages."""
        params: dict[str, Any] = {
            "from": loop_time(since),
            "to": loop_time(until),
            "filter": window_on,
            "paginate": "true",
            "pageSize": min(page_size, MAX_PAGE_SIZE),
        }
        if state:
            params["state"] = state
        page = self.request("GET", "/warehouse/return/list", params=params)
        while True:
            if isinstance(page, list):  # un-paginated form: a bare array
                yield from page
                return
            yield from page.get("returns") or []
            next_url = page.get("nextPageUrl")
            if not next_url:
                return
            page = self.request("GET", next_url)

    def return_details(self, return_id: str) -> dict:
        body = self.request("GET", "/warehouse/return/details", params={"return_id": return_id})
        if isinstance(body, dict) and body.get("errors"):
            code, message = self.error_code_and_message(body, "return details")
            raise NotFound(message, status=200, code=code, body=body, secrets=self.secrets)
        return body

    def destinations(self) -> list[dict]:
        body = self.request("GET", "/destinations")
        return body.get("destinations", []) if isinstance(body, dict) else list(body or [])

    def notes(self, return_id: str) -> list[dict]:
        try:
            body = self.request("GET", f"/warehouse/return/{path_segment(return_id)}/notes")
        except ValidationError:  # Loop answers 422 when a return has no notes
            return []
        return body.get("notes", []) if isinstance(body, dict) else []

    # -- actions -----------------------------------------------------------------------------
    def process(self, return_id: str, details: dict | None = None) -> Any:
        return self._action(
            "POST", f"/warehouse/return/{path_segment(return_id)}/process", json_body=details
        )

    def flag(self, return_id: str) -> Any:
        # Loop accepts no body on flag; the reason goes in a note.
        return self._action("POST", f"/warehouse/return/{path_segment(return_id)}/flag")

    def add_note(self, return_id: str, content: str) -> Any:
        return self._action(
            "POST",
            f"/warehouse/return/{path_segment(return_id)}/note",
            json_body={"content": content},
        )

    def close(self, return_id: str) -> Any:
        return self._action("POST", f"/warehouse/return/{path_segment(return_id)}/close")

    def cancel(self, return_id: str) -> Any:
        return self._action("POST", f"/warehouse/return/{path_segment(return_id)}/cancel")


def _is_true(body: Any) -> bool:
    return body is True or (isinstance(body, str) and body.strip().strip('"').lower() == "true")


def refusal_words(body: Any) -> tuple[str, str] | None:
    """(code, message) when a 2xx body is one of Loop's documented refusals, else None."""
    if isinstance(body, dict):
        for key in ("errors", "error"):
            errors = body.get(key)
            if isinstance(errors, dict) and (errors.get("message") or errors.get("code")):
                code = str(errors.get("code") or errors.get("http_code") or "")
                return code, str(errors.get("message") or code)
            if isinstance(errors, list) and errors:
                return "", "; ".join(str(e) for e in errors)[:1000]
            if isinstance(errors, str) and errors.strip():
                return "", errors.strip()[:1000]
        for key in ("message", "content"):
            words = body.get(key)
            if isinstance(words, str) and words.strip():
                return str(body.get("code") or ""), words.strip()[:1000]
    if body is False or (isinstance(body, str) and body.strip().strip('"').lower() == "false"):
        return "", "Loop answered false."
    return None


def read_action_reply(body: Any, action: str, secrets: Any = ()) -> None:
    """Raise unless `body` is Loop's documented success. A documented refusal raises `Refused`
    with Loop's own words (NotFound for its NOT_FOUND code); any other answer raises `Refused`
    too: the action is not assumed done, and the next attempt re-reads the return's state."""
    if _is_true(body):
        return
    words = refusal_words(body)
    if words is not None:
        code, message = words
        error = NotFound if code == "NOT_FOUND" else Refused
        raise error(message, status=200, code=code, body=body, secrets=secrets)
    shown = repr(body)[:200]
    raise Refused(
        f"Loop gave no documented answer to {action}: {shown}",
        status=200,
        body=body,
        secrets=secrets,
    )
