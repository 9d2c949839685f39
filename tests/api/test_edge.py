"""Slow and odd clients against a real uvicorn on loopback, with the limits `prism serve` uses."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from prism.cli.server import uvicorn_limits
from prism.config import Settings
from tests.conftest import TOKEN
from tests.live_server import live_server

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_a_body_shorter_than_its_content_length_gets_408(settings: Settings) -> None:
    fast = settings.model_copy(update={"body_read_timeout_seconds": 1.0})
    with live_server(fast, **uvicorn_limits(fast)) as url, _connect(url) as sock:
        sock.sendall(
            (
                "POST /internal/v1/bridge/submissions HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {TOKEN}\r\nX-Base-Verified-Hotkey: {HOTKEY}\r\n"
                "X-Submission-Filename: project.zip\r\nContent-Length: 1000\r\n\r\n"
            ).encode()
            + b"PK" * 10
        )
        started = time.monotonic()
        status, headers, body = _read_response(sock)
        assert status == 408 and headers["content-type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "body_timeout"
        assert time.monotonic() - started < 20


def test_connections_beyond_the_limit_are_refused_not_held(settings: Settings) -> None:
    fast = settings.model_copy(update={"body_read_timeout_seconds": 5.0, "http_limit_concurrency": 3})
    with live_server(fast, **uvicorn_limits(fast)) as url:
        held = []
        for _ in range(2):  # slow uploads that hold their slots (the limit counts connections)
            sock = _connect(url)
            sock.sendall(b"POST /internal/v1/bridge/submissions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            held.append(sock)
        time.sleep(0.5)
        try:
            response = httpx.get(f"{url}/health", timeout=10)
            assert response.status_code == 503  # uvicorn's limit answers at once
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (
            [
                ("X-Base-Verified-Hotkey", HOTKEY),
                ("X-Base-Verified-Hotkey", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"),
            ],
            "duplicate_header",
        ),
        (
            [("X-Base-Verified-Hotkey", HOTKEY), ("X-Base-Challenge-Slug", "prism"), ("X-Base-Challenge-Slug", "evil")],
            "duplicate_header",
        ),
        (
            [
                ("X-Base-Verified-Hotkey", HOTKEY),
                ("X-Platform-Verified-Hotkey", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"),
            ],
            "conflicting_headers",
        ),
    ],
)
def test_ambiguous_identity_is_refused(settings: Settings, headers: list[tuple[str, str]], code: str) -> None:
    with live_server(settings) as url:
        response = httpx.post(
            f"{url}/internal/v1/bridge/submissions",
            headers=[("Authorization", f"Bearer {TOKEN}"), ("X-Submission-Filename", "project.zip"), *headers],
            content=b"PK\x05\x06" + b"\0" * 18,
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
