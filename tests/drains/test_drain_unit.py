"""The drain's buffer policy on a mock clock, without sockets: bursts absorbed while the drain
delivers, a drain that cannot catch up marked slow with a doubling cool-down, degraded mode."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from drains.base import SLOW_COOLDOWN, Drain, DrainOptions
from logrouter.models import DrainRecord
from logrouter.spool.queue import SpoolQueue

LINES = [b"<190>1 2026-11-27T10:00:00+00:00 host app web.1 - - x"] * 100


class Idle(Drain):
    """A drain whose delivery the test performs by hand."""

    async def deliver_forever(self) -> None:
        await trio.sleep_forever()


def drain(**options: int) -> Idle:
    record = DrainRecord(1, "c", "d.1", "syslog://logs.example.com:514", 0.0, 0.0)
    return Idle(record, DrainOptions(buffer_lines=100, burst_lines=1000, degraded_lines=10, **options))


def run(main: object) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def deliver_all(d: Drain) -> None:
    _, lines = d.buffer.pop_batch(max_lines=10_000)
    d.succeeded(len(lines))


def test_a_burst_is_absorbed_while_the_drain_delivers() -> None:
    async def main() -> None:
        d = drain()
        pushback = [d.push(LINES) for _ in range(5)]  # 500 lines: past buffer_lines, kept
        assert pushback[-1] and len(d.buffer) == 500 and d.dropped == 0

        async def deliver_soon() -> None:
            await trio.sleep(0.2)
            deliver_all(d)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(deliver_soon)
            await d.wait_room(trio.current_time() + 1.0)  # the feeder waits for the delivery
        assert not d.slow and d.delivered == 500 and d.dropped == 0

    run(main)


def test_an_absorbing_drain_takes_a_whole_post_larger_than_its_burst_buffer() -> None:
    """Feeders are told to wait only after a post: one post of a whole round (ingest's
    ROUND_LINES at most) is kept whole beyond burst_lines, never displaced."""
    from logrouter.ingest.pipeline import Ingest

    async def main() -> None:
        assert DrainOptions().post_lines >= Ingest.ROUND_LINES
        d = drain(post_lines=5000)
        assert d.push([b"x"] * 900) and d.push([b"y"] * 5000)  # 5,900 > burst_lines 1,000
        assert len(d.buffer) == 5900 and d.dropped == 0
        d.push([b"z"] * 200)  # past burst_lines + post_lines: the oldest go, counted
        assert len(d.buffer) == 6000 and d.dropped == 100

    run(main)


def test_a_drain_that_does_not_catch_up_is_marked_slow_and_its_cool_down_doubles() -> None:
    async def main() -> None:
        d = drain()
        for _ in range(5):
            d.push(LINES)
        start = trio.current_time()
        await d.wait_room(start + 1.0)
        assert trio.current_time() - start == 1.0
        assert d.slow and len(d.buffer) == 100 and d.dropped == 400  # back to buffer_lines
        assert not d.push(LINES)  # a slow drain no longer asks ingest to wait
        deliver_all(d)
        assert d.slow  # caught up, but still cooling down
        await trio.sleep(SLOW_COOLDOWN)
        d.push(LINES)
        deliver_all(d)
        assert not d.slow  # absorbs again
        for _ in range(5):
            d.push(LINES)
        await d.wait_room(trio.current_time() + 1.0)  # slow again: the second strike
        deliver_all(d)
        await trio.sleep(SLOW_COOLDOWN)
        d.push(LINES)
        deliver_all(d)
        assert d.slow  # twice as long this time
        await trio.sleep(SLOW_COOLDOWN)
        d.push(LINES)
        deliver_all(d)
        assert not d.slow

    run(main)


def test_degraded_mode_keeps_the_newest_lines_and_counts_the_rest() -> None:
    async def main() -> None:
        d = drain()
        d.push(LINES)
        d.degrade()
        assert d.degraded and len(d.buffer) == 10 and d.dropped == 90
        d.push(LINES)
        assert len(d.buffer) == 10 and d.dropped == 190
        deliver_all(d)
        assert not d.degraded and d.buffer.capacity >= 100

    run(main)


def test_a_drain_that_keeps_up_with_its_receiver_is_never_marked_slow_by_a_busy_router() -> None:
    """When the router itself is the bottleneck (its CPU), a syslog drain whose socket takes
    every write waits for its turn to deliver, not for the receiver: ingest keeps waiting for
    it, however long the flat-out run, and nothing is dropped. (Before, those waits spent the
    connection's budget too, and after a few seconds every drain was marked slow.)"""
    import socket

    from drains.syslog_drain import SyslogDrain
    from logrouter.core.channels import ChannelTable
    from logrouter.ingest.pipeline import Ingest
    from logrouter.metrics import Metrics

    async def main() -> None:
        record = DrainRecord(1, "c", "d.1", "syslog://127.0.0.1:514", 0.0, 0.0)
        d = SyslogDrain(record, DrainOptions(buffer_lines=100, burst_lines=1000))
        ours, theirs = socket.socketpair()
        d._direct = ours  # connected; every write has gone out whole (no partial write held)
        ingest = Ingest(ChannelTable(10), Metrics(), backpressure_max=1.0)
        budget = ingest.budget()
        delivered = 0

        async def deliver_when_scheduled() -> None:  # the writer gets the CPU 50 ms later
            nonlocal delivered
            while True:
                await trio.sleep(0.05)
                _, lines = d.buffer.pop_batch(max_lines=10_000)
                d.succeeded(len(lines))
                delivered += len(lines)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(deliver_when_scheduled)
            start = trio.current_time()
            for _ in range(200):  # 10 s of reads, each pushing the drain past buffer_lines
                pressured = [d] if d.push(LINES * 3) else []
                if pressured:
                    await ingest.wait_for_room(pressured, budget)
            waited = trio.current_time() - start
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
        ours.close()
        theirs.close()
        assert waited >= 9.0  # ingest waited its turn each time: far past one budget
        assert not d.slow and d.dropped == 0 and delivered == 200 * 300

    run(main)


def test_an_http_drain_is_receiver_bound_only_while_its_receiver_owes_an_answer() -> None:
    import socket

    from drains.http_drain import RESPONSE_GRACE, HttpDrain
    from logrouter.transport.httpclient import HttpConnection

    async def main() -> None:
        record = DrainRecord(2, "c", "d.2", "http://127.0.0.1:9/", 0.0, 0.0)
        d = HttpDrain(record, DrainOptions(buffer_lines=100, burst_lines=1000))
        assert d.receiver_bound  # not connected yet
        ours, theirs = socket.socketpair()
        d._conn = conn = HttpConnection(trio.SocketStream(trio.socket.from_stdlib_socket(ours)))
        assert not d.receiver_bound  # connected, nothing in flight: waiting for its turn
        conn.in_flight, conn.sent_at = True, trio.current_time()
        assert not d.receiver_bound  # just sent: the receiver cannot have answered yet
        await trio.sleep(RESPONSE_GRACE)
        assert d.receiver_bound  # the receiver has not answered
        theirs.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        assert not d.receiver_bound  # it has: the answer waits for this router to read it
        d.failed("HTTP 500")
        assert d.receiver_bound  # failing
        theirs.close()
        await conn.aclose()

    run(main)


def test_a_drain_found_waiting_on_its_receiver_only_at_the_end_of_the_wait_is_not_marked_slow(
        ) -> None:
    """On a router busy with its own CPU an HTTP drain is nearly always turning over: its
    receiver answered long ago, and the request that just went out is the only one it owes.
    Looking at that one instant made every such wait the receiver's fault (HTTP drains were
    marked slow and dropped lines under flat-out load although their receivers kept up). The
    wait is judged by how much of it the receiver owed an answer."""
    from logrouter.core.channels import ChannelTable
    from logrouter.ingest.pipeline import Ingest
    from logrouter.metrics import Metrics

    class TurningOver(Idle):
        owes_from = 0.0

        @property
        def receiver_bound(self) -> bool:  # owes an answer only in the wait's last 10 ms
            return trio.current_time() >= self.owes_from

    async def main() -> None:
        d = TurningOver(DrainRecord(1, "c", "d.1", "https://logs.example.com/", 0.0, 0.0),
                        DrainOptions(buffer_lines=100, burst_lines=1000))
        ingest = Ingest(ChannelTable(10), Metrics(), backpressure_max=1.0)
        budget = ingest.budget()
        for _ in range(5):
            d.push(LINES)
        start = trio.current_time()
        d.owes_from = start + 0.99
        await ingest.wait_for_room([d], budget)
        assert trio.current_time() - start == 1.0  # no room made: the whole budget waited
        assert not d.slow and d.dropped == 0
        assert budget.available(trio.current_time()) >= 0.9  # little of it charged
        d.owes_from = trio.current_time()  # now it owes answers the whole time
        for _ in range(3):
            await ingest.wait_for_room([d], budget)
        assert d.slow and d.dropped == 400

    run(main)


def test_connections_waiting_on_one_slow_drain_mark_it_slow_once() -> None:
    """Several connections wait on the same drain; when it does not catch up, it is one
    finding (one warning, one strike): not one per waiter, each doubling the cool-down."""
    from logrouter.core.channels import ChannelTable
    from logrouter.ingest.pipeline import Ingest
    from logrouter.metrics import Metrics

    async def main() -> None:
        d = Idle(DrainRecord(1, "c", "d.1", "https://logs.example.com/", 0.0, 0.0),
                 DrainOptions(buffer_lines=100, burst_lines=1000))
        ingest = Ingest(ChannelTable(10), Metrics(), backpressure_max=1.0)
        for _ in range(5):
            d.push(LINES)
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(ingest.wait_for_room, [d], ingest.budget())
        assert d.slow and d.dropped == 400
        assert d._slow_strikes == 1
        assert d._slow_until == start + 1.0 + SLOW_COOLDOWN

    run(main)


def test_marking_a_drain_slow_logs_the_lines_it_really_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A memory buffer shrunk to ``buffer_lines`` loses the excess; a spooled drain's lines go
    to disk instead, and its ``drain_slow`` line says so (it once claimed them lost)."""
    def slow_lines() -> list[dict[str, object]]:
        return [r.msg for r in caplog.records
                if isinstance(r.msg, dict) and r.msg.get("at") == "drain_slow"]

    async def main() -> None:
        memory = drain()
        spooled = drain()
        spooled.buffer = SpoolQueue(str(tmp_path / "spool"), 10 * 1024 * 1024,
                                    memory.buffer.capacity)
        await spooled.buffer.ready()
        for d in (memory, spooled):
            d._apply_capacity()
            for _ in range(5):
                d.push(LINES)
            await d.wait_room(trio.current_time() + 1.0)
            assert d.slow
        assert memory.dropped == 400 and spooled.dropped == 0 and spooled.buffer.lost == 0
        assert len(spooled.buffer) == 500
        assert [line["lost"] for line in slow_lines()] == [400, 0]

    with caplog.at_level(logging.WARNING, logger="logrouter.drains"):
        run(main)


def test_a_drain_waiting_for_its_connection_slot_is_not_marked_slow() -> None:
    """Connection attempts are paced node-wide (drains.pacing): after a restart the last
    drains wait seconds for their slot. That wait is the router's own doing, so ingest waits
    for them uncharged, as for its own CPU, and they neither are marked slow nor drop lines."""
    from drains.pacing import ConnectPacer
    from drains.syslog_drain import SyslogDrain
    from logrouter.core.channels import ChannelTable
    from logrouter.ingest.pipeline import Ingest
    from logrouter.metrics import Metrics

    async def main() -> None:
        pacer = ConnectPacer(0.2)  # a slot every 5 s
        await pacer.wait()  # another drain took the slot that is free now
        record = DrainRecord(1, "c", "d.1", "syslog://127.0.0.1:9", 0.0, 0.0)
        d = SyslogDrain(record, DrainOptions(buffer_lines=100, burst_lines=1000,
                                             connect_pacer=pacer))
        ingest = Ingest(ChannelTable(10), Metrics(), backpressure_max=1.0)
        budget = ingest.budget()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(d.deliver_forever)
            await trio.sleep(0.1)
            assert d.receiver_bound is False  # waiting for its slot: the router's pacing
            for _ in range(3):  # 3 s of reads while it waits
                if d.push(LINES * 3):
                    await ingest.wait_for_room([d], budget)
            assert not d.slow and d.dropped == 0 and len(d.buffer) == 900
            nursery.cancel_scope.cancel()

    run(main)


class _StallsAfterSending(trio.abc.Stream):
    """A socket stream whose every send is followed by a stall of the whole event loop (a
    paused container, a long step of another task) during which the receiver answers
    ``answer``: the yield trio makes after a send returns only once the stall is over."""

    def __init__(self, ours: object, theirs: object, answer: bytes, stall: float) -> None:
        import socket

        assert isinstance(ours, socket.socket) and isinstance(theirs, socket.socket)
        self.inner = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        self.socket = self.inner.socket  # what HttpConnection.response_arrived polls
        self.theirs = theirs
        self.answer = answer
        self.stall = stall

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        import time

        await self.inner.send_all(data)
        self.theirs.sendall(self.answer)
        time.sleep(self.stall)  # the node held: its deadlines pass, nothing runs
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.theirs.close()


@pytest.mark.parametrize(("answer", "error"), [
    (b"HTTP/1.1 204 No Content\r\n\r\n", None),  # answered in time: read, not sent again
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", "timeout"),  # half an answer
    (b"", "timeout"),  # no answer at all
])
def test_an_http_drain_reads_an_answer_that_came_while_the_router_was_stalled(
        answer: bytes, error: str | None) -> None:
    """The response timeout runs on this router's clock. A router held up past it found the
    receiver's answer waiting in the socket and gave up on it all the same, sending the batch
    again (a duplicate for every receiver that does not look at Logplex-Frame-Id). An answer
    that has arrived when the router looks is read (for at most a grace more); one that has
    not, or that stops half-way, is still a timeout."""
    import socket

    from drains.http_drain import HttpDrain
    from logrouter.transport.httpclient import HttpConnection

    async def main() -> None:
        record = DrainRecord(2, "c", "d.2", "http://127.0.0.1:9/", 0.0, 0.0)
        d = HttpDrain(record, DrainOptions(buffer_lines=100, burst_lines=1000,
                                           http_response_timeout=0.2))
        ours, theirs = socket.socketpair()
        d._conn = HttpConnection(_StallsAfterSending(ours, theirs, answer, stall=0.5))
        with trio.fail_after(5):
            got, _ = await d._attempt(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert got == error

    trio.run(main)  # the real clock: the stall is real time
