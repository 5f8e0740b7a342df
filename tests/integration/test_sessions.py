"""Sessions: backlog and tails, in Logplex text and in SSE; L11 under a stalled client."""

from __future__ import annotations

import socket
from pathlib import Path

import trio

from logrouter.core.tail import TailHub
from logrouter.node import Node
from tests.conftest import Router, make_settings
from tests.helpers import HttpStream, eventually, frame, octet, open_request

SSE = {"Accept": "text/event-stream"}


async def seed(router: Router) -> tuple[str, dict[str, str]]:
    cid, tokens = await router.create_channel()
    frames = [frame(tokens["app"], f"web1 #{i}", procid="web.1") for i in range(5)]
    frames += [frame(tokens["app"], "worker line", procid="worker.2")]
    frames += [frame(tokens["heroku"], "router line", procid="router")]
    frames += [frame(tokens["app"], "web12 line", procid="web.12")]
    await router.send_tcp(octet(*frames))
    await router.wait_history(cid, 8)
    FIRST[cid] = router.node.table.get(cid).history.seq - 7  # type: ignore[union-attr]
    return cid, tokens


def ident(router: Router, cid: str, n: int) -> bytes:
    """The SSE id of the n-th line ever posted to the channel (1-based)."""
    return b"id: %d\n" % (FIRST[cid] + n - 1)


FIRST: dict[str, int] = {}  # channel id → the number of its first line


async def body_of(router: Router, path: str,
                  headers: dict[str, str] | None = None) -> tuple[HttpStream, bytes]:
    resp = await open_request(router.api_port, "GET", path, headers=headers)
    body = await resp.read_to_end()
    await resp.aclose()
    return resp, body


async def test_backlog_text_rendering_and_num(router: Router) -> None:
    cid, _ = await seed(router)
    resp, body = await body_of(router, await router.session(cid, num="3"))
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["transfer-encoding"] == "chunked"
    assert body.decode().splitlines() == [
        "2026-11-26T10:00:00.000000+00:00 app[worker.2]: worker line",
        "2026-11-26T10:00:00.000000+00:00 heroku[router]: router line",
        "2026-11-26T10:00:00.000000+00:00 app[web.12]: web12 line",
    ]


async def test_backlog_filters_search_whole_history(router: Router) -> None:
    cid, _ = await seed(router)
    _, body = await body_of(router, await router.session(cid, num="2", ps="web.1"))
    assert body.decode().splitlines() == [
        "2026-11-26T10:00:00.000000+00:00 app[web.1]: web1 #3",
        "2026-11-26T10:00:00.000000+00:00 app[web.1]: web1 #4"]
    _, body = await body_of(router, await router.session(cid, num="10", ps="web"))
    assert body.count(b"\n") == 6
    _, body = await body_of(router, await router.session(cid, num="10", source="heroku"))
    assert body == b"2026-11-26T10:00:00.000000+00:00 heroku[router]: router line\n"


async def test_backlog_sse_rendering(router: Router) -> None:
    cid, _ = await seed(router)
    resp, body = await body_of(router, await router.session(cid, num="2"), SSE)
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert body == (b"retry: 100\n\n"
                    b"data: 2026-11-26T10:00:00.000000+00:00 heroku[router]: router line\n"
                    + ident(router, cid, 7) + b"\n"
                    b"data: 2026-11-26T10:00:00.000000+00:00 app[web.12]: web12 line\n"
                    + ident(router, cid, 8) + b"\n")


async def test_v1_and_v3_session_creation(router: Router) -> None:
    cid, _ = await seed(router)
    resp = await router.api("POST", "/sessions", {"channel_id": cid, "num": "1"})
    assert resp.status == 201 and resp.body.startswith(b"http://127.0.0.1:")
    resp = await router.api("POST", "/v3/sessions", {"channel_id": cid, "num": 1})
    assert resp.status == 201 and resp.headers["location"] == resp.json()["url"]
    assert (await router.api("POST", "/v3/sessions", {"num": "1"})).status == 400
    resp = await router.api("POST", "/v3/sessions", {"channel_id": "999"})
    assert (resp.status, resp.json()) == (422, {"error": "channel not found"})


async def test_tail_streams_live_lines_in_both_renderings(router: Router) -> None:
    cid, tokens = await seed(router)
    text = await open_request(router.api_port, "GET", await router.session(cid, num="1", tail=True))
    sse = await open_request(router.api_port, "GET", await router.session(cid, num="0", tail=True),
                             headers=SSE)
    await text.read_until(b"web12 line")
    await router.send_tcp(octet(frame(tokens["app"], "live one\r\nsecond half", procid="web.3")))
    got = await text.read_until(b"second half")
    assert got.endswith(b"app[web.3]: live one\r\nsecond half\n")
    got = await sse.read_until(b"second half")
    assert got == (b"retry: 100\n\n"
                   b"data: 2026-11-26T10:00:00.000000+00:00 app[web.3]: live one\n"
                   b"data: second half\n" + ident(router, cid, 9) + b"\n")
    await text.aclose()
    await sse.aclose()


