"""Hostile and careless clients: whatever one connection does ends that connection only."""

from __future__ import annotations

import socket
import struct

import trio

from tests.conftest import Router
from tests.helpers import eventually, frame, octet, open_request, request

SSE = {"Accept": "text/event-stream"}


async def fill_history(router: Router, lines: int = 1500, size: int = 1000) -> tuple[str, str]:
    cid, tokens = await router.create_channel()
    pad = "x" * size
    frames = [frame(tokens["app"], f"{i} {pad}") for i in range(lines)]
    await router.send_tcp(octet(*frames))
    await router.wait_history(cid, lines)
    return cid, tokens["app"]


async def alive(router: Router) -> None:
    resp = await request(router.api_port, "GET", "/v3/healthcheck")
    assert resp.status == 200


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def test_reader_that_hangs_up_early_ends_only_its_connection(router: Router) -> None:
    cid, _ = await fill_history(router)
    for _ in range(5):
        path = await router.session(cid, num="1500")
        resp = await open_request(router.api_port, "GET", path)
        await resp.read_until(b"\n")
        reset(resp.socket)  # `curl | head -c 100`
    await eventually(
        lambda: router.node.metrics.connection_errors.labels("api", "client_gone")._value.get() >= 1)
    await alive(router)


async def test_tail_clients_resetting_and_closing_at_once(router: Router) -> None:
    cid, token = await fill_history(router, lines=200, size=100)
    streams = []
    for _ in range(200):
        path = await router.session(cid, num="200", tail=True)
        streams.append(await open_request(router.api_port, "GET", path, headers=SSE))
    for i, resp in enumerate(streams):
        if i % 2:
            reset(resp.socket)
        else:
            resp.socket.close()
    await router.send_tcp(octet(*[frame(token, "after") for _ in range(50)]))
    await router.wait_history(cid, 250)
    streamer = router.node.streamer
    assert streamer is not None
    await eventually(lambda: streamer.active_tails == 0)  # every session ended, none leaked
    await alive(router)


async def test_stalled_tail_client_is_dropped_not_the_router(router: Router) -> None:
    router.node._servers[2].send_timeout = 0.5  # type: ignore[attr-defined]
    cid, token = await fill_history(router, lines=100, size=100)
    path = await router.session(cid, num="1", tail=True)
    resp = await open_request(router.api_port, "GET", path)
    sock = resp.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # The client stops reading; the router's writes block until its send timeout.
    for _ in range(40):
        await router.send_tcp(octet(*[frame(token, "y" * 1000) for _ in range(100)]))
        await trio.sleep(0.02)
    await eventually(
        lambda: router.node.metrics.connection_errors.labels("api", "send_timeout")._value.get() >= 1)
    await alive(router)
    await resp.aclose()


async def raw_exchange(port: int, data: bytes, then: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send ``data`` (then ``then``, ignoring a reset), read until the server closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    out = b""
    with trio.fail_after(timeout):
        await stream.send_all(data)
        try:
            if then:
                await stream.send_all(then)
            while chunk := await stream.receive_some(65536):
                out += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await stream.aclose()
    return out


async def test_endless_header_is_cut_off_on_every_http_port(router: Router) -> None:
    for port in (router.logs_port, router.api_port):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /v3/healthcheck HTTP/1.1\r\nX: ")
        answer = b""
        with trio.fail_after(5):
            try:
                for _ in range(1000):  # up to 1 MB of one header value
                    await stream.send_all(b"a" * 1024)
            except trio.BrokenResourceError:
                pass
            try:
                while chunk := await stream.receive_some(65536):
                    answer += chunk
            except trio.BrokenResourceError:
                pass
        await stream.aclose()
        assert answer.startswith(b"HTTP/1.1 431 "), (port, answer[:80])


async def test_trickled_header_meets_a_deadline(router: Router) -> None:
    server = router.node._servers[2]
    server.header_timeout = 0.5  # type: ignore[attr-defined]
    stream = await trio.open_tcp_stream("127.0.0.1", router.api_port)
    start = trio.current_time()
    closed = False
    with trio.fail_after(5):
        await stream.send_all(b"GET /v3/healthcheck HTTP/1.1\r\n")
        try:
            for _ in range(40):  # a byte every 0.1 s would keep a per-read timeout alive
                await stream.send_all(b"X")
                await trio.sleep(0.1)
        except trio.BrokenResourceError:
            closed = True
        if not closed:
            closed = await stream.receive_some(100) == b""
    assert closed and trio.current_time() - start < 3.0
    await stream.aclose()
    assert router.node.metrics.connection_errors.labels("api", "header_timeout")._value.get() == 1


async def test_unauthenticated_body_is_never_read(router: Router) -> None:
    head = (b"POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t.nope\r\n"
            b"Content-Type: application/logplex-1\r\nContent-Length: 8000000\r\n\r\n")
    stream = await trio.open_tcp_stream("127.0.0.1", router.logs_port)
    await stream.send_all(head)  # the body never comes: the answer must not wait for it
    with trio.fail_after(2):
        answer = await stream.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized")
    await stream.aclose()
    api_head = b"PUT /v3/channels/x HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n"
    stream = await trio.open_tcp_stream("127.0.0.1", router.api_port)
    await stream.send_all(api_head)
    with trio.fail_after(2):
        answer = await stream.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 401 ")
    await stream.aclose()


async def test_pipelined_requests_before_a_malformed_one_are_answered(router: Router) -> None:
    answer = await raw_exchange(router.api_port, b"GET /v3/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"
                                b"GET /v3/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"
                                b"GARBAGE\x00\x01\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and b"HTTP/1.1 400 " in answer


async def test_head_on_a_session_neither_streams_nor_opens_it(router: Router) -> None:
    cid, _ = await fill_history(router, lines=10, size=10)
    path = await router.session(cid, num="5")
    answer = await raw_exchange(router.api_port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n"
                                "Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\n")
    session = await router.node.control.sessions.lookup(path.rsplit("/", 1)[1])  # type: ignore[union-attr]
    assert session is not None and session.opened_at is None


async def test_last_event_id_zero_or_unicode_gives_the_usual_backlog(router: Router) -> None:
    cid, _ = await fill_history(router, lines=50, size=10)
    for last_id in ("0", "²", "9" * 5000):
        path = await router.session(cid, num="5")
        resp = await open_request(router.api_port, "GET", path,
                                  headers={**SSE, "Last-Event-ID": last_id})
        body = await resp.read_to_end()
        await resp.aclose()
        assert resp.status == 200 and body.count(b"data: ") == 5, last_id


async def test_idle_syslog_connections_cannot_lock_senders_out(tmp_path: object) -> None:
    from pathlib import Path

    from logrouter.node import Node
    from tests.conftest import make_settings

    node = Node(make_settings(Path(str(tmp_path)) / "d", max_connections=8), announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        idle = [await trio.open_tcp_stream("127.0.0.1", router.syslog_port) for _ in range(8)]
        await trio.sleep(1.2)  # they have been idle for longer than EVICT_MIN_IDLE
        for i in range(3):
            await router.send_tcp(octet(frame(tokens["app"], f"new sender {i}")))
        await router.wait_history(cid, 3)
        assert node.metrics.connection_errors.labels("syslog", "evicted")._value.get() >= 1
        for s in idle:
            await s.aclose()
        node.request_stop()
