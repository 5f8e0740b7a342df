"""Listening servers: a fair accept loop, and HTTP/1.1 on top of it.

Theory of operation
-------------------
:class:`StreamServer` accepts TCP connections on its listeners and runs one
handler task per connection. Each task is a **firewall**: whatever its client
does (hangs up mid-stream, resets, stops reading, sends garbage) ends that
connection only; the failure is counted in
``logrouter_connection_errors_total{listener,reason}`` and unexpected errors are
logged at most once a second per reason. Nothing a client does can reach the
listener's nursery.

**Slots.** At most ``max_connections`` connections are served per listener.
When a new client arrives at a full listener, the connection that has been
idle the longest (no byte received or sent for at least ``EVICT_MIN_IDLE``
seconds) is closed to admit it (counted as ``evicted``); when every connection
is busy, the new one waits until a slot frees or one goes idle. So idle or
stalled connections can never lock senders out, and busy ones are never
displaced.

:class:`HttpServer` speaks HTTP/1.1 (keep-alive, pipelining, chunked
streaming) over :mod:`logrouter.protocol.http1` with deadlines a trickle cannot
extend: a request's head must be complete within ``header_timeout`` of its
first byte, its body within ``body_timeout`` of the head, and a kept-alive
connection waits ``idle_timeout`` for the next request. Each request head is
shown to ``inspect`` before its body is read, so unauthenticated or unroutable
requests are answered (and the connection closed) without buffering a body.
A streaming response runs beside a reader that discards what the client sends
and ends the stream when the client goes away.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio

from logrouter.logs import Throttle, get_logger
from logrouter.metrics import Metrics
from logrouter.protocol.http1 import (
    BODY,
    HEAD,
    Request,
    RequestParser,
    chunk,
    response_head,
    simple_response,
)

__all__ = ["EVICT_MIN_IDLE", "HttpServer", "Response", "SendChunk", "Slot", "StreamServer",
           "open_listeners"]

log = get_logger("logrouter.serving")

RECEIVE_SIZE = 65536
#: A full listener closes a connection to admit a new one only if it was idle this long.
EVICT_MIN_IDLE = 1.0
# accept() errors that mean "out of resources, try again shortly" (trio's list).
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
#: Seconds between two ``accept_error`` lines of a listener (it retries every 0.1 s meanwhile).
ACCEPT_ERROR_LOG_INTERVAL = 10.0
#: ``logrouter_connection_errors_total`` reasons.
CONNECTION_ERROR_REASONS = ("client_gone", "send_timeout", "header_timeout", "body_timeout",
                            "evicted", "bad_request", "error")

SendChunk = Callable[[bytes], Awaitable[None]]


@dataclass(slots=True)
class Response:
    """What a handler answers.

    Either a complete ``body``, or ``stream``: an async function given a
    ``send`` callable; each call writes one chunk. A stream ends when the
    function returns (the final chunk is written) or the client disconnects
    (the function is cancelled).
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    reason: str | None = None
    stream: Callable[[SendChunk], Awaitable[None]] | None = None
    close: bool = False


Handler = Callable[[Request], Awaitable[Response]]
#: Sees a request's head (body empty) before its body is read; a Response answers it at once.
Inspector = Callable[[Request], Response | None]


