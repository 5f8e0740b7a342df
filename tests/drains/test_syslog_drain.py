"""Syslog drains over TCP and TLS against real sinks on loopback."""

from __future__ import annotations

import re
import socket
from functools import partial
from pathlib import Path

import pytest
import trio
import trustme

from drains.base import DrainOptions
from drains.syslog_drain import SyslogDrain
from drains.syslog_writer import SyslogWriter
from logrouter.models import DrainRecord
from logrouter.node import Node
from logrouter.protocol.drainfmt import render_syslog
from tests.conftest import Router, make_settings
from tests.drains.conftest import FAST, add_drain, drain_status
from tests.drains.sinks import SyslogSink
from tests.helpers import eventually, frame, octet
from tests.procs import free_port

L10 = re.compile(rb"^<172>1 \S+ d\.[0-9a-f-]+ heroku logplex - - Error L10 \(output buffer overflow\): "
                 rb"(\d+) messages dropped since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\.\n$")


async def test_exact_bytes_on_the_wire(fast_router: Router, nursery: trio.Nursery) -> None:
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"syslog://127.0.0.1:{port}")
    await fast_router.send_tcp(octet(
        frame(tokens["app"], "no newline", procid="web.1"),
        frame(tokens["app"], "with newline\n", procid="web.2", sd='[x@1 a="b c"]'),
        frame(tokens["heroku"], "platform", procid="router", pri=158)))
    frames = await sink.wait_frames(3)
    token = drain["token"]
    assert frames == [
        f"<190>1 2026-11-26T10:00:00.000000+00:00 {token} app web.1 - - no newline\n".encode(),
        f"<190>1 2026-11-26T10:00:00.000000+00:00 {token} app web.2 - - with newline\n".encode(),
        f"<158>1 2026-11-26T10:00:00.000000+00:00 {token} heroku router - - platform\n".encode(),
    ]
    status = (await fast_router.api("GET", f"/v3/channels/{cid}/drains/{drain['id']}")).json()
    assert status["status"]["delivered"] == 3 and status["status"]["connected"] is True
    metrics = (await fast_router.api("GET", "/metrics", auth=None)).body
    assert f'logrouter_drain_delivered_total{{drain_id="{drain["id"]}"}} 3.0'.encode() in metrics