async def test_filtered_tail(router: Router) -> None:
    cid, tokens = await seed(router)
    tail = await open_request(router.api_port, "GET",
                              await router.session(cid, num="0", tail=True, source="heroku"))
    await router.send_tcp(octet(frame(tokens["app"], "not me"), frame(tokens["heroku"], "me")))
    got = await tail.read_until(b"me\n")
    assert b"not me" not in got and got.endswith(b"heroku[web.1]: me\n")
    await tail.aclose()


async def test_sse_keepalive_and_resume_with_last_event_id(tmp_path: Path) -> None:
    node = Node(make_settings(tmp_path, sse_keepalive=0.2), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, _ = await seed(router)
        path = await router.session(cid, num="1", tail=True)
        tail = await open_request(router.api_port, "GET", path, headers=SSE)
        got = await tail.read_until(b": keep-alive\n\n", timeout=3)
        assert ident(router, cid, 8) in got
        await tail.aclose()
        six = ident(router, cid, 6)[4:-1].decode()
        resumed = await open_request(router.api_port, "GET", path,
                                     headers={**SSE, "Last-Event-ID": six})
        got = await resumed.read_until(ident(router, cid, 8))
        assert ident(router, cid, 6) not in got and ident(router, cid, 7) in got
        await resumed.aclose()
        future = await open_request(router.api_port, "GET", path,
                                    headers={**SSE, "Last-Event-ID": "99999999999999999"})
        got = await future.read_until(ident(router, cid, 8))  # unknown id: the normal backlog
        assert got.count(b"data:") == 1
        await resumed.aclose()
        node.request_stop()


async def test_l11_under_a_stalled_tail_client_without_slowing_ingest(tmp_path: Path) -> None:
    node = Node(make_settings(tmp_path, tail_buffer_lines=50), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        path = await router.session(cid, num="0", tail=True)
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", router.api_port))
        stream = trio.SocketStream(sock)
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await eventually(lambda: node.streamer is not None and node.streamer.active_tails == 1)
        # the session is subscribed; now the client stops reading
        payload = "x" * 2000
        for b in range(10):  # 5,000 lines, ~10 MB: far beyond socket buffers
            if b == 5:  # the first half is older than the ring's grace for a burst: it goes
                await trio.sleep(TailHub.GRACE + 0.1)
            await router.send_tcp(octet(*(frame(tokens["app"], f"{b * 500 + i} {payload}")
                                          for i in range(500))))
        # ingest is not held back by the stalled client: every line reaches history
        with trio.fail_after(10):
            while node.table.get(cid).history.seq < 5000:  # type: ignore[union-attr]
                await trio.sleep(0.01)
        received = b""
        with trio.fail_after(10):
            while b"4999 " + payload.encode() not in received:
                received += await stream.receive_some(1 << 20)
        l11 = [x for x in received.split(b"\n") if b"Error L11" in x]
        assert l11, "no L11 line"
        for line in l11:
            assert b" logplex[1]: Error L11 (Tail buffer overflow) -> This tail session dropped " in line
            assert line.endswith(b"+00:00.")
        dropped = sum(int(x.split(b"dropped ")[1].split(b" ")[0]) for x in l11)
        delivered = received.count(payload.encode())
        assert dropped > 1000
        assert dropped + delivered == 5000  # every line is either shown or counted
        assert node.metrics.tail_lost._value.get() == dropped
        await stream.aclose()
        node.request_stop()


async def test_tail_ends_cleanly_on_shutdown_and_session_survives_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    node = Node(settings, announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, _ = await seed(router)
        path = await router.session(cid, num="1", tail=True)
        tail = await open_request(router.api_port, "GET", path, headers=SSE)
        await tail.read_until(b"web12 line")
        node.request_stop()
        await tail.read_to_end()
        assert tail.done  # terminating chunk arrived: a clean EOF, not a reset
    node2 = Node(settings, announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node2.run)
        router2 = Router(node2)
        seven = ident(router, cid, 7)[4:-1].decode()
        resumed = await open_request(router2.api_port, "GET", path,
                                     headers={**SSE, "Last-Event-ID": seven})
        assert resumed.status == 200
        got = await resumed.read_until(b"web12 line")
        # history was saved and reloaded with its numbering: only line 8 is new to the client
        assert got.count(b"data:") == 1 and ident(router, cid, 8) in got
        await resumed.aclose()
        node2.request_stop()


async def test_v3_channel_logs(router: Router) -> None:
    cid, _ = await seed(router)
    resp = await router.api("GET", f"/v3/channels/{cid}/logs?num=2")
    assert resp.status == 200 and resp.headers["logplex-msg-count"] == "2"
    line = b"<190>1 2026-11-26T10:00:00.000000+00:00 host app web.12 - web12 line\n"
    assert resp.body.endswith(b"%d %s" % (len(line), line))
