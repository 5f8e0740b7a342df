"""Test helpers: a small async HTTP client on real sockets, and syslog frame builders."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
import trio


def frame(token: str, msg: str, procid: str = "web.1", ts: str = "2026-11-26T10:00:00.000000+00:00",
          pri: int = 190, sd: str = "-") -> bytes:
    """One RFC 5424 message (no octet count) with the token in APP-NAME."""
    return f"<{pri}>1 {ts} host {token} {procid} - {sd} {msg}".encode()


def octet(*frames: bytes) -> bytes:
    return b"".join(b"%d %s" % (len(f), f) for f in frames)


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""
    chunks: list[bytes] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


class _ResponseCollector:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.reason = ""
        self.body: list[bytes] = []
        self.headers_done = False
        self.done = False

    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class HttpStream:
    """An open HTTP response whose body is read incrementally (chunked streams, SSE)."""

    def __init__(self, stream: trio.SocketStream, parser: Any, collector: _ResponseCollector) -> None:
        self.stream = stream
        self.parser = parser
        self.collector = collector
        self.status = parser.get_status_code()
        self.headers = collector.headers

    @property
    def done(self) -> bool:
        return self.collector.done

    async def read_until(self, needle: bytes, timeout: float = 5.0) -> bytes:
        """Read until the body so far contains ``needle``; return the body so far."""
        with trio.fail_after(timeout):
            while needle not in b"".join(self.collector.body) and not self.collector.done:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.parser.feed_data(data)
        return b"".join(self.collector.body)

    async def read_to_end(self, timeout: float = 5.0) -> bytes:
        with trio.fail_after(timeout):
            while not self.collector.done:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.parser.feed_data(data)
        return b"".join(self.collector.body)

    async def aclose(self) -> None:
        await self.stream.aclose()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def open_request(port: int, method: str, path: str, body: bytes | None = None,
                       headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> HttpStream:
    """Send one request on a new connection; return once the response head arrived."""
    stream = await trio.open_tcp_stream(host, port)
    hdrs = {"Host": f"{host}:{port}", "Connection": "close", **(headers or {})}
    if body is not None:
        hdrs.setdefault("Content-Length", str(len(body)))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    await stream.send_all(head.encode() + b"\r\n" + (body or b""))
    collector = _ResponseCollector()
    parser = httptools.HttpResponseParser(collector)
    with trio.fail_after(10):
        while not collector.headers_done:
            data = await stream.receive_some(65536)
            if not data:
                raise ConnectionError("connection closed before the response head")
            parser.feed_data(data)
    return HttpStream(stream, parser, collector)


async def request(port: int, method: str, path: str, body: bytes | dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None, auth: str | None = None) -> HttpResponse:
    """One complete request/response."""
    hdrs = dict(headers or {})
    if auth is not None:
        hdrs["Authorization"] = auth
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    resp = await open_request(port, method, path, body, hdrs)
    try:
        data = await resp.read_to_end()
    finally:
        await resp.aclose()
    return HttpResponse(resp.status, resp.collector.reason, resp.headers, data)


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``check()`` (plain or async) is true: the tests' one way to wait for
    observable state instead of sleeping a fixed time; fails after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await trio.sleep(0.02)