class ConnectionAborted(Exception):
    """The connection ends because of its client; ``reason`` is the metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def open_listeners(host: str, port: int, reuse_port: bool = False) -> list[trio.SocketListener]:
    """Bind TCP listeners (backlog 1024); port 0 picks a free port."""
    sock = trio.socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        await sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return [trio.SocketListener(sock)]


def _address(listener: trio.SocketListener) -> tuple[str, int]:
    host, port = listener.socket.getsockname()[:2]
    return host, port


class Slot:
    """One served connection: its cancel scope and when it last moved a byte."""

    __slots__ = ("active_at", "evicted", "scope")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.active_at = trio.current_time()
        self.evicted = False

    def touch(self) -> None:
        """A byte moved (call once per read or write, never per message)."""
        self.active_at = trio.current_time()


class StreamServer:
    """Accept loop with fair connection slots. Subclasses implement :meth:`handle`.

    Args:
        name: listener name for metrics and logs (``syslog``, ``logs``, ``api``).
        listeners: bound listeners (see :func:`open_listeners`).
        max_connections: connections served at once (see the module docstring).
    """

    def __init__(self, name: str, listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
                 metrics: Metrics, max_connections: int) -> None:
        self.name = name
        self.listeners = listeners
        self.metrics = metrics
        self.max_connections = max_connections
        self.slots: dict[Slot, None] = {}  # insertion-ordered
        self._freed = trio.Event()
        self._accept_scope = trio.CancelScope()
        self._conn_scope = trio.CancelScope()
        self._gauge = metrics.connections.labels(name)
        self._accepted = metrics.connections_total.labels(name)
        self._errors = {r: metrics.connection_errors.labels(name, r)
                        for r in CONNECTION_ERROR_REASONS}
        self._error_log = Throttle()  # unexpected connection errors
        self._accept_log = Throttle(ACCEPT_ERROR_LOG_INTERVAL)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        out = []
        for lst in self.listeners:
            inner = getattr(lst, "transport_listener", lst)
            assert isinstance(inner, trio.SocketListener)
            out.append(_address(inner))
        return out

    async def run(self, *, task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
                  ) -> None:
        """Serve until cancelled; ``task_status.started`` gets the bound addresses."""
        with self._conn_scope:
            async with trio.open_nursery() as conns:
                with self._accept_scope:
                    async with trio.open_nursery() as accepters:
                        for listener in self.listeners:
                            accepters.start_soon(self._accept_loop, listener, conns)
                        task_status.started(self.addresses)
                for listener in self.listeners:
                    await listener.aclose()

    def stop_accepting(self, grace: float) -> None:
        """Close the listeners now; cancel open connections after ``grace`` seconds."""
        self._accept_scope.cancel()
        self._conn_scope.deadline = min(self._conn_scope.deadline, trio.current_time() + grace)

    async def _make_room(self) -> None:
        """Return once a new connection may be served: a slot is free, or the idlest
        connection (idle at least ``EVICT_MIN_IDLE``) was told to close."""
        while len(self.slots) >= self.max_connections:
            idlest = min(self.slots, key=lambda s: s.active_at)
            idle_for = trio.current_time() - idlest.active_at
            if idle_for >= EVICT_MIN_IDLE and not idlest.evicted:
                idlest.evicted = True
                idlest.scope.cancel()
                self._errors["evicted"].inc()
                del self.slots[idlest]  # its task ends at its next checkpoint
                return
            with trio.move_on_after(max(0.01, EVICT_MIN_IDLE - idle_for)):
                await self._freed.wait()

    async def _accept_loop(self, listener: trio.abc.Listener[trio.abc.Stream],
                           conns: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in _ACCEPT_CAPACITY_ERRNOS:
                    if times := self._accept_log.passes("accept"):
                        log.error("accept_error", listener=self.name, errno=exc.errno,
                                  error=os.strerror(exc.errno), times=times,
                                  hint="new connections wait; with EMFILE raise the open-file "
                                       "limit (each drain and tail is one)")
                    await trio.sleep(0.1)
                    continue
                raise
            try:
                await self._make_room()
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
            slot = Slot()
            self.slots[slot] = None
            conns.start_soon(self._run_connection, stream, slot)

    async def _run_connection(self, stream: trio.abc.Stream, slot: Slot) -> None:
        self._gauge.inc()
        self._accepted.inc()
        try:
            with slot.scope:
                await self.handle(stream, slot)
        except* ConnectionAborted as group:
            first = group.exceptions[0]
            self._errors[first.reason if isinstance(first, ConnectionAborted) else "error"].inc()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            self._errors["client_gone"].inc()
        except* trio.TooSlowError:
            self._errors["send_timeout"].inc()
        except* Exception as group:
            self._errors["error"].inc()
            if times := self._error_log.passes("error"):
                log.error("connection_error", listener=self.name, reason="error",
                          suppressed=times - 1, exc_info=group)
        finally:
            self._gauge.dec()
            self.slots.pop(slot, None)
            self._freed.set()
            self._freed = trio.Event()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await trio.aclose_forcefully(stream)

    async def handle(self, stream: trio.abc.Stream, slot: Slot) -> None:
        """Serve one connection; call ``slot.touch()`` once per read or write."""
        raise NotImplementedError


class HttpServer(StreamServer):
    """HTTP/1.1 server that answers each request with ``handler(request)``.

    Args:
        handler: async function ``Request -> Response``. An exception becomes a
            logged 500 and closes the connection.
        max_body_bytes: request body limit (413 past it).
        idle_timeout: seconds a kept-alive connection waits for its next request.
        inspect: sees each request head before its body is read; a Response it
            returns is sent at once and the connection closed (see the module docstring).
        header_timeout: seconds from a request's first byte to the end of its head.
        body_timeout: seconds from the end of the head to the end of the body.
        send_timeout: seconds a write may block before the client is dropped.
    """

    def __init__(self, name: str, listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
                 metrics: Metrics, max_connections: int, handler: Handler, max_body_bytes: int,
                 idle_timeout: float, inspect: Inspector | None = None,
                 header_timeout: float = 10.0, body_timeout: float = 60.0,
                 send_timeout: float = 60.0) -> None:
        super().__init__(name, listeners, metrics, max_connections)
        self.handler = handler
        self.inspect = inspect
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self._idle_waits: set[trio.CancelScope] = set()
        self._stopping = False

    def stop_accepting(self, grace: float) -> None:
        """Also close kept-alive connections that wait for a next request."""
        super().stop_accepting(grace)
        self._stopping = True
        for scope in list(self._idle_waits):
            scope.cancel()

    async def _send(self, stream: trio.abc.Stream, slot: Slot, data: bytes) -> None:
        try:
            with trio.fail_after(self.send_timeout):
                await stream.send_all(data)
        except trio.TooSlowError:
            raise ConnectionAborted("send_timeout") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            raise ConnectionAborted("client_gone") from None
        slot.touch()

    async def handle(self, stream: trio.abc.Stream, slot: Slot) -> None:
        parser = RequestParser(max_body_bytes=self.max_body_bytes, inspect=self.inspect)
        state, begun = parser.state, parser.begun
        deadline = trio.current_time() + self.idle_timeout
        while True:
            with trio.CancelScope(deadline=deadline) as waiting:
                if parser.idle:
                    if self._stopping:
                        return
                    self._idle_waits.add(waiting)
                try:
                    data = await stream.receive_some(RECEIVE_SIZE)
                finally:
                    self._idle_waits.discard(waiting)
            if waiting.cancelled_caught:
                if parser.state == HEAD:
                    raise ConnectionAborted("header_timeout")
                if parser.state == BODY:
                    raise ConnectionAborted("body_timeout")
                return  # idle keep-alive connection, or shutting down
            if not data:
                return  # EOF
            slot.touch()
            requests = parser.feed(bytes(data))
            for request in requests:
                if not await self._respond(stream, slot, request):
                    return
            if parser.rejected is not None:
                request, verdict = parser.rejected
                assert isinstance(verdict, Response)
                verdict.close = True
                await self._respond(stream, slot, request, verdict)
                return
            if parser.error is not None:
                exc = parser.error
                await self._send(stream, slot, simple_response(
                    exc.status, exc.text.encode(), reason=exc.text, close=True))
                raise ConnectionAborted("bad_request")
            now = trio.current_time()
            if parser.state != state or parser.begun != begun or requests:
                state, begun = parser.state, parser.begun
                deadline = now + (self.idle_timeout if parser.idle else
                                  self.header_timeout if state == HEAD else self.body_timeout)

    async def _respond(self, stream: trio.abc.Stream, slot: Slot, request: Request,
                       response: Response | None = None) -> bool:
        """Answer one request; return whether the connection stays open."""
        if response is None:
            try:
                response = await self.handler(request)
            except Exception:
                log.exception("handler_error", listener=self.name, method=request.method, path=request.path)
                await self._send(stream, slot, simple_response(500, b"Internal Server Error",
                                                               close=True))
                return False
        keep = request.keep_alive and not response.close
        if response.stream is None or request.method == "HEAD":
            headers = list(response.headers)
            if not keep:
                headers.append(("Connection", "close"))
            body = response.body if request.method != "HEAD" else b""
            if response.stream is not None:
                framing: tuple[tuple[str, str], ...] = (
                    ("Content-Type", response.content_type), ("Transfer-Encoding", "chunked"))
            elif response.status == 204:
                framing = ()
            else:
                framing = (("Content-Type", response.content_type),
                           ("Content-Length", str(len(response.body))))
            head = response_head(response.status, [*framing, *headers], response.reason)
            await self._send(stream, slot, head + body)
            return keep
        await self._stream(stream, slot, response)
        return False

    async def _stream(self, stream: trio.abc.Stream, slot: Slot, response: Response) -> None:
        headers = [("Content-Type", response.content_type), ("Transfer-Encoding", "chunked"),
                   ("Cache-Control", "no-cache"), ("Connection", "close"), *response.headers]
        await self._send(stream, slot, response_head(response.status, headers, response.reason))
        producer = response.stream
        assert producer is not None

        async def send(data: bytes) -> None:
            if data:
                await self._send(stream, slot, chunk(data))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_peer, stream, nursery.cancel_scope)
            await producer(send)
            await self._send(stream, slot, chunk(b""))
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _watch_peer(stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
        """Discard what the client sends during a stream; end the stream at its EOF."""
        try:
            while await stream.receive_some(RECEIVE_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        scope.cancel()
