"""HttpServer on in-memory streams and a mock clock: answers, keep-alive, and each deadline,
without sockets or waiting."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from logrouter.metrics import Metrics
from logrouter.protocol.http1 import Request
from logrouter.transport.serving import ConnectionAborted, HttpServer, Response, Slot


async def echo(request: Request) -> Response:
    return Response(200, request.path.encode(), "text/plain")


def server() -> HttpServer:
    return HttpServer("api", [], Metrics(), 8, echo, max_body_bytes=100, idle_timeout=30,
                      header_timeout=10, body_timeout=60)


async def read_all(stream: trio.abc.Stream) -> bytes:
    out = b""
    while chunk := await stream.receive_some(65536):
        out += chunk
    return out


def run(main: object) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def test_pipelined_requests_are_answered_in_order_then_idle_closes() -> None:
    async def main() -> None:
        client, conn = trio.testing.memory_stream_pair()
        await client.send_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server().handle, conn, Slot())
            got = b""
            while b"/b" not in got:
                got += await client.receive_some(65536)
        assert got.index(b"\r\n\r\n/a") < got.index(b"\r\n\r\n/b")
        assert trio.current_time() - start == pytest.approx(30)  # the idle keep-alive ended it

    run(main)


@pytest.mark.parametrize(("sent", "reason", "after"), [
    (b"GET / HTTP/1.1\r\nHost:", "header_timeout", 10),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc", "body_timeout", 60),
])
def test_a_request_that_stalls_is_cut_at_its_deadline(sent: bytes, reason: str, after: float) -> None:
    async def main() -> None:
        client, conn = trio.testing.memory_stream_pair()
        await client.send_all(sent)
        start = trio.current_time()
        with pytest.raises(ConnectionAborted) as caught:
            await server().handle(conn, Slot())
        assert caught.value.reason == reason
        assert trio.current_time() - start == pytest.approx(after)

    run(main)


def test_trickling_a_head_does_not_extend_its_deadline() -> None:
    async def main() -> None:
        client, conn = trio.testing.memory_stream_pair()

        async def trickle() -> None:
            await client.send_all(b"GET / HTTP/1.1\r\n")
            for _ in range(100):
                await trio.sleep(1)
                await client.send_all(b"X-A: b\r\n")

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            with pytest.raises(ConnectionAborted):
                await server().handle(conn, Slot())
            nursery.cancel_scope.cancel()
        assert trio.current_time() - start == pytest.approx(10)

    run(main)


def test_a_body_over_the_limit_is_refused_with_413() -> None:
    async def main() -> None:
        client, conn = trio.testing.memory_stream_pair()
        await client.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        with pytest.raises(ConnectionAborted):
            await server().handle(conn, Slot())
        await conn.aclose()
        assert (await read_all(client)).startswith(b"HTTP/1.1 413 ")

    run(main)


def test_an_http_client_connection_sees_a_response_waiting_without_reading_it() -> None:
    """`response_arrived` peeks at the socket: an answer the process has not read yet tells a
    busy router from a receiver still working (drains/http_drain.py's receiver_bound)."""
    import socket

    from logrouter.transport.httpclient import HttpConnection

    async def main() -> None:
        ours, theirs = socket.socketpair()
        conn = HttpConnection(trio.SocketStream(trio.socket.from_stdlib_socket(ours)))
        assert not conn.response_arrived() and not conn.in_flight
        theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        assert conn.response_arrived()
        assert conn.response_arrived()  # a peek: still there
        result = await conn.request(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert result.status == 200 and not conn.in_flight and not conn.response_arrived()
        theirs.close()
        assert conn.response_arrived()  # closed by the peer: nothing to wait for
        await conn.aclose()

    trio.run(main)
