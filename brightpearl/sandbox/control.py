"""`SandboxControl`: a small `requests` client for the control API (`/_sandbox/…`)."""

from __future__ import annotations

import requests


class SandboxControlError(RuntimeError):
    def __init__(self, status: int, body):
        super().__init__(f"sandbox control call failed: {status} {body}")
        self.status = status
        self.body = body


class SandboxControl:
    """Drive a sandbox: create accounts, seed, act as the warehouse, inspect, inject faults.

    `SandboxControl(url)` is unbound; `for_account(code)` (or `account=`) binds it to one account,
    which the per-account methods need.
    """

    def __init__(
        self,
        url: str,
        account: str | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.account = account
        self.timeout = timeout
        self.session = session or requests.Session()

    def for_account(self, account: str) -> SandboxControl:
        return SandboxControl(self.url, account, self.timeout, self.session)

    # ------------------------------------------------------------------ plumbing
    def _call(self, method: str, path: str, body: dict | None = None):
        response = self.session.request(
            method, f"{self.url}/_sandbox{path}", json=body, timeout=self.timeout
        )
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        if response.status_code >= 400:
            raise SandboxControlError(response.status_code, answer)
        return answer

    def _account_path(self, path: str) -> str:
        if not self.account:
            raise ValueError("this SandboxControl is not bound to an account; use for_account()")
        return f"/{self.account}{path}"

    # ------------------------------------------------------------------ accounts
    def create_account(
        self,
        account: str,
        *,
        app_ref: str | None = None,
        account_token: str | None = None,
        staff_tokens: list[str] | None = None,
        installed_integration_instance_id: int | None = None,
        oauth: dict | None = None,
    ) -> SandboxControl:
        """Create an account with default reference data; return a control bound to it."""
        self._call(
            "POST",
            "/accounts",
            {
                "account": account,
                "appRef": app_ref,
                "accountToken": account_token,
                "staffTokens": staff_tokens or [],
                "installedIntegrationInstanceId": installed_integration_instance_id,
                "oauth": oauth,
            },
        )
        return self.for_account(account)

    def delete_account(self) -> None:
        self._call("DELETE", self._account_path(""))

    # ------------------------------------------------------------------ seeding
    def seed(
        self,
        *,
        contacts: list | None = None,
        products: list | None = None,
        orders: list | None = None,
        **other: list,
    ) -> dict:
        """Seed data; `other` takes warehouses, orderStatuses, channels, priceLists,
        nominalCodes, paymentMethods. Returns the created ids per kind."""
        body = {"contacts": contacts, "products": products, "orders": orders, **other}
        return self._call("POST", self._account_path("/seed"), {k: v for k, v in body.items() if v})

    def seed_demo(self) -> dict:
        return self._call("POST", self._account_path("/seed-demo"), {})

    # ------------------------------------------------------------------ acting as the warehouse
    def receive(
        self, credit_id: int, rows: list[dict] | None = None, quarantine: bool = False, **extra
    ) -> dict:
        """Receive rows (`[{"rowId", "quantity"}]`, None = everything left) of a credit."""
        body = {"quarantine": quarantine, **extra}
        if rows is not None:
            body["rows"] = rows
        return self._call("POST", self._account_path(f"/credits/{credit_id}/receive"), body)

    def quarantine_release(
        self, warehouse_id: int, product_id: int, quantity: int, to_location_id: int | None = None
    ) -> dict:
        body = {"warehouseId": warehouse_id, "productId": product_id, "quantity": quantity}
        if to_location_id:
            body["toLocationId"] = to_location_id
        return self._call("POST", self._account_path("/quarantine-release"), body)

    def set_order_status(self, order_id: int, status_id: int) -> dict:
        return self._call(
            "PUT", self._account_path(f"/orders/{order_id}/status"), {"statusId": status_id}
        )

    # ------------------------------------------------------------------ inspection
    def state(self) -> dict:
        return self._call("GET", self._account_path("/state"))

    def requests(self) -> list[dict]:
        return self._call("GET", self._account_path("/requests"))["requests"]

    def clear_requests(self) -> None:
        self._call("DELETE", self._account_path("/requests"))

    def webhook_deliveries(self) -> list[dict]:
        return self._call("GET", self._account_path("/webhook-deliveries"))["deliveries"]

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        return self._call("POST", self._account_path("/webhooks/wait"), {"timeout": timeout})[
            "idle"
        ]

    # ------------------------------------------------------------------ faults, throttle, OAuth
    def add_fault(
        self,
        path: str,
        kind: str = "error",
        *,
        method: str | None = None,
        status: int = 500,
        seconds: float = 2.0,
        times: int | None = 1,
        probability: float | None = None,
        headers: bool = True,
        seed: int | None = None,
    ) -> dict:
        """kind: error (answer `status`, write nothing), delay (wait, then handle: a write
        commits after the caller's timeout), late (handle at once, answer after `seconds`),
        drop (handle, then close the socket unanswered), throttle (503, nothing written;
        `headers=False`: without the budget headers). `probability` makes it fire on that
        share of matching requests (seeded by `seed`); `times` caps how often."""
        return self._call(
            "POST",
            self._account_path("/faults"),
            {
                "method": method,
                "path": path,
                "kind": kind,
                "status": status,
                "seconds": seconds,
                "times": times,
                "probability": probability,
                "headers": headers,
                "seed": seed,
            },
        )

    def set_duplicate_credit_answer(self, shape: str = "id") -> dict:
        """How a duplicate sales-credit POST (same externalRef + instance id) is answered:
        200 with "id" (the existing credit's), "empty" (no response) or "message" (a text)."""
        return self._call("PUT", self._account_path("/duplicates"), {"creditAnswer": shape})

    def set_webhook_chaos(
        self, copies: int = 1, max_delay: float = 0.0, seed: int | None = None
    ) -> dict:
        """Deliver every webhook `copies` times, each after a random delay < `max_delay` s
        (at least once, in no guaranteed order); `copies=1, max_delay=0` turns it off."""
        return self._call(
            "PUT",
            self._account_path("/webhook-chaos"),
            {"copies": copies, "maxDelay": max_delay, "seed": seed},
        )

    def stats(self) -> dict:
        """Cumulative counts: `requests`, `status:<code>`, `fault:<kind>` (never capped)."""
        return self._call("GET", self._account_path("/stats"))["stats"]

    def faults(self) -> list[dict]:
        return self._call("GET", self._account_path("/faults"))["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", self._account_path("/faults"))

    def set_throttle(
        self, budget: int = 200, window_seconds: float = 60.0, headers: bool = True
    ) -> dict:
        """`headers=False`: the throttle's 503s come without the budget headers."""
        return self._call(
            "PUT",
            self._account_path("/throttle"),
            {"budget": budget, "windowSeconds": window_seconds, "headers": headers},
        )

    def set_latency(self, seconds: float) -> dict:
        """Make every public call of the account wait `seconds` first (not in the contract)."""
        return self._call("PUT", self._account_path("/latency"), {"seconds": seconds})

    def expire_oauth(self) -> dict:
        return self._call("POST", self._account_path("/oauth/expire"), {})

    def oauth(self) -> dict:
        return self._call("GET", self._account_path("/oauth"))