async def test_receiver_down_then_up_gets_l10_and_newest_lines(tmp_path: Path,
                                                               sinks: trio.Nursery) -> None:
    node = Node(make_settings(tmp_path, drain_buffer_lines=10, **FAST), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        port = free_port()  # nothing listens there yet
        drain = await add_drain(router, cid, f"syslog://127.0.0.1:{port}")
        await router.send_tcp(octet(*(frame(tokens["app"], f"m{i}") for i in range(25))))
        await router.wait_history(cid, 25)

        async def refused_and_full() -> bool:  # a few refused connects
            status = (await router.api("GET", f"/v3/channels/{cid}/drains/{drain['id']}")
                      ).json()["status"]
            return bool((status["last_error"] or "").startswith("connect:")
                        and status["buffered"] == 10)

        await eventually(refused_and_full)
        sink = SyslogSink()
        sinks.start_soon(lambda: sink.run(port=port))
        frames = await sink.wait_frames(11)
        m = L10.match(frames[0])
        assert m and int(m.group(1)) == 15
        assert [f.rsplit(b" ", 1)[1] for f in frames[1:]] == [f"m{i}\n".encode() for i in range(15, 25)]
        node.request_stop()


def tls_sink(ca: trustme.CA, host: str = "127.0.0.1") -> SyslogSink:
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(ctx)
    return SyslogSink(ctx)


async def test_tls_verified_with_ca_file(tmp_path: Path, sinks: trio.Nursery) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    node = Node(make_settings(tmp_path, tls_ca_file=str(ca_file), **FAST), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        sink = tls_sink(ca)
        port = await sinks.start(sink.run)
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        await add_drain(router, cid, f"syslog+tls://127.0.0.1:{port}")
        await router.send_tcp(octet(frame(tokens["app"], "secret")))
        frames = await sink.wait_frames(1)
        assert frames[0].endswith(b" app web.1 - - secret\n")
        node.request_stop()


async def test_bad_certificate_injects_l14_and_insecure_skips_checks(fast_router: Router,
                                                                     nursery: trio.Nursery) -> None:
    ca = trustme.CA()  # not trusted by the router
    sink = tls_sink(ca)
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"syslog+tls://127.0.0.1:{port}")
    await fast_router.send_tcp(octet(frame(tokens["app"], "will not pass")))
    lines = await fast_router.wait_history(cid, 2)
    l14 = lines[1]
    assert re.match(rb'^<188>1 \S+ ' + str(drain["token"]).encode()
                    + rb' heroku logplex - - Error L14 \(certificate validation\): error="[^"]+" '
                    rb'uri="syslog\+tls://127\.0\.0\.1:' + str(port).encode() + rb'/"$', l14), l14
    assert sink.frames == []
    # the same receiver with #insecure
    await fast_router.api("DELETE", f"/v2/channels/{cid}/drains/{drain['id']}")
    await add_drain(fast_router, cid, f"syslog+tls://127.0.0.1:{port}#insecure")
    await fast_router.send_tcp(octet(frame(tokens["app"], "now it passes")))
    frames = await sink.wait_frames(1)
    assert frames[-1].endswith(b"now it passes\n")


async def test_drain_removed_mid_flight_stops_and_frees(fast_router: Router, nursery: trio.Nursery) -> None:
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"syslog://127.0.0.1:{port}")
    await fast_router.send_tcp(octet(*(frame(tokens["app"], f"x{i}") for i in range(100))))
    await sink.wait_frames(1)
    resp = await fast_router.api("DELETE", f"/v2/channels/{cid}/drains/{drain['id']}")
    assert resp.status == 200
    supervisor = fast_router.node.drains
    assert supervisor is not None and drain["id"] not in supervisor.running
    channel = fast_router.node.table.get(cid)
    assert channel is not None and len(channel.consumers) == 0
    witness = SyslogSink()  # a drain added after the removal: once it has the line, the
    await add_drain(fast_router, cid, f"syslog://127.0.0.1:{await nursery.start(witness.run)}")
    await fast_router.send_tcp(octet(frame(tokens["app"], "after removal")))
    await witness.wait_frames(1)  # removed one would have had it too, were it still running
    assert not any(f.endswith(b"after removal\n") for f in sink.frames)
    metrics = (await fast_router.api("GET", "/metrics", auth=None)).body
    assert f'drain_id="{drain["id"]}"'.encode() not in metrics


async def test_url_change_takes_effect_without_restart(fast_router: Router, nursery: trio.Nursery) -> None:
    a, b = SyslogSink(), SyslogSink()
    pa = await nursery.start(a.run)
    pb = await nursery.start(b.run)
    await fast_router.api("PUT", "/v3/channels/c1", {"tokens": ["app"]})
    chan = (await fast_router.api("GET", "/v3/channels/c1")).json()
    token = chan["tokens"]["app"]
    drain = (await fast_router.api("POST", "/v3/channels/c1/drains", {"url": f"syslog://127.0.0.1:{pa}"})).json()
    await fast_router.send_tcp(octet(frame(token, "to a")))
    await a.wait_frames(1)
    await fast_router.api("PUT", f"/v3/channels/c1/drains/{drain['id']}", {"url": f"syslog://127.0.0.1:{pb}"})
    await fast_router.send_tcp(octet(frame(token, "to b")))
    frames = await b.wait_frames(1)
    assert frames[0].endswith(b"to b\n") and len(a.frames) == 1


async def test_failing_syslog_drain_degrades_then_recovers(tmp_path: Path, sinks: trio.Nursery) -> None:
    node = Node(make_settings(tmp_path, drain_buffer_lines=50, drain_degraded_lines=5,
                              syslog_drain_shrink_after=2, **FAST), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        port = free_port()  # refused until the sink starts
        drain = await add_drain(router, cid, f"syslog://127.0.0.1:{port}")
        await router.send_tcp(octet(*(frame(tokens["app"], f"m{i}") for i in range(60))))
        with trio.fail_after(5):  # full (50 of 60 kept) and losing: degraded after 3 refusals
            while not (status := await drain_status(router, cid, drain["id"]))["degraded"]:
                await trio.sleep(0.02)
        assert status["buffered"] == 5 and status["dropped"] == 55
        sink = SyslogSink()
        sinks.start_soon(lambda: sink.run(port=port))
        frames = await sink.wait_frames(6)
        m = L10.match(frames[0])
        assert m and int(m.group(1)) == 55
        assert [f.rsplit(b" ", 1)[1] for f in frames[1:]] == [f"m{i}\n".encode() for i in range(55, 60)]
        status = await drain_status(router, cid, drain["id"])
        assert status["degraded"] is False
        # the whole buffer is back: 40 lines sent at once all arrive, with no L10
        await router.send_tcp(octet(*(frame(tokens["app"], f"n{i}") for i in range(40))))
        frames = await sink.wait_frames(46)
        assert [f.rsplit(b" ", 1)[1] for f in frames[6:]] == [f"n{i}\n".encode() for i in range(40)]
        node.request_stop()


async def test_a_syslog_drain_connects_when_added_not_on_its_first_line(
        fast_router: Router, nursery: trio.Nursery) -> None:
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"syslog://127.0.0.1:{port}")
    await eventually(lambda: sink.connections == 1)  # no line sent yet
    assert (await drain_status(fast_router, cid, drain["id"]))["connected"] is True
    await fast_router.send_tcp(octet(frame(tokens["app"], "first")))
    await sink.wait_frames(1)
    assert sink.connections == 1 and sink.frames[0].endswith(b"first\n")


