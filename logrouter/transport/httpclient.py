"""A minimal async HTTP/1.1 client connection (drains, shuttle): one request at a time, keep-alive.

Responses are parsed with httptools; the body is read and discarded (at most
``MAX_RESPONSE_BYTES``), so a receiver answering garbage or an endless body is
an error, never unbounded memory.
"""

from __future__ import annotations

import math
import select

import httptools
import trio

from logrouter.errors import HttpClientError

__all__ = ["HttpClientError", "HttpConnection", "HttpResult"]

MAX_RESPONSE_BYTES = 1 << 20

#: Seconds the rest of an answer is still read for once the deadline has passed with part of
#: it (or all) already arrived; see :meth:`HttpConnection.request`.
LATE_ANSWER_GRACE = 1.0


class HttpResult:
    __slots__ = ("headers", "keep_alive", "status")

    def __init__(self, status: int, headers: dict[str, str], keep_alive: bool) -> None:
        self.status = status
        self.headers = headers
        self.keep_alive = keep_alive


class _Collector:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.complete = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) < 100:
            self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_message_complete(self) -> None:
        self.complete = True
        # Only valid here: once the message is complete the parser resets and reports False.
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()


class HttpConnection:
    """One connection to a drain receiver."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.opened_at = trio.current_time()
        self.used_at = self.opened_at
        self.usable = True
        self.in_flight = False  # a request sent and its response not read yet
        self.sent_at = 0.0  # trio time the last request began to be sent

    def response_arrived(self) -> bool:
        """Whether the receiver's answer (or its close) is waiting in the kernel, unread: the
        receiver has replied and only this process has not got round to reading it. Polls
        the socket under any TLS layer; never blocks, never consumes."""
        stream: object = self.stream
        while isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        sock = getattr(stream, "socket", None)
        if sock is None:
            return False
        fd = sock.fileno()
        if fd < 0:
            return True  # closed under us: nothing to wait for the receiver on
        poller = select.poll()  # poll, not select: thousands of drains mean fds past 1,024
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))

    async def request(self, data: bytes, deadline: float = math.inf) -> HttpResult:
        """Send a complete request (head and body) and read the whole response, which must
        have begun to arrive by ``deadline`` (trio time).

        The deadline runs on this process's clock, which moves on while the process does not
        run (a long stall of its event loop, a paused container): an answer that came in time
        may only be looked at later. So once the deadline has passed, an answer already waiting
        in the socket is still read, for at most ``LATE_ANSWER_GRACE`` seconds more; only
        when nothing has arrived is it a timeout.

        Raises:
            trio.TooSlowError: the request could not be sent, or no answer had arrived, by
                ``deadline`` (or the rest of a late one did not come within the grace).
            HttpClientError: a malformed or oversized response.
            trio.BrokenResourceError, OSError: the connection failed.
        """
        self.usable = False
        self.in_flight = True
        self.sent_at = trio.current_time()
        try:
            return await self._exchange(data, deadline)
        finally:
            self.in_flight = False

    async def _exchange(self, data: bytes, deadline: float) -> HttpResult:
        with trio.fail_at(deadline):
            await self.stream.send_all(data)
        collector = _Collector()
        parser = collector.parser = httptools.HttpResponseParser(collector)
        received = 0
        late = False  # past the deadline, reading an answer that had arrived
        while not collector.complete:
            chunk: bytes | bytearray | None = None
            with trio.move_on_at(deadline):
                chunk = await self.stream.receive_some(65536)
            if chunk is None:  # the deadline passed (with a grace, if the answer had come)
                if late or not self.response_arrived():
                    raise trio.TooSlowError
                late, deadline = True, trio.current_time() + LATE_ANSWER_GRACE
                continue
            if not chunk:
                try:
                    parser.feed_data(b"")  # a close-delimited body ends here
                except httptools.HttpParserError:
                    pass
                if collector.complete:
                    break
                raise HttpClientError("connection closed before the response ended")
            received += len(chunk)
            if received > MAX_RESPONSE_BYTES:
                raise HttpClientError("response too large")
            try:
                parser.feed_data(chunk)
            except httptools.HttpParserUpgrade:
                raise HttpClientError("unexpected protocol upgrade") from None
            except httptools.HttpParserError as exc:
                raise HttpClientError(f"malformed response: {exc}") from None
        keep = collector.keep_alive
        self.usable = keep
        self.used_at = trio.current_time()
        return HttpResult(parser.get_status_code(), collector.headers, keep)

    async def aclose(self) -> None:
        self.usable = False
        await trio.aclose_forcefully(self.stream)
