"""One sandbox HTTP core (issue #13): the Brightpearl, Loop and ReturnGO sandboxes all serve
through `sandboxes.http`, and production code never imports a sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import requests

from brightpearl.sandbox import SandboxServer
from returns.platforms.loop.sandbox import LoopSandbox
from returns.platforms.returngo.sandbox import ReturnGOSandbox
from sandboxes.http import HttpServer

ROOT = Path(__file__).resolve().parent.parent
SERVER_MODULES = {"wsgiref", "wsgiref.simple_server", "socketserver", "http.server"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _is_sandbox(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return "sandbox" in parts or path.stem.startswith("sandbox") or parts[0] == "sandboxes"


def test_only_the_core_runs_an_http_server():
    owners = sorted(
        str(path.relative_to(ROOT))
        for package in ("brightpearl", "returns", "sandboxes")
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) & SERVER_MODULES
    )
    assert owners == ["sandboxes/http.py"]


def test_production_code_never_imports_a_sandbox():
    offenders = []
    for package in ("config", "brightpearl", "returns", "connector"):
        for path in (ROOT / package).rglob("*.py"):
            if _is_sandbox(path) or "management/commands/demo.py" in str(path):
                continue
            for name in _imports(path):
                if name.startswith("sandboxes") or ".sandbox" in name:
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders


def test_every_sandbox_answers_over_the_one_core():
    servers = [SandboxServer(), LoopSandbox(port=0).start(), ReturnGOSandbox(port=0).start()]
    servers[0].start()
    try:
        assert isinstance(servers[0], HttpServer)
        assert all(isinstance(s._http, HttpServer) for s in servers[1:])
        for server in servers:
            answer = requests.get(server.url + "/no-such-path", timeout=5)
            assert answer.status_code in (401, 404)  # refused, as JSON, by the sandbox itself
            assert answer.headers["Content-Type"].startswith("application/json")
    finally:
        for server in servers:
            server.stop()
