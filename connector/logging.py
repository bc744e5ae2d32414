"""Keep secrets out of logs: webhook URLs carry a per-connection secret in their path."""

import logging
import re

WEBHOOK_SECRET_IN_PATH = re.compile(r"(/webhooks/[a-z]+/\d+/)[^/\s?\"']+")


def redact(text: str) -> str:
    return WEBHOOK_SECRET_IN_PATH.sub(r"\1•••", text)


class RedactWebhookSecrets(logging.Filter):
    """Rewrites a record's message (access logs of the web server included) before output."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