async def test_a_receiver_down_at_start_is_dialled_again_only_when_lines_come(
        fast_router: Router, nursery: trio.Nursery) -> None:
    port = free_port()  # nothing listens there yet
    cid, tokens = await fast_router.create_channel()
    drain = await add_drain(fast_router, cid, f"syslog://127.0.0.1:{port}")
    await eventually(lambda: fast_router.node.drains is not None
                     and fast_router.node.drains.running[int(str(drain["id"]))].drain.errors == 1)
    sink = SyslogSink()
    await nursery.start(partial(sink.run, port=port))
    await trio.sleep(0.5)  # several back-offs long (FAST): no line waits, so no redial
    assert sink.connections == 0
    await fast_router.send_tcp(octet(frame(tokens["app"], "now")))
    await sink.wait_frames(1)
    assert sink.frames[0].endswith(b"now\n")


async def test_wait_idle_returns_once_each_push_is_written(nursery: trio.Nursery) -> None:
    """The shutdown flush waits on this: after every push, until the shared writer (lingering
    here 0.1 s) has written the lines; a push after the drain went quiet makes it wait again."""
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    writer = SyslogWriter(linger=0.1)
    nursery.start_soon(writer.run)
    record = DrainRecord(1, "c", "d.1", f"syslog://127.0.0.1:{port}", 0.0, 0.0)
    drain = SyslogDrain(record, DrainOptions(backoff_initial=0.05, backoff_max=0.2), writer=writer)
    nursery.start_soon(drain.run)
    line = b"<190>1 2026-11-26T10:00:00+00:00 host app web.1 - - hello"
    for round_ in range(1, 4):
        await eventually(lambda: drain.connected and not drain.receiver_bound)
        drain.push([line] * 10)
        start = trio.current_time()
        await drain.wait_idle()
        assert trio.current_time() - start >= 0.05  # it waited for the writer's linger
        assert drain.delivered == 10 * round_ and not len(drain.buffer)
    assert len(await sink.wait_frames(30)) == 30


@pytest.mark.parametrize("round_lines", [131072, 1])
async def test_rounds_sent_from_a_worker_thread_deliver_every_line_in_order(
        nursery: trio.Nursery, round_lines: int) -> None:
    """With thousands of drains the writer's rounds are sent from a worker thread (here
    every round is): each drain's lines still arrive whole and in order — also when a round
    holds only some of the dirty drains' writes (``round_lines``; 1: one write a round)."""
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    writer = SyslogWriter(linger=0.005, thread_writes=1, round_lines=round_lines)
    nursery.start_soon(writer.run)
    drains = []
    for i in range(5):
        record = DrainRecord(i, "c", f"d.{i}", f"syslog://127.0.0.1:{port}", 0.0, 0.0)
        drain = SyslogDrain(record, DrainOptions(backoff_initial=0.05, backoff_max=0.2,
                                                 buffer_lines=10_000), writer=writer)
        nursery.start_soon(drain.run)
        drains.append(drain)
    await eventually(lambda: all(d.connected and not d.receiver_bound for d in drains))
    for batch in range(20):
        for drain in drains:
            drain.push([b"<190>1 2026-11-26T10:00:00+00:00 host app web.1 - - %d" % (batch * 100 + n)
                        for n in range(100)])
        await trio.sleep(0.002)
    frames = await sink.wait_frames(5 * 2000)
    for i in range(5):
        mine = [f.rsplit(b" ", 1)[1] for f in frames if b" d.%d " % i in f]
        assert mine == [b"%d\n" % n for n in range(2000)]


