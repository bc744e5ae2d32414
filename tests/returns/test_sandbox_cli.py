"""Both sandboxes start from the command line and answer real HTTP."""

import subprocess
import sys

import pytest
import requests

CASES = [
    # Loop's list leaves `review` out unless asked for: 2 of the 3 demo returns
    (
        "returns.platforms.loop.sandbox",
        "/warehouse/return/list?paginate=true",
        {"X-Authorization": "cli-key"},
        "returns",
        2,
    ),
    (
        "returns.platforms.returngo.sandbox",
        "/rmas?pagesize=10",
        {"x-api-key": "cli-key", "x-shop-name": "sandbox-shop.myshopify.com"},
        "rmas",
        3,
    ),
]


@pytest.mark.parametrize(("module", "path", "headers", "key", "count"), CASES)
def test_command_line_sandbox(module, path, headers, key, count):
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", "--api-key", "cli-key", "--seed-demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        url = banner.split(" on ")[1].split()[0]
        body = requests.get(url + path, headers=headers, timeout=5).json()
        assert len(body[key]) == count
        assert requests.get(url + path, timeout=5).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=5)
