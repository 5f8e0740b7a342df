"""Test helpers: the tests' one HTTP client (httpx on real sockets), syslog frame builders,
:func:`eventually` and the ``needs_native`` mark."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from logrouter.protocol.speedups import native

#: Skips a test of the C speed-ups (or of what only they do) where they are not built.
needs_native = pytest.mark.skipif(native is None, reason="C speed-ups not built")


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

    def json(self) -> Any:
        return json.loads(self.body)


class HttpStream:
    """An open HTTP response whose body is read incrementally (chunked streams, SSE).

    Attributes:
        status, headers: the response head (header names lower-case).
        socket: the connection's socket (tests that reset or close it under the router).
    """

    def __init__(self, client: httpx.AsyncClient, response: httpx.Response) -> None:
        self._client = client
        self._response = response
        self._chunks = response.aiter_raw()
        self.body: list[bytes] = []
        self.done = False
        self.status = response.status_code
        self.reason = response.reason_phrase
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.socket: Any = response.extensions["network_stream"].get_extra_info("socket")

    async def _read_some(self) -> bool:
        try:
            self.body.append(await self._chunks.__anext__())
        except StopAsyncIteration:
            self.done = True  # the whole body arrived (for chunked: the terminating chunk)
            return False
        except httpx.TransportError:
            return False  # the router closed or reset the connection mid-body
        return True

    async def read_until(self, needle: bytes, timeout: float = 5.0) -> bytes:
        """Read until the body so far contains ``needle``; return the body so far."""
        with trio.fail_after(timeout):
            while needle not in b"".join(self.body) and await self._read_some():
                pass
        return b"".join(self.body)

    async def read_to_end(self, timeout: float = 5.0) -> bytes:
        with trio.fail_after(timeout):
            while await self._read_some():
                pass
        return b"".join(self.body)

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            try:
                await self._response.aclose()
            except httpx.TransportError:
                pass
            await self._client.aclose()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def open_request(port: int, method: str, path: str, body: bytes | None = None,
                       headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> HttpStream:
    """Send one request on a new connection; return once the response head arrived.

    ``path`` may also be a full URL on that host and port (session URLs)."""
    url = path if path.startswith("http") else f"http://{host}:{port}{path}"
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
    try:
        with trio.fail_after(10):
            response = await client.send(
                client.build_request(method, url, content=body, headers=[
                    (k.encode("latin-1"), v.encode("latin-1"))  # hostile tests send non-ASCII
                    for k, v in {"Connection": "close", **(headers or {})}.items()]),
                stream=True)
    except BaseException:
        await client.aclose()
        raise
    return HttpStream(client, response)


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
    return HttpResponse(resp.status, resp.reason, resp.headers, data)


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


def fill_disk(directory: Path) -> None:
    """Write a file in ``directory`` that takes every byte its filesystem has left."""
    with open(directory / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while fh.write(b"\0" * 4096):
            pass
