"""Platform errors never carry the API key, whatever the platform echoes back."""

from __future__ import annotations

import json

import pytest

from returns.platforms.errors import PlatformError
from returns.platforms.loop.client import LoopClient
from returns.platforms.returngo.client import ReturnGOClient
from tests.echo_server import EchoServer

KEY = "SEKRET-PLATFORM-KEY-666-abcdef"


def clients(url: str):
    yield LoopClient(KEY, url, max_retries=0, sleep=lambda s: None)
    yield ReturnGOClient(KEY, "shop.myshopify.com", url, max_retries=0, sleep=lambda s: None)


@pytest.mark.parametrize("status", [400, 401, 404, 422, 429, 500])
@pytest.mark.parametrize("style", ["platform", "text"])
def test_an_echoed_api_key_never_reaches_the_error(status, style):
    server = EchoServer(status, style).start()
    try:
        for client in clients(server.url):
            for call in (
                lambda c=client: c.request("GET", "/returns"),
                lambda c=client: c.request("POST", "/returns/1/process", json_body={"a": 1}),
            ):
                with pytest.raises(PlatformError) as caught:
                    call()
                exc = caught.value
                text = "\n".join(
                    [str(exc), repr(exc), exc.message, json.dumps(exc.body), str(exc.args)]
                )
                assert KEY not in text, f"{type(client).__name__} {type(exc).__name__}"
    finally:
        server.stop()
    assert any(KEY in json.dumps(r["headers"]) for r in server.requests)


def test_return_ids_are_encoded_as_one_path_segment():
    server = EchoServer(404, "platform").start()
    try:
        loop = LoopClient(KEY, server.url, max_retries=0, sleep=lambda s: None)
        returngo = ReturnGOClient(KEY, "s", server.url, max_retries=0, sleep=lambda s: None)
        with pytest.raises(PlatformError):
            loop.process("../../admin?x=1#")
        with pytest.raises(PlatformError):
            returngo.set_status("RMA1/../../x", "Approved")
        with pytest.raises(ValueError):
            loop.flag("..")
    finally:
        server.stop()
    paths = [r["path"] for r in server.requests]
    assert paths[0].endswith("/warehouse/return/..%2F..%2Fadmin%3Fx%3D1%23/process"), paths
    assert paths[1].endswith("/rma/1%2F..%2F..%2Fx/status"), paths
    assert len(paths) == 2  # ".." was refused before sending
