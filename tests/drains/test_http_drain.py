"""HTTP(S) drains against a real receiver: bytes, headers, retries, drops, timeouts."""

from __future__ import annotations

import base64
import re
import ssl
from pathlib import Path

import trio
import trio.testing
import trustme

from drains.base import DrainOptions
from drains.http_drain import RESPONSE_GRACE, HttpDrain
from logrouter import __version__
from logrouter.models import DrainRecord
from logrouter.node import Node
from tests.conftest import Router, make_settings
from tests.drains.conftest import FAST, add_drain, drain_status
from tests.drains.sinks import HttpSink, SyslogSink
from tests.helpers import eventually, frame, octet

L10 = re.compile(rb"<172>1 \S+ host heroku logplex - Error L10 \(output buffer overflow\): "
                 rb"(\d+) messages dropped since \S+\+00:00\.\n")


def split_body(body: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(body):
        sp = body.index(b" ", pos)
        n = int(body[pos:sp])
        out.append(body[sp + 1:sp + 1 + n])
        pos = sp + 1 + n
    return out


async def test_exact_request(fast_router: Router, nursery: trio.Nursery) -> None:
    sink = HttpSink()
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"http://us%3Aer:p%40ss@127.0.0.1:{port}/logs?x=1")
    await fast_router.send_tcp(octet(frame(tokens["app"], "hello\n", procid="web.3", sd="[a@1 b=\"c\"]"),
                                     frame(tokens["heroku"], "State changed", procid="web.3", pri=40)))
    (req,) = await sink.wait_requests(1)
    assert req.path == "/logs?x=1"
    h = req.headers
    assert h["Host"] == f"127.0.0.1:{port}"
    assert h["Authorization"] == "Basic " + base64.b64encode(b"us:er:p@ss").decode()
    assert h["Content-Type"] == "application/logplex-1"
    assert h["Logplex-Msg-Count"] == "2"
    assert re.fullmatch(r"[0-9A-F]{32}", h["Logplex-Frame-Id"])
    assert h["Logplex-Drain-Token"] == drain["token"]
    assert h["User-Agent"] == f"logrouter/{__version__}"
    one = b"<190>1 2026-11-26T10:00:00.000000+00:00 host app web.3 - hello\n"
    two = b"<40>1 2026-11-26T10:00:00.000000+00:00 host heroku web.3 - State changed"
    assert req.body == b"%d %s%d %s" % (len(one), one, len(two), two)
    assert req.body.startswith(b"63 <190>1")


async def test_batches_reuse_one_kept_alive_connection(fast_router: Router,
                                                      nursery: trio.Nursery) -> None:
    # 200 with a body (Content-Length: 2) and 204 without one: both keep the connection.
    sink = HttpSink(script=[200, 204, 200])
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    await add_drain(fast_router, cid, f"http://127.0.0.1:{port}/")
    for i in range(4):
        await fast_router.send_tcp(octet(frame(tokens["app"], f"batch {i}")))
        await sink.wait_requests(i + 1)
    assert sink.connections == 1


async def test_500_then_success_retries_with_the_same_frame_id(fast_router: Router,
                                                              nursery: trio.Nursery) -> None:
    sink = HttpSink(script=[500, 429, 200])
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"http://127.0.0.1:{port}/")
    await fast_router.send_tcp(octet(frame(tokens["app"], "retry me")))
    reqs = await sink.wait_requests(3)
    assert len({r.headers["Logplex-Frame-Id"] for r in reqs}) == 1
    assert all(r.body == reqs[0].body for r in reqs)
    status = (await fast_router.api("GET", f"/v3/channels/{cid}/drains/{drain['id']}")).json()["status"]
    assert status["delivered"] == 1 and status["dropped"] == 0


async def test_a_retry_after_that_is_no_number_is_ignored(fast_router: Router,
                                                         nursery: trio.Nursery) -> None:
    """A receiver's Retry-After is its own text: a byte that Python counts as a digit ('²' in
    latin-1) crashed the drain's task (float('²')) instead of being ignored."""
    sink = HttpSink(script=[429, 200], retry_after=b"\xb2")
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"http://127.0.0.1:{port}/")
    await fast_router.send_tcp(octet(frame(tokens["app"], "retry me")))
    reqs = await sink.wait_requests(2)
    assert reqs[0].headers["Logplex-Frame-Id"] == reqs[1].headers["Logplex-Frame-Id"]
    status = await drain_status(fast_router, cid, drain["id"])
    assert status["delivered"] == 1 and status["dropped"] == 0


