"""Tell staff about new problems: one digest per connection at most every N minutes, by e-mail
(Django's mail settings) and/or a webhook (a Slack incoming webhook: JSON ``{"text": …}``).

Run by the housekeeping task `connector.tasks.send_alert_digests` (beat, every minute). Each
connection's settings row is locked while its digest is sent (`skip_locked`), so two
housekeeping workers never send one digest twice. A problem is in one digest only; a digest
that reached no channel is tried again on the next tick and the error is kept on the settings.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ..models import AlertSettings, Problem
from ..outbound import alert_webhook_problem
from .problems import advice, step_label

logger = logging.getLogger("connector.alerts")
MAX_PER_DIGEST = 50
WEBHOOK_TIMEOUT_SECONDS = 10


def recipients(text: str) -> list[str]:
    return [address.strip() for address in (text or "").split(",") if address.strip()]


def settings_problems(alert: AlertSettings) -> dict[str, str]:
    """Field → what is wrong (empty when the settings can be saved)."""
    errors = {}
    for address in recipients(alert.email_to):
        try:
            validate_email(address)
        except ValidationError:
            errors["email_to"] = f"{address} is not an e-mail address."
            break
    problem = alert_webhook_problem(alert.webhook_url)
    if problem:
        errors["webhook_url"] = problem
    return errors


def send_due_digests(now: datetime | None = None) -> int:
    """Send every digest that is due; returns how many were sent."""
    now = now or timezone.now()
    sent = 0
    for pk in AlertSettings.objects.values_list("pk", flat=True).order_by("pk"):
        sent += _send_one(pk, now)
    return sent


def _send_one(pk: int, now: datetime) -> int:
    with transaction.atomic():
        alert = (
            AlertSettings.objects.select_for_update(skip_locked=True)
            .select_related("connection")
            .filter(pk=pk)
            .first()
        )
        if alert is None or not (alert.email_to or alert.webhook_url):
            return 0
        if alert.last_sent_at and now - alert.last_sent_at < timedelta(
            minutes=alert.digest_minutes
        ):
            return 0
        problems = list(_new_problems(alert))
        if not problems:
            return 0
        subject, text = digest(alert, problems)
        errors, delivered = _deliver(alert, subject, text)
        alert.last_error = "; ".join(errors)[:2000]
        if delivered:
            Problem.objects.filter(pk__in=[p.pk for p in problems]).update(alerted_at=now)
            alert.last_sent_at = now
        alert.save(update_fields=["last_error", "last_sent_at"])
        return int(delivered)


def _new_problems(alert: AlertSettings):
    outcomes = [
        outcome
        for outcome, wanted in (
            (Problem.Outcome.FLAGGED, alert.on_flagged),
            (Problem.Outcome.FAILED, alert.on_failed),
        )
        if wanted
    ]
    return Problem.objects.filter(
        connection_id=alert.connection_id,
        state=Problem.State.OPEN,
        alerted_at__isnull=True,
        outcome__in=outcomes,
    ).order_by("opened_at", "pk")[:MAX_PER_DIGEST]


def digest(alert: AlertSettings, problems: list[Problem]) -> tuple[str, str]:
    """The subject and plain text of one digest."""
    base = (settings.PUBLIC_BASE_URL or "").rstrip("/")
    name = alert.connection.name
    subject = f"Returns connector: {len(problems)} new problem(s) for {name}"
    lines = [subject, ""]
    for problem in problems:
        subject_line = (
            f"RMA {problem.rma_number or problem.rma_id}"
            + (f" (order {problem.order_number})" if problem.order_number else "")
            if problem.rma_id
            else "The connection"
        )
        lines.append(
            f"• {problem.get_outcome_display()} — {subject_line}, {step_label(problem.kind)}: "
            f"{problem.message}"
        )
        lines.append(f"  What to do: {advice(problem)}")
        if problem.rma_id:
            lines.append(f"  {base}{reverse('admin:returns_rma_change', args=[problem.rma_id])}")
    lines += ["", f"All open problems: {base}{reverse('admin:connector_problem_changelist')}"]
    return subject, "\n".join(lines)


def _deliver(alert: AlertSettings, subject: str, text: str) -> tuple[list[str], bool]:
    """Send on every channel configured; True when at least one took it."""
    errors: list[str] = []
    delivered = False
    if alert.email_to:
        try:
            send_mail(subject, text, None, recipients(alert.email_to))
            delivered = True
        except Exception as exc:  # any mail backend error: keep it, try the webhook
            errors.append(f"e-mail: {type(exc).__name__}: {exc}")
    if alert.webhook_url:
        problem = alert_webhook_problem(alert.webhook_url)
        if problem:
            errors.append(f"webhook: {problem}")
        else:
            try:
                response = requests.post(
                    alert.webhook_url,
                    json={"text": text},
                    timeout=WEBHOOK_TIMEOUT_SECONDS,
                    allow_redirects=False,
                )
                if response.status_code >= 300:
                    errors.append(f"webhook: answered HTTP {response.status_code}")
                else:
                    delivered = True
            except requests.RequestException as exc:
                errors.append(f"webhook: {type(exc).__name__}")
    for error in errors:
        logger.warning("connection %s: alert not delivered: %s", alert.connection_id, error)
    return errors, delivered
