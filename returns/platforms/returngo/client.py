"""ReturnGO HTTP client: `x-api-key` + `x-shop-name`, cursor paging, and a daily call budget.

ReturnGO's default quota is 2,000 calls/day (and 100/s) per key; a 429 costs the day's work.
The client therefore spends from a `DailyCallBudget` *before* every request and refuses
(BudgetExhausted) instead of sending once the budget is gone. Reads stop early so a reserve
stays for writes (process / comment / shipment). Pass one shared budget per API key (the key
can serve several stores); the default is in-memory, per client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from ..errors import BudgetExhausted, Refused
from ..http import JsonHttpClient, path_segment

RETURNGO_API_URL = "https://api.returngo.ai"
MAX_PAGE_SIZE = 500
DAILY_CALL_LIMIT = 2000
WRITE_RESERVE = 200  # calls kept back from polling for process / comment / shipment writes


def status_update_body(status: str) -> dict:
    """UNCONFIRMED (docs/returns-platforms.md §6.1): the body of PUT /rma/{id}/status is not in
    ReturnGO's published Swagger. We send {"status": "<RMA status>"}. Change it here only."""
    return {"status": status}


def comment_body(text: str) -> dict:
    """UNCONFIRMED (§6.3): community clients post {"htmlText": …} to /rma/{id}/comment."""
    return {"htmlText": text}


def rma_id(value: Any) -> str:
    """ReturnGO's API wants the number without the 'RMA' prefix (RMA1234 → 1234)."""
    text = str(value).strip()
    return text[3:] if text.upper().startswith("RMA") else text


def returngo_time(moment: datetime) -> str:
    """Filter values: YYYY-MM-DDTHH:mm:ss, sent in UTC (timezone UNCONFIRMED, §6.6)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class DailyCallBudget:
    """Counts calls per UTC day. Thread-safe; swap for a shared (Redis/DB) one in production."""

    def __init__(
        self,
        limit: int = DAILY_CALL_LIMIT,
        write_reserve: int = WRITE_RESERVE,
        clock: Callable[[], float] = time.time,
    ):
        self.limit = limit
        self.write_reserve = min(write_reserve, limit)
        self.clock = clock
        self._day = self._today()
        self.used = 0
        self._lock = threading.Lock()

    def _today(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).date().isoformat()

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self.used = today, 0

    @property
    def remaining(self) -> int:
        with self._lock:
            self._roll()
            return self.limit - self.used

    def spend(self, write: bool = False) -> None:
        with self._lock:
            self._roll()
            ceiling = self.limit if write else self.limit - self.write_reserve
            if self.used >= ceiling:
                kind = "write" if write else "read"
                raise BudgetExhausted(
                    f"ReturnGO daily call budget spent ({self.used}/{self.limit}, {kind})"
                )
            self.used += 1


class ReturnGOClient(JsonHttpClient):
    def __init__(
        self,
        api_key: str,
        shop_name: str,
        base_url: str = "",
        *,
        budget: DailyCallBudget | None = None,
        **options: Any,
    ):
        super().__init__(
            base_url or RETURNGO_API_URL,
            {"x-api-key": api_key, "x-shop-name": shop_name},
            **options,
        )
        self.budget = budget or DailyCallBudget()

    def before_send(self, method: str, url: str) -> None:
        self.budget.spend(write=method != "GET")

    def error_code_and_message(self, body: Any, fallback: str) -> tuple[str, str]:
        if isinstance(body, dict):
            message = body.get("message") or body.get("error") or body.get("errorMessage")
            return str(body.get("code") or ""), str(message or fallback)
        if isinstance(body, str) and body.strip():
            return "", body.strip()[:500]
        return "", fallback

    def _pages(self, path: str, key: str, params: dict) -> Iterator[dict]:
        params = {"pagesize": MAX_PAGE_SIZE, **params}
        while True:
            page = self.request("GET", path, params=params) or {}
            items = page.get(key) or []
            yield from items
            cursor = page.get("next_cursor")
            if not items or not cursor:  # no explicit "has more" flag in ReturnGO's API
                return
            params = {**params, "cursor": cursor}

    # -- reads -------------------------------------------------------------------------------
    def list_rmas(self, updated_since: datetime | None = None, **filters: Any) -> Iterator[dict]:
        """RMA summaries {rmaId, status, order_name, events}, oldest update first."""
        params: dict[str, Any] = {"sort_by": "+rma_updated_at"}
        if updated_since is not None:
            params["rma_updated_at"] = f"gte:{returngo_time(updated_since)}"
        for name, value in filters.items():
            params[name] = ",".join(value) if isinstance(value, list | tuple) else value
        return self._pages("/rmas", "rmas", params)

    def get_rma(self, rma: Any) -> dict:
        return self.request("GET", f"/rma/{path_segment(rma_id(rma))}")

    def transactions(self, rma_ids: list[str]) -> Iterator[dict]:
        return self._pages(
            "/transactions", "transactions", {"rma_ids": ",".join(rma_id(r) for r in rma_ids)}
        )

    # -- writes ------------------------------------------------------------------------------
    # ReturnGO documents refusals as 4xx (400 "Invalid status transition", 404 not found), which
    # the shared client raises. A 2xx is read too: an error-shaped body, `success: false`, or a
    # resource that did not reach the requested status is a refusal, never success.
    def set_status(self, rma: Any, status: str) -> Any:
        body = self.request(
            "PUT", f"/rma/{path_segment(rma_id(rma))}/status", json_body=status_update_body(status)
        )
        read_write_reply(body, "set RMA status", expected_status=status, secrets=self.secrets)
        return body

    def add_comment(self, rma: Any, text: str) -> Any:
        body = self.request(
            "POST", f"/rma/{path_segment(rma_id(rma))}/comment", json_body=comment_body(text)
        )
        read_write_reply(body, "add comment", secrets=self.secrets)
        return body

    def update_shipment(self, shipment_id: Any, status: str, **fields: Any) -> Any:
        body = self.request(
            "PUT", f"/shipment/{path_segment(shipment_id)}", json_body={"status": status, **fields}
        )
        read_write_reply(body, "update shipment", expected_status=status, secrets=self.secrets)
        return body


ERROR_KEYS = ("error", "errors", "errorMessage")


def read_write_reply(
    body: Any, action: str, *, expected_status: str | None = None, secrets: Any = ()
) -> None:
    """Raise `Refused` (with ReturnGO's words) when a 2xx reply to a write says it was not done."""
    if not isinstance(body, dict):
        return  # an empty or bare 2xx: ReturnGO documents no body for these writes
    for key in ERROR_KEYS:
        words = body.get(key)
        if words:
            text = words.get("message", words) if isinstance(words, dict) else words
            raise Refused(
                f"ReturnGO refused to {action}: {text}"[:1000],
                status=200,
                body=body,
                secrets=secrets,
            )
    if body.get("success") is False:
        words = body.get("message") or "success: false"
        raise Refused(
            f"ReturnGO refused to {action}: {words}"[:1000], status=200, body=body, secrets=secrets
        )
    got = body.get("status")
    if expected_status and isinstance(got, str) and got and got != expected_status:
        raise Refused(
            f"ReturnGO did not {action}: asked for {expected_status}, it is {got}"
            + (f" ({body['message']})" if body.get("message") else ""),
            status=200,
            body=body,
            secrets=secrets,
        )
    if set(body) == {"message"}:  # API Gateway's error shape, whatever the status code
        raise Refused(
            f"ReturnGO refused to {action}: {body['message']}"[:1000], status=200, secrets=secrets
        )