async def test_400_drops_batch_and_next_batch_starts_with_l10(fast_router: Router,
                                                             nursery: trio.Nursery) -> None:
    sink = HttpSink(script=[400, 200])
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    await add_drain(fast_router, cid, f"http://127.0.0.1:{port}/")
    await fast_router.send_tcp(octet(frame(tokens["app"], "a"), frame(tokens["app"], "b")))
    await sink.wait_requests(1)
    await fast_router.send_tcp(octet(frame(tokens["app"], "c")))
    with trio.fail_after(5):
        while not any(r.body.endswith(b" - c") for r in sink.requests):
            await sink.wait_requests(len(sink.requests) + 1)
    reqs = sink.requests
    assert reqs[0].body.endswith(b" - b")
    # the 400 was not retried; the loss is reported first (alone or with "c")
    frames = [f for r in reqs[1:] for f in split_body(r.body)]
    assert all(int(r.headers["Logplex-Msg-Count"]) == len(split_body(r.body)) for r in reqs)
    m = L10.fullmatch(frames[0])
    assert m and m.group(1) == b"2"
    assert frames[1:] == [frames[-1]] and frames[-1].endswith(b" - c")


async def test_exhausted_retries_drop_and_report(fast_router: Router, nursery: trio.Nursery) -> None:
    sink = HttpSink(script=[503, 503, 503, 200])
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"http://127.0.0.1:{port}/")
    await fast_router.send_tcp(octet(frame(tokens["app"], "lost")))
    await sink.wait_requests(4)  # three tries, then the L10 on its own
    await fast_router.send_tcp(octet(frame(tokens["app"], "kept")))
    reqs = await sink.wait_requests(5)
    assert L10.fullmatch(split_body(reqs[3].body)[0])
    assert split_body(reqs[4].body)[0].endswith(b"kept")
    status = (await fast_router.api("GET", f"/v3/channels/{cid}/drains/{drain['id']}")).json()["status"]
    assert status["dropped"] == 1 and status["delivered"] == 1 and status["last_error"] == "HTTP 503"


async def test_hanging_and_garbage_receivers_time_out_and_retry(fast_router: Router,
                                                               nursery: trio.Nursery) -> None:
    sink = HttpSink(script=["hang", "garbage", 204])
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"http://127.0.0.1:{port}/")
    await fast_router.send_tcp(octet(frame(tokens["app"], "eventually")))
    reqs = await sink.wait_requests(3)
    assert len({r.headers["Logplex-Frame-Id"] for r in reqs}) == 1
    with trio.fail_after(5):
        while True:
            status = (await fast_router.api("GET", f"/v3/channels/{cid}/drains/{drain['id']}")).json()
            if status["status"]["delivered"] == 1:
                break
            await trio.sleep(0.02)