async def test_a_drain_stopped_while_its_round_is_sending_closes_its_socket_after(
        nursery: trio.Nursery) -> None:
    """The writer's thread may be sending on a drain's socket when the drain stops (removed,
    or the node shutting down): the socket closes only after that send, and every line is
    either delivered (the sink has it) or still buffered — none is lost unreported."""
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    writer = SyslogWriter(linger=0.001, thread_writes=1)
    nursery.start_soon(writer.run)
    record = DrainRecord(1, "c", "d.1", f"syslog://127.0.0.1:{port}", 0.0, 0.0)
    drain = SyslogDrain(record, DrainOptions(backoff_initial=0.05, backoff_max=0.2,
                                             buffer_lines=100_000, burst_lines=100_000),
                        writer=writer)
    scope = trio.CancelScope()

    async def run_drain() -> None:
        with scope:
            await drain.run()

    nursery.start_soon(run_drain)
    await eventually(lambda: drain.connected and not drain.receiver_bound)
    big = b"<190>1 2026-11-26T10:00:00+00:00 host app web.1 - - " + b"x" * 8000
    pushed = 20_000
    drain.push([big] * pushed)
    with trio.fail_after(10):
        while drain not in writer._sending:
            await trio.sleep(0)
    scope.cancel()
    await eventually(lambda: not drain.connected)
    assert drain.dropped == 0
    assert drain.delivered + len(drain.buffer) == pushed
    await sink.wait_frames(drain.delivered)
    await trio.sleep(0.2)
    assert len(sink.frames) == drain.delivered  # what went out whole was counted, no more


async def test_a_write_of_only_unrenderable_lines_does_not_strand_the_lines_behind_it(
        nursery: trio.Nursery) -> None:
    """A batch whose every line cannot be rendered gives no write (its lines are counted
    lost); a full batch waiting behind it is still written without another push."""
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    writer = SyslogWriter(linger=0.001)
    nursery.start_soon(writer.run)
    record = DrainRecord(1, "c", "d.1", f"syslog://127.0.0.1:{port}", 0.0, 0.0)
    drain = SyslogDrain(record, DrainOptions(backoff_initial=0.05, backoff_max=0.2,
                                             buffer_lines=10_000), writer=writer)
    nursery.start_soon(drain.run)
    await eventually(lambda: drain.connected and not drain.receiver_bound)
    good = b"<190>1 2026-11-26T10:00:00+00:00 host app web.1 - - fine"
    drain.push([b"not syslog"] * 512 + [good] * 600)
    frames = await sink.wait_frames(601, timeout=5)  # the L10 for the 512, then the 600
    assert L10.match(frames[0]) and L10.match(frames[0]).group(1) == b"512"  # type: ignore[union-attr]
    assert all(f.endswith(b"fine\n") for f in frames[1:]) and len(frames) == 601


@pytest.mark.parametrize("thread_writes", [1, 512])
async def test_writes_the_c_renderer_leaves_to_python_arrive_whole_and_in_order(
        nursery: trio.Nursery, thread_writes: int) -> None:
    """Writes with lines of other RFC 5424 shapes (structured data) among plain ones are
    rendered in Python and sent in place, in a round done in a worker thread or not: the
    receiver gets exactly render_syslog's frames, in order, each drain its own."""
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    writer = SyslogWriter(linger=0.002, thread_writes=thread_writes)
    nursery.start_soon(writer.run)
    drains = []
    for i in range(3):
        record = DrainRecord(i, "c", f"d.{i}", f"syslog://127.0.0.1:{port}", 0.0, 0.0)
        drain = SyslogDrain(record, DrainOptions(buffer_lines=10_000), writer=writer)
        nursery.start_soon(drain.run)
        drains.append(drain)
    await eventually(lambda: all(d.connected and not d.receiver_bound for d in drains))
    sent: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for batch in range(30):
        for i, drain in enumerate(drains):
            lines = [b"<190>1 2026-11-26T10:00:00+00:00 host app web.1 - - plain %d" % n
                     if (n + i) % 3 else
                     b'<190>1 2026-11-26T10:00:00+00:00 host app web.1 - [x a="%d"] sd' % n
                     for n in range(batch * 10, batch * 10 + 10)]
            if i == 0:
                lines = [line for line in lines if b"plain" in line]  # all C's
            drain.push(lines)
            sent[i] += lines
        await trio.sleep(0.001)
    total = sum(len(v) for v in sent.values())
    frames = await sink.wait_frames(total)
    for i in range(3):
        mine = [octet(f) for f in frames if b" d.%d " % i in f]
        assert b"".join(mine) == render_syslog(sent[i], b"d.%d" % i)[0]
    assert all(d.dropped == 0 for d in drains)


