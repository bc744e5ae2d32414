"""Webhook firing: expand templates under the state lock, deliver over HTTP in the background.

Quality of service as documented: 0 = at most once (retried only when the receiver answers 503),
1 = at least once (retried on 5xx and connection errors, never on 4xx). Brightpearl's retry
schedule and timeouts are UNCONFIRMED; the sandbox uses a short backoff so tests stay fast.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

from .common import iso
from .idsets import format_id_set
from .state import BRIGHTPEARL_VERSION, Account, SandboxState

SUBSCRIBABLE_EVENTS = frozenset(
    {
        "goods-in-note.created",
        "quarantine-release.created",
        "order.modified.order-status",
        "order.modified",
        "order.modified.fully-shipped",
        "sales-order.created",
        "product.created",
        "product.modified",
        "product.destroyed",
        "product.modified.on-hand-modified",
        "goods-out-note.created",
        "goods-out-note.destroyed",
        "goods-out-note.modified",
        "goods-out-note.modified.printed",
        "goods-out-note.modified.picked",
        "goods-out-note.modified.packed",
        "goods-out-note.modified.shipped",
        "goods-out-note.modified.un-printed",
        "goods-out-note.modified.un-picked",
        "goods-out-note.modified.un-packed",
        "drop-ship-note.created",
        "drop-ship-note.destroyed",
        "drop-ship-note.modified.shipped",
    }
)


def is_subscribable(name: str) -> bool:
    """A known event, or a prefix of one at a dot (the Webhook GET example subscribes to
    `product` and `goods-out-note`; prefix subscriptions are UNCONFIRMED beyond that example)."""
    return any(event == name or event.startswith(name + ".") for event in SUBSCRIBABLE_EVENTS)


def subscription_matches(subscribe_to: str, full_event: str) -> bool:
    return full_event == subscribe_to or full_event.startswith(subscribe_to + ".")


@dataclass
class Delivery:
    account_code: str
    webhook_id: int
    method: str
    url: str
    body: str | None
    content_type: str | None
    quality_of_service: int
    full_event: str


def expand(template: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        template = template.replace("${" + name + "}", value)
    return template


def event_variables(account_code: str, full_event: str, resource_id: str) -> dict[str, str]:
    resource_type, _, rest = full_event.partition(".")
    lifecycle, _, specifier = rest.partition(".")
    return {
        "account-code": account_code,
        "resource-type": resource_type,
        "resource-id": resource_id,
        "lifecycle-event": lifecycle,
        "resource-specifier": specifier,
        "full-event": full_event,
        "raised-on": iso(),
        "brightpearl-version": BRIGHTPEARL_VERSION,
    }


class WebhookDispatcher:
    def __init__(
        self,
        state: SandboxState,
        retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4),
        timeout: float = 5.0,
    ) -> None:
        self.state = state
        self.retry_delays = retry_delays
        self.timeout = timeout
        self._in_flight = 0
        self._idle = threading.Condition()

    # Called with the state lock held.
    def prepare(
        self,
        account: Account,
        events: list[tuple[str, list[int]]],
        only_webhook: int | None = None,
        overrides: dict[str, str] | None = None,
    ) -> list[Delivery]:
        deliveries = []
        for full_event, ids in events:
            for webhook in account.webhooks.values():
                if only_webhook is not None:
                    if webhook["id"] != only_webhook:
                        continue
                elif not subscription_matches(webhook["subscribeTo"], full_event):
                    continue
                groups = [format_id_set(ids)] if webhook["idSetAccepted"] else [str(i) for i in ids]
                for resource_id in groups:
                    variables = event_variables(account.code, full_event, resource_id)
                    variables.update(overrides or {})
                    body = webhook.get("bodyTemplate")
                    deliveries.append(
                        Delivery(
                            account_code=account.code,
                            webhook_id=webhook["id"],
                            method=webhook["httpMethod"],
                            url=expand(webhook["uriTemplate"], variables),
                            body=expand(body, variables) if body is not None else None,
                            content_type=webhook.get("contentType"),
                            quality_of_service=int(webhook.get("qualityOfService") or 0),
                            full_event=full_event,
                        )
                    )
        return deliveries

    def send(self, deliveries: list[Delivery]) -> None:
        """Deliver in a background thread so the API answer is never held up. With the
        account's webhook chaos on, each delivery goes `copies` times, each copy in its own
        thread after its own random delay: duplicates, out of order."""
        if not deliveries:
            return
        batches: list[tuple[float, list[Delivery]]] = []
        with self.state.lock:
            account = self.state.get(deliveries[0].account_code)
            copies = account.webhook_copies if account else 1
            max_delay = account.webhook_max_delay if account else 0.0
            if copies <= 1 and max_delay <= 0:
                batches.append((0.0, deliveries))
            else:
                for delivery in deliveries:
                    for _ in range(max(1, copies)):
                        batches.append((account.webhook_rng.uniform(0, max_delay), [delivery]))
        for delay, batch in batches:
            with self._idle:
                self._in_flight += 1
            threading.Thread(
                target=self._run, args=(batch, delay), daemon=True, name="sandbox-webhooks"
            ).start()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _run(self, deliveries: list[Delivery], delay: float = 0.0) -> None:
        try:
            if delay > 0:
                time.sleep(delay)
            for delivery in deliveries:
                self._deliver(delivery)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            status, error = None, None
            try:
                headers = {"Content-Type": delivery.content_type} if delivery.content_type else {}
                data = delivery.body.encode("utf-8") if delivery.body is not None else None
                response = requests.request(
                    delivery.method, delivery.url, data=data, headers=headers, timeout=self.timeout
                )
                status = response.status_code
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            if status is not None and status < 400:
                outcome = "delivered"
            elif delivery.quality_of_service >= 1:
                retry = status is None or status >= 500
                outcome = "retrying" if retry else "failed"
            else:
                outcome = "retrying" if status == 503 else "failed"
            if outcome == "retrying" and attempt > len(self.retry_delays):
                outcome = "failed"
            self._record(delivery, attempt, status, error, outcome, time.monotonic() - started)
            if outcome != "retrying":
                return
            time.sleep(self.retry_delays[attempt - 1])

    def _record(
        self,
        delivery: Delivery,
        attempt: int,
        status: int | None,
        error: str | None,
        outcome: str,
        duration: float,
    ) -> None:
        with self.state.lock:
            account = self.state.get(delivery.account_code)
            if account is None:
                return
            account.webhook_deliveries.append(
                {
                    "webhookId": delivery.webhook_id,
                    "event": delivery.full_event,
                    "method": delivery.method,
                    "url": delivery.url,
                    "body": delivery.body,
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                    "outcome": outcome,
                    "durationMs": int(duration * 1000),
                    "at": iso(),
                }
            )