async def test_https_verified_and_bad_cert_fails(tmp_path: Path, sinks: trio.Nursery) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    class TlsHttpSink(HttpSink):
        async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("localhost").configure_cert(ctx)
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            tls = [trio.SSLListener(lst, ctx) for lst in listeners]
            async with trio.open_nursery() as n:
                task_status.started(self.port)
                await trio.serve_listeners(self._handle, tls, handler_nursery=n)  # type: ignore[arg-type]

    sink = TlsHttpSink()
    port = await sinks.start(sink.run)
    node = Node(make_settings(tmp_path, tls_ca_file=str(ca_file), **FAST), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        await add_drain(router, cid, f"https://localhost:{port}/in")
        await router.send_tcp(octet(frame(tokens["app"], "over tls")))
        (req,) = await sink.wait_requests(1)
        assert req.body.endswith(b"over tls")
        node.request_stop()
    untrusting = Node(make_settings(tmp_path / "b", **FAST), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(untrusting.run)
        router = Router(untrusting)
        cid, tokens = await router.create_channel()
        drain = await add_drain(router, cid, f"https://localhost:{port}/in")
        await router.send_tcp(octet(frame(tokens["app"], "refused")))
        with trio.fail_after(5):
            while True:
                st = (await router.api("GET", f"/v3/channels/{cid}/drains/{drain['id']}")).json()["status"]
                if st["last_error"]:
                    break
                await trio.sleep(0.02)
        assert st["last_error"].startswith("certificate:") and len(sink.requests) == 1
        untrusting.request_stop()


async def test_dead_drain_does_not_slow_another_drain(tmp_path: Path, sinks: trio.Nursery) -> None:
    node = Node(make_settings(tmp_path, **FAST), announce=lambda line: None)
    hanging = HttpSink(script=["hang"])
    hport = await sinks.start(hanging.run)
    good = SyslogSink()
    gport = await sinks.start(good.run)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        await add_drain(router, cid, f"http://127.0.0.1:{hport}/")
        await add_drain(router, cid, "syslog://127.0.0.1:1")  # refused
        await add_drain(router, cid, f"syslog://127.0.0.1:{gport}")
        n = 5000
        for start in range(0, n, 500):
            await router.send_tcp(octet(*(frame(tokens["app"], f"n{i}") for i in range(start, start + 500))))
            await trio.sleep(0.01)
        frames = await good.wait_frames(n)
        assert [f.rsplit(b" ", 1)[1] for f in frames] == [f"n{i}\n".encode() for i in range(n)]
        node.request_stop()


# Back-offs long enough that the test sends its next lines while the drain still waits after
# giving a batch up (with FAST's 50 ms, the L10 may go out alone first).
PATIENT = {**FAST, "drain_backoff_initial": 0.5, "drain_backoff_max": 0.5}


async def test_http_drain_failing_after_a_success_degrades_then_recovers(tmp_path: Path,
                                                                       sinks: trio.Nursery) -> None:
    node = Node(make_settings(tmp_path, drain_buffer_lines=50, drain_degraded_lines=5,
                              http_drain_shrink_after=0.0, **PATIENT), announce=lambda line: None)
    sink = HttpSink(script=[200, 500])
    port = await sinks.start(sink.run)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        drain = await add_drain(router, cid, f"http://127.0.0.1:{port}/")
        await router.send_tcp(octet(frame(tokens["app"], "first")))
        await sink.wait_requests(1)
        await router.send_tcp(octet(*(frame(tokens["app"], f"m{i}") for i in range(30))))
        with trio.fail_after(5):  # three 500s: the batch is given up on and the drain degraded
            while not (status := await drain_status(router, cid, drain["id"]))["degraded"]:
                await trio.sleep(0.02)
        assert status["dropped"] == 30 and len(sink.requests) == 4
        sink.script = [*sink.script[:4], 200]
        await router.send_tcp(octet(*(frame(tokens["app"], f"n{i}") for i in range(20))))
        reqs = await sink.wait_requests(5)
        frames = split_body(reqs[4].body)
        m = L10.fullmatch(frames[0])
        assert m and int(m.group(1)) == 45  # 30 given up on + 15 displaced by the 5-line buffer
        assert [f.rsplit(b" ", 1)[1] for f in frames[1:]] == [f"n{i}".encode() for i in range(15, 20)]
        assert (await drain_status(router, cid, drain["id"]))["degraded"] is False
        assert node.drains is not None
        # back to full size: absorbing bursts again (drain_burst_lines)
        running = node.drains.running[int(str(drain["id"]))].drain
        assert running.buffer.capacity == 32768 + running.options.post_lines
        node.request_stop()


async def test_http_drain_that_never_succeeded_is_flagged_but_keeps_its_buffer(
        tmp_path: Path, sinks: trio.Nursery) -> None:
    node = Node(make_settings(tmp_path, drain_buffer_lines=50, drain_degraded_lines=5,
                              http_drain_shrink_after=0.0, **PATIENT), announce=lambda line: None)
    sink = HttpSink(script=[500])
    port = await sinks.start(sink.run)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        drain = await add_drain(router, cid, f"http://127.0.0.1:{port}/")
        await router.send_tcp(octet(frame(tokens["app"], "doomed")))
        with trio.fail_after(5):  # its first batch fails three times: flagged degraded
            while not (await drain_status(router, cid, drain["id"]))["degraded"]:
                await trio.sleep(0.02)
        tried = len(sink.requests)
        sink.script = [*sink.script[:tried], 200]
        await router.send_tcp(octet(*(frame(tokens["app"], f"m{i}") for i in range(30))))

        def after_recovery() -> list[bytes]:
            return [f for r in sink.requests[tried:] for f in split_body(r.body)]

        # the L10 goes first, alone when the drain's back-off ended before the lines arrived
        await eventually(lambda: len(after_recovery()) >= 31)
        frames = after_recovery()
        m = L10.fullmatch(frames[0])
        assert m and int(m.group(1)) == 1  # only "doomed" was lost: the buffer was not shrunk
        assert [f.rsplit(b" ", 1)[1] for f in frames[1:]] == [f"m{i}".encode() for i in range(30)]
        assert (await drain_status(router, cid, drain["id"]))["degraded"] is False
        node.request_stop()


async def test_a_request_just_sent_is_not_yet_the_receivers_doing(
        nursery: trio.Nursery, mock_clock: trio.testing.MockClock) -> None:
    """A feeder waiting on an HTTP drain samples whether the wait is the receiver's doing. On a
    busy router the drain has nearly always just sent its next request when a feeder looks;
    counted as waiting on the receiver, a healthy receiver's drain was marked slow (and lines
    dropped) in about one run in ten of the burst tests in test_delivery. Only a request left
    unanswered for ``RESPONSE_GRACE`` is."""
    sink = HttpSink(script=["hang"])
    port = await nursery.start(sink.run)
    record = DrainRecord(1, "c", "d.1", f"http://127.0.0.1:{port}/", 0.0, 0.0)
    drain = HttpDrain(record, DrainOptions(buffer_lines=100, burst_lines=1000, degraded_lines=10))
    nursery.start_soon(drain.deliver_forever)
    drain.push([b"<190>1 2026-11-29T10:00:00+00:00 host app web.1 - - x"] * 10)
    await sink.wait_requests(1)  # the clock stands still: sent "just now"
    assert not drain.receiver_bound
    mock_clock.jump(RESPONSE_GRACE)
    assert drain.receiver_bound
