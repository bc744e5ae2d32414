"""docker-compose.yml, the Dockerfile, requirements.lock and .env.example say what issue #14 asks,
checked without a Docker engine: the compose file against the Compose specification's schema
(check-jsonschema's vendored copy), the rest by reading them."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("worker-inbound", "worker-sync", "worker-bulk", "worker-housekeeping")
APP_SERVICES = ("migrate", "web", *WORKERS, "beat")
LONG_RUNNING = ("postgres", "redis", "web", *WORKERS, "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def validate_compose(path: Path) -> subprocess.CompletedProcess:
    checker = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid_against_the_compose_specification(tmp_path):
    result = validate_compose(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The validator is live: a misspelt key in a copy is refused.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        (ROOT / "docker-compose.yml").read_text().replace("healthcheck:", "helthcheck:", 1)
    )
    assert validate_compose(broken).returncode != 0


def test_web_worker_and_beat_wait_for_a_one_shot_migrate(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"][-2:] == ["migrate", "--noinput"]
    assert migrate["restart"] == "no"
    for name in ("web", *WORKERS, "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_one_image_built_once_and_every_long_running_service_has_a_healthcheck(compose):
    services = compose["services"]
    assert [name for name, s in services.items() if "build" in s] == ["migrate"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_web_is_gunicorn_and_there_is_exactly_one_beat(compose):
    services = compose["services"]
    assert services["web"]["command"][:2] == ["gunicorn", "config.wsgi:application"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert services["beat"]["deploy"]["replicas"] == 1


def test_one_worker_service_per_queue_kind_and_every_queue_is_consumed(compose):
    from connector.queues import all_queues

    consumed = set()
    for name in WORKERS:
        command = compose["services"][name]["command"]
        assert command[:4] == ["celery", "-A", "config", "worker"]
        names = command[command.index("-Q") + 1].replace(
            "${CELERY_TASK_DEFAULT_QUEUE:-celery}", "celery"
        )
        consumed.update(names.split(","))
    # Every routed kind and the default queue have a consumer; no task waits for nobody.
    assert consumed == set(all_queues("celery"))


def test_secrets_come_only_from_the_environment(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        for key, value in env.items():
            if any(word in key for word in ("PASSWORD", "SECRET", "KEY", "TOKEN")):
                assert str(value).startswith("${"), f"{name}.{key} is written in the file"
        if name in APP_SERVICES:
            assert service["env_file"] == [".env"]
    assert "connector:connector@" not in text


def test_the_image_runs_as_a_non_root_user_from_the_hash_checked_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"pip install --require-hashes .*-r requirements\.lock", dockerfile)
    assert "collectstatic" in dockerfile


def test_the_lock_pins_every_dependency_within_pyproject_ranges_with_hashes():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", lock, re.M))
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} is outside {requirement.specifier}: run `make lock`"
        )
    blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", lock.split("\n\n", 1)[-1])
    for block in blocks:
        if "==" in block:
            assert "--hash=sha256:" in block, block.splitlines()[0]
    # Tools for developers stay out of the image.
    for dev in project["optional-dependencies"]["dev"]:
        assert Requirement(dev).name.lower() not in pins


def test_env_example_leaves_keys_blank_and_allows_its_own_hosts():
    values = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for key in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "POSTGRES_PASSWORD"):
        assert values[key] == "", f"{key} must be chosen by whoever deploys"
    hosts = values["ALLOWED_HOSTS"].split(",")
    assert "localhost" in hosts  # the container healthcheck and a first look on the host
    public_host = re.match(r"https?://([^/:]+)", values["PUBLIC_BASE_URL"]).group(1)
    assert public_host in hosts
