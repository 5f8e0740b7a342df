"""Real drain receivers on loopback: a syslog TCP/TLS sink and a scriptable HTTP receiver."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import httptools
import trio

from logrouter.protocol.framing import FrameSplitter


class SyslogSink:
    """Accepts syslog connections (optionally TLS) and records every octet-counted frame:
    all of them in the order they were read (``frames``: two connections open at once
    interleave there), and each connection's in its own list (``by_connection``)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.frames: list[bytes] = []
        self.by_connection: list[list[bytes]] = []
        self.connections = 0
        self.port = 0
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
                  port: int = 0) -> None:
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        if self.ssl_context is not None:
            listeners = [trio.SSLListener(lst, self.ssl_context) for lst in listeners]  # type: ignore[misc]
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        mine: list[bytes] = []
        self.by_connection.append(mine)
        splitter = FrameSplitter(max_frame_bytes=1 << 20, allow_newline=False)
        try:
            while data := await stream.receive_some(65536):
                frames = splitter.feed(data)
                self.frames += frames
                mine += frames
                self._changed.set()
                self._changed = trio.Event()
        except (trio.BrokenResourceError, ssl.SSLError):
            pass

    async def wait_frames(self, n: int, timeout: float = 10.0) -> list[bytes]:
        with trio.fail_after(timeout):
            while len(self.frames) < n:
                await self._changed.wait()
        return self.frames


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpSink:
    """An HTTP receiver whose answers follow a script: a status per request
    (the last repeats), or ``"hang"`` (never answer) / ``"garbage"`` (not HTTP); each
    answer after ``delay`` seconds."""

    script: list[int | str] = field(default_factory=lambda: [200])
    delay: float = 0.0  # seconds each answer takes: a receiver slower than its input
    retry_after: bytes = b"0"  # the Retry-After of a 429
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    connections: int = 0

    def __post_init__(self) -> None:
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        done: list[Received] = []

        class P:
            def __init__(self) -> None:
                self.url = b""
                self.headers: dict[str, str] = {}
                self.body = b""

            def on_url(self, url: bytes) -> None:
                self.url += url

            def on_header(self, k: bytes, v: bytes) -> None:
                self.headers[k.decode()] = v.decode()

            def on_body(self, b: bytes) -> None:
                self.body += b

            def on_message_complete(self) -> None:
                done.append(Received("POST", self.url.decode(), dict(self.headers), self.body))
                self.url, self.headers, self.body = b"", {}, b""

        parser = httptools.HttpRequestParser(P())
        try:
            while data := await stream.receive_some(65536):
                parser.feed_data(data)
                while done:
                    req = done.pop(0)
                    self.requests.append(req)
                    self._changed.set()
                    self._changed = trio.Event()
                    step = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
                    if step == "hang":
                        await trio.sleep_forever()
                    if step == "garbage":
                        await stream.send_all(b"\x00\x01 this is not http\r\n\r\n")
                        return
                    assert isinstance(step, int)
                    if self.delay:
                        await trio.sleep(self.delay)
                    extra = b"Retry-After: %s\r\n" % self.retry_after if step == 429 else b""
                    body = b"" if step == 204 else b"Content-Length: 2\r\n"
                    await stream.send_all(b"HTTP/1.1 %d X\r\n%s%s\r\n%s" % (
                        step, body, extra, b"ok" if body else b""))
        except (trio.BrokenResourceError, httptools.HttpParserError):
            pass

    async def wait_requests(self, n: int, timeout: float = 10.0) -> list[Received]:
        with trio.fail_after(timeout):
            while len(self.requests) < n:
                await self._changed.wait()
        return self.requests