async def test_a_node_paces_its_drains_connection_attempts(tmp_path: Path) -> None:
    """Thousands of drains connecting at once (a restart, a receiver back from an outage) held
    the event loop for up to a second at a time; attempts are spaced ``1 / drain_connect_rate``
    apart instead. Here 200 drains of a dead receiver start together at 100 attempts a second."""
    receiver = socket.socket()  # takes connections into its backlog while the drains are made
    receiver.bind(("127.0.0.1", 0))
    receiver.listen(1024)
    url = f"syslog://127.0.0.1:{receiver.getsockname()[1]}"
    first = Node(make_settings(tmp_path), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        control = first.control
        assert control is not None
        for i in range(200):  # through the control layer: 400 API calls take seconds here
            channel = await control.create_channel(f"app{i}", ["app"])
            await control.add_drain(channel.id, url)
        first.request_stop()
    receiver.close()  # dead from now on
    node = Node(make_settings(tmp_path, drain_connect_rate=100), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        assert node.drains is not None
        drains = [run.drain for run in node.drains.running.values()]
        assert len(drains) == 200

        def tried() -> int:
            return sum(1 for d in drains if d.errors or d.connects)

        await eventually(lambda: tried() > 0)
        await trio.sleep(1.0)
        assert tried() <= 100 + 20  # a second's worth, with slack for the first attempts
        await eventually(lambda: tried() == 200, timeout=10)
        node.request_stop()


async def test_drains_a_restarting_receiver_closed_at_once_end_their_sessions_paced(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    """A receiver that many drains share closes all their connections at once when it
    restarts; ending 5,000 sessions in one batch of the event loop held it for half a second
    (bench/receiver_restart.py). The ends take ``drain_connect_rate`` slots as reconnects do:
    200 drains closed together at 100 a second end over about two seconds."""
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    accepted: list[trio.socket.SocketType] = []
    accepting = trio.CancelScope()

    async def accept() -> None:
        with accepting:
            while True:
                sock, _ = await listener.accept()
                accepted.append(sock)
        listener.close()

    nursery.start_soon(accept)
    node = Node(make_settings(tmp_path, drain_connect_rate=100), announce=lambda line: None)
    await nursery.start(node.run)
    control = node.control
    assert control is not None and node.drains is not None
    tokens = []
    for i in range(200):
        channel = await control.create_channel(f"app{i}", ["app"])
        tokens.append(next(iter(channel.tokens)))
        await control.add_drain(channel.id, f"syslog://127.0.0.1:{port}")
    drains = [run.drain for run in node.drains.running.values()]
    await eventually(lambda: all(d.connected for d in drains) and len(accepted) == 200)
    for sock in accepted:  # the receiver goes away: every connection closed at once
        sock.close()
    await eventually(lambda: any(not d.connected for d in drains))
    await trio.sleep(0.5)
    assert sum(1 for d in drains if not d.connected) <= 50 + 20  # half a second's worth
    await eventually(lambda: not any(d.connected for d in drains), timeout=10)
    accepting.cancel()
    node.request_stop()


async def test_failures_of_many_drains_of_one_receiver_are_logged_once_a_while(
        router: Router, caplog: pytest.LogCaptureFixture) -> None:
    """50 drains of one dead receiver each fail to connect: one `drain_error` line for that
    destination (then one per DRAIN_ERROR_LOG_INTERVAL with the count since), not 50 — each
    drain's own status still has its error."""
    dest = f"127.0.0.1:{free_port()}"
    control = router.node.control
    assert control is not None and router.node.drains is not None
    for i in range(50):
        channel = await control.create_channel(f"app{i}", ["app"])
        await control.add_drain(channel.id, f"syslog://{dest}")
    drains = [run.drain for run in router.node.drains.running.values()]
    await eventually(lambda: all(d.errors for d in drains))
    lines = [r.getMessage() for r in caplog.records
             if "drain_error" in r.getMessage() and dest in r.getMessage()]
    assert len(lines) == 1, lines
    assert all(d.last_error and d.last_error.startswith("connect:") for d in drains)
