"""Production settings: `check --deploy` passes with the documented variables, a deployment with
DEBUG off refuses demo or placeholder keys (an error, so `migrate`, `runserver` and the WSGI
entry point stop), passwords are validated and admin logins are rate-limited."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "returns.acme-shop.co.uk",
    "PUBLIC_BASE_URL": "https://returns.acme-shop.co.uk",
    "HTTPS": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    # Production shares budgets, locks and tasks through Redis (checked: connector.E103/E104).
    "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
}


def run(args: list[str], tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    base["CONNECTOR_VAR_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def env_example() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    return dict(pairs)


def test_check_deploy_passes_with_no_warning_in_production(tmp_path):
    result = run(["manage.py", "check", "--deploy"], tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_a_deployment_refuses_the_demo_keys(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY")}
    result = run(["manage.py", "check"], tmp_path, **env)
    assert result.returncode != 0
    assert "connector.E001" in result.stderr and "connector.E002" in result.stderr


def test_the_placeholders_of_env_example_are_refused(tmp_path):
    example = env_example()
    result = run(
        ["manage.py", "check"],
        tmp_path,
        **{**PRODUCTION, **{k: example[k] for k in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY")}},
    )
    assert result.returncode != 0
    assert "connector.E001" in result.stderr and "connector.E002" in result.stderr


def test_the_wsgi_entry_point_refuses_to_start_with_the_demo_key(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = run(["-c", "import config.wsgi"], tmp_path, **env)
    assert result.returncode != 0
    assert "connector.E001" in result.stderr


@pytest.mark.parametrize(
    ("env", "ids"),
    [
        ({"REDIS_URL": ""}, {"connector.E103", "connector.E104"}),
        ({"REDIS_URL": "", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, {"connector.E104"}),
    ],
)
def test_a_deployment_refuses_per_process_budgets_and_a_local_broker(tmp_path, env, ids):
    result = run(["manage.py", "check"], tmp_path, **{**PRODUCTION, **env})
    assert result.returncode != 0
    found = set(re.findall(r"connector\.E10[34]", result.stderr))
    assert found == ids, result.stderr


def test_a_deployment_refuses_a_visibility_timeout_shorter_than_a_task(tmp_path):
    # Redis would hand a task still running (acks_late) to a second worker.
    short = run(["manage.py", "check"], tmp_path, **PRODUCTION, CELERY_VISIBILITY_TIMEOUT="300")
    assert short.returncode != 0 and "connector.E105" in short.stderr, short.stderr
    # Shorter tasks allow a shorter timeout: 5 min tasks, 8 min timeout.
    fits = run(
        ["manage.py", "check"],
        tmp_path,
        **PRODUCTION,
        CELERY_TASK_SOFT_TIME_LIMIT="240",
        CELERY_TASK_TIME_LIMIT="300",
        CELERY_VISIBILITY_TIMEOUT="480",
    )
    assert fits.returncode == 0, fits.stderr


def test_demo_keys_are_fine_on_a_laptop_with_debug(tmp_path):
    result = run(["manage.py", "check"], tmp_path, DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_production_starts_and_reads_the_https_settings_from_the_environment(tmp_path):
    code = (
        "import config.wsgi; from django.conf import settings as s; "
        "print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
    )
    result = run(["-c", code], tmp_path, DJANGO_SETTINGS_MODULE="config.settings", **PRODUCTION)
    assert result.stdout.split("\n")[-2] == (
        "('HTTP_X_FORWARDED_PROTO', 'https') True True True 31536000"
    ), result.stdout + result.stderr


def test_weak_passwords_are_refused():
    for weak in ("short1", "password1234", "123456789012"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("correct horse battery staple")


@pytest.mark.django_db
def test_admin_logins_are_locked_out_after_repeated_failures(settings):
    User = get_user_model()
    User.objects.create_user("ops", password="a long good passphrase", is_staff=True)
    User.objects.create_user("other", password="another good passphrase", is_staff=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/admin/login/", {"username": "ops", "password": "guess"})
        assert response.status_code == 200  # the login form again
    response = client.post("/admin/login/", {"username": "ops", "password": "guess"})
    assert response.status_code == 429  # locked out at the limit
    right = {"username": "ops", "password": "a long good passphrase"}
    assert client.post("/admin/login/", right).status_code == 429
    assert "_auth_user_id" not in client.session
    other = Client().post(
        "/admin/login/", {"username": "other", "password": "another good passphrase"}
    )
    assert other.status_code == 302  # someone else is not locked out


@pytest.mark.parametrize(
    "env",
    [
        {"BRIGHTPEARL_REQUESTS_PER_MINUTE": "0"},
        {"BRIGHTPEARL_REQUESTS_PER_MINUTE": "10", "BRIGHTPEARL_RESERVED_FOR_INBOUND": "10"},
    ],
)
def test_a_request_budget_that_leaves_syncs_nothing_is_refused(tmp_path, env):
    result = run(["manage.py", "check"], tmp_path, **{**PRODUCTION, **env})
    assert result.returncode != 0 and "connector.E011" in result.stderr, result.stderr
