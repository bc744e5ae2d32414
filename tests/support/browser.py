"""Browser tests drive Debian's Chromium (`/usr/bin/chromium`, never a downloaded browser) with
Playwright for Python. A page under test is watched: any console error, uncaught page error or
4xx/5xx response it fetches fails the test, and a screenshot of every step a test names is kept
in `var/ci-artifacts/screenshots/` (CI keeps that folder as its artefacts)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "ci-artifacts" / "screenshots"


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None where it is not installed."""
    return CHROMIUM if Path(CHROMIUM).exists() or shutil.which(CHROMIUM) else None


@dataclass
class PageWatch:
    """What a page did wrong while a test drove it."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("response", self._response)

    def _console(self, message) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status} for {response.url}")


def screenshot(page, test_name: str, step: str) -> Path:
    """Save a full-page screenshot named after the test and the step."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test_name}--{step}")
    path = ARTIFACTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, base_url: str, username: str, password: str) -> None:
    """Log in through the admin's own login form."""
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")
