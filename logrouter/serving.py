"""Listening servers: a bounded accept loop, and HTTP/1.1 on top of it.

:class:`StreamServer` accepts TCP connections on its listeners and runs one
handler task per connection, at most ``max_connections`` at a time (further
clients wait in the kernel's backlog). :meth:`StreamServer.run` reports the
bound addresses through ``task_status``; :meth:`StreamServer.stop_accepting`
closes the doors while open connections finish.

:class:`HttpServer` speaks HTTP/1.1 (keep-alive, pipelining, chunked
streaming) over :mod:`logrouter.protocol.http1` and hands each request to an
async handler that returns a :class:`Response`. A streaming response runs
beside a reader that discards what the client sends and ends the stream when
the client goes away, so dead tail clients are noticed without writing.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from logrouter.errors import PeerError
from logrouter.metrics import Metrics
from logrouter.protocol.http1 import Request, RequestParser, chunk, response_head, simple_response

__all__ = ["HttpServer", "Response", "SendChunk", "StreamServer", "open_listeners"]

log = logging.getLogger("logrouter.serving")

RECEIVE_SIZE = 65536
# accept() errors that mean "out of resources, try again shortly" (trio's list).
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}

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


class StreamServer:
    """Accept loop with a connection limit. Subclasses implement :meth:`handle`.

    Args:
        name: listener name for metrics and logs (``syslog``, ``logs``, ``api``).
        listeners: bound listeners (see :func:`open_listeners`).
        max_connections: open connections at most.
    """

    def __init__(self, name: str, listeners: list[trio.SocketListener], metrics: Metrics,
                 max_connections: int) -> None:
        self.name = name
        self.listeners = listeners
        self.metrics = metrics
        self._slots = trio.Semaphore(max_connections)
        self._accept_scope = trio.CancelScope()
        self._conn_scope = trio.CancelScope()
        self._gauge = metrics.connections.labels(name)
        self._accepted = metrics.connections_total.labels(name)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [_address(lst) for lst in self.listeners]

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

    async def _accept_loop(self, listener: trio.SocketListener, conns: trio.Nursery) -> None:
        while True:
            await self._slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                self._slots.release()
                if exc.errno in _ACCEPT_CAPACITY_ERRNOS:
                    log.error("at=accept_error listener=%s errno=%s", self.name, exc.errno)
                    await trio.sleep(0.1)
                    continue
                raise
            except BaseException:
                self._slots.release()
                raise
            conns.start_soon(self._run_connection, stream)

    async def _run_connection(self, stream: trio.SocketStream) -> None:
        self._gauge.inc()
        self._accepted.inc()
        try:
            await self.handle(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, ConnectionError):
            pass
        finally:
            self._gauge.dec()
            self._slots.release()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await stream.aclose()

    async def handle(self, stream: trio.SocketStream) -> None:
        raise NotImplementedError


class HttpServer(StreamServer):
    """HTTP/1.1 server that answers each request with ``handler(request)``.

    Args:
        handler: async function ``Request -> Response``. An exception becomes a
            logged 500 and closes the connection.
        max_body_bytes: request body limit (413 past it).
        idle_timeout: seconds to wait for the next request on a kept-alive
            connection (and for the rest of a started one).
        send_timeout: seconds a write may block before the client is dropped.
    """

    def __init__(self, name: str, listeners: list[trio.SocketListener], metrics: Metrics,
                 max_connections: int, handler: Handler, max_body_bytes: int,
                 idle_timeout: float, send_timeout: float = 60.0) -> None:
        super().__init__(name, listeners, metrics, max_connections)
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self.send_timeout = send_timeout
        self._idle_waits: set[trio.CancelScope] = set()
        self._stopping = False

    def stop_accepting(self, grace: float) -> None:
        """Also close kept-alive connections that wait for a next request."""
        super().stop_accepting(grace)
        self._stopping = True
        for scope in list(self._idle_waits):
            scope.cancel()

    async def _send(self, stream: trio.SocketStream, data: bytes) -> None:
        with trio.fail_after(self.send_timeout):
            await stream.send_all(data)

    async def handle(self, stream: trio.SocketStream) -> None:
        parser = RequestParser(max_body_bytes=self.max_body_bytes)
        while True:
            data = b""
            with trio.move_on_after(self.idle_timeout) as waiting:
                if parser.idle:
                    if self._stopping:
                        return
                    self._idle_waits.add(waiting)
                try:
                    data = await stream.receive_some(RECEIVE_SIZE)
                finally:
                    self._idle_waits.discard(waiting)
            if not data:
                return  # EOF or idle timeout
            try:
                requests = parser.feed(data)
            except PeerError as exc:
                await self._send(stream, simple_response(
                    exc.status, exc.text.encode(), reason=exc.text, close=True))
                return
            for request in requests:
                if not await self._respond(stream, request):
                    return

    async def _respond(self, stream: trio.SocketStream, request: Request) -> bool:
        """Answer one request; return whether the connection stays open."""
        try:
            response = await self.handler(request)
        except Exception:
            log.exception("at=handler_error listener=%s method=%s path=%s",
                          self.name, request.method, request.path)
            await self._send(stream, simple_response(500, b"Internal Server Error", close=True))
            return False
        keep = request.keep_alive and not response.close
        if response.stream is None:
            headers = list(response.headers)
            if not keep:
                headers.append(("Connection", "close"))
            body = response.body if request.method != "HEAD" else b""
            head = response_head(response.status, [
                *(() if response.status == 204 else (("Content-Type", response.content_type),
                                                     ("Content-Length", str(len(response.body))))),
                *headers], response.reason)
            await self._send(stream, head + body)
            return keep
        await self._stream(stream, response)
        return False

    async def _stream(self, stream: trio.SocketStream, response: Response) -> None:
        headers = [("Content-Type", response.content_type), ("Transfer-Encoding", "chunked"),
                   ("Cache-Control", "no-cache"), ("Connection", "close"), *response.headers]
        await self._send(stream, response_head(response.status, headers, response.reason))
        producer = response.stream
        assert producer is not None

        async def send(data: bytes) -> None:
            if data:
                await self._send(stream, chunk(data))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_peer, stream, nursery.cancel_scope)
            await producer(send)
            await self._send(stream, chunk(b""))
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _watch_peer(stream: trio.SocketStream, scope: trio.CancelScope) -> None:
        """Discard what the client sends during a stream; end the stream at its EOF."""
        try:
            while await stream.receive_some(RECEIVE_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        scope.cancel()
