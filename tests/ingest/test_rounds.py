"""Reads routed in the same pass of the event loop are posted together, once per channel."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from prometheus_client import Counter

from logrouter.core.channels import ChannelTable
from logrouter.ingest.pipeline import Ingest
from logrouter.metrics import Metrics
from logrouter.models import ChannelRecord, TokenRecord
from logrouter.protocol.framing import FrameSplitter
from tests.helpers import octet


class Recorder:
    """A consumer that records each push; it asks for room when ``pushback`` is set."""

    def __init__(self, pushback: bool = False) -> None:
        self.pushes: list[list[bytes]] = []
        self.pushback = pushback

    def push(self, lines: list[bytes]) -> bool:
        self.pushes.append(list(lines))
        return self.pushback

    async def wait_room(self, deadline: float) -> float:
        return 0.0

    def close(self) -> None:
        pass


def _setup(apps: int = 1, pushback: bool = False) -> tuple[Ingest, list[Recorder], Counter]:
    table = ChannelTable(100)
    recorders = []
    for i in range(apps):
        channel = table.put_channel(ChannelRecord(id=f"app{i}", name=f"app{i}", created_at=0.0))
        table.put_token(TokenRecord(token=f"t.tok{i}", channel_id=f"app{i}", name="app"))
        recorder = Recorder(pushback)
        channel.add_consumer(recorder, drain=True)
        recorders.append(recorder)
    metrics = Metrics()
    return Ingest(table, metrics), recorders, metrics.received_tcp


def _frames(conn: str, count: int, app: int = 0, start: int = 0) -> list[bytes]:
    return [f"<13>1 - h t.tok{app} web.1 - - {conn}{i}".encode()
            for i in range(start, start + count)]


def _msgs(lines: list[bytes]) -> list[str]:
    return [line.rsplit(b" ", 1)[1].decode() for line in lines]


def test_reads_of_one_pass_are_one_post_per_channel_in_each_connections_order() -> None:
    async def main() -> None:
        ingest, (rec,), received = _setup()
        results: list[object] = []

        async def connection(name: str) -> None:
            for _ in range(2):  # two reads: the second waits for the post of the first
                results.append(await ingest.frames(_frames(name, 3), received, name))

        async with trio.open_nursery() as nursery:
            for name in "abc":
                nursery.start_soon(connection, name)
        assert len(rec.pushes[0]) == 9  # the first reads of all three: one post
        assert len(rec.pushes) < 6  # fewer posts than reads
        for name in "abc":
            mine = [m for m in _msgs([line for p in rec.pushes for line in p]) if m[0] == name]
            assert mine == [f"{name}{i}" for i in (0, 1, 2)] * 2
        assert results == [[]] * 6

    trio.run(main)


def test_a_full_round_is_posted_at_once_and_only_once() -> None:
    async def main() -> None:
        ingest, (rec,), received = _setup()
        ingest.ROUND_LINES = 10
        with trio.testing.assert_no_checkpoints():  # a batch that fills a round alone
            await ingest.frames(_frames("x", 12), received, "x")
        assert [len(p) for p in rec.pushes] == [12]

        async def leader() -> None:
            await ingest.frames(_frames("a", 4), received, "a")

        for _ in range(100):  # until the scheduler runs this task while the leader yields
            del rec.pushes[:]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(leader)
                while ingest._round is None and not rec.pushes:
                    await trio.sleep(0)
                if rec.pushes:  # the leader had posted alone: try again
                    continue
                with trio.testing.assert_no_checkpoints():
                    await ingest.frames(_frames("b", 6), received, "b")
                assert [len(p) for p in rec.pushes] == [10]  # the batch that filled it posted
            assert [len(p) for p in rec.pushes] == [10]  # and the leader did not post again
            break
        else:
            raise AssertionError("never interleaved")

    trio.run(main)


def test_a_cancelled_batch_is_still_posted_with_its_round() -> None:
    async def main() -> None:
        ingest, (rec,), received = _setup()

        async def cancelled_leader() -> None:
            with trio.CancelScope() as scope:
                scope.cancel()
                await ingest.frames(_frames("a", 2), received, "a")

        async def cancelled_follower() -> None:
            await trio.sleep(0)
            with trio.CancelScope() as scope:
                scope.cancel()
                await ingest.frames(_frames("b", 2), received, "b")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancelled_leader)
            nursery.start_soon(cancelled_follower)
        assert sorted(_msgs([line for p in rec.pushes for line in p])) == ["a0", "a1", "b0", "b1"]
        assert received._value.get() == 4  # type: ignore[attr-defined]

    trio.run(main)


def test_every_batch_of_a_round_is_told_which_consumers_push_back() -> None:
    async def main() -> None:
        ingest, recorders, received = _setup(apps=2, pushback=True)
        pressured: dict[str, list[object]] = {}

        async def connection(name: str, app: int) -> None:
            pressured[name] = list(await ingest.frames(_frames(name, 2, app), received, name))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection, "a", 0)
            nursery.start_soon(connection, "b", 1)
        assert [len(r.pushes) for r in recorders] == [1, 1]
        assert sorted(map(id, pressured["a"])) == sorted(map(id, recorders))
        assert pressured["b"] == pressured["a"]

    trio.run(main)


def test_a_syslog_read_that_completes_no_frame_returns_at_once_and_the_next_is_posted() -> None:
    """``Ingest.read``: a read holding only the start of a frame routes nothing and returns at
    once, without a round or a pass of the event loop; the read that completes the frame is
    routed and posted with a read of another connection in the same pass, in one post."""
    async def main() -> None:
        ingest, (rec,), received = _setup()
        first, second = FrameSplitter(), FrameSplitter()
        a, b = ingest.feeder(), ingest.feeder()
        frame = _frames("a", 1)[0]
        wire = octet(frame)
        with trio.testing.assert_no_checkpoints():
            await ingest.read(a, first, wire[:10], received, "a")
        assert ingest._round is None and rec.pushes == []
        other = _frames("b", 1)[0]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ingest.read, a, first, wire[10:], received, "a")
            nursery.start_soon(ingest.read, b, second, b"%d %s\n" % (len(other), other),
                               received, "b")
        assert len(rec.pushes) == 1 and sorted(_msgs(rec.pushes[0])) == ["a0", "b0"]

    trio.run(main)


def _wire(conn: str, count: int, start: int = 0) -> bytes:
    """What a syslog connection sends: :func:`_frames` of app 0, octet-counted."""
    return octet(*_frames(conn, count, start=start))


def test_reads_with_more_waiting_join_one_round_and_a_read_without_waits_for_its_post() -> None:
    """A read that says more is waiting in its socket returns before its round is posted, so
    its connection's next reads join the same round while the round's lead yields (one post
    for all of them, each connection's lines in order); a read without ``more`` waits for
    the post of its round, as before."""
    async def main() -> None:
        ingest, (rec,), received = _setup()
        ingest.ROUND_PASSES = 1000

        async def busy(name: str) -> None:  # a connection with a backlog: five "full" reads
            feeder, splitter = ingest.feeder(), FrameSplitter()
            for k in range(5):
                await ingest.read(feeder, splitter, _wire(name, 2, 2 * k), received, name, True)
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(busy, "a")
            nursery.start_soon(busy, "b")
        # whichever began the round waited as its lead while the other's five reads joined
        # it: one post of 12 lines, then the lead's four other reads, alone, one post each
        assert [len(p) for p in rec.pushes] == [12, 2, 2, 2, 2]
        first = _msgs(rec.pushes[0])
        lead, other = sorted("ab", key=lambda name: sum(m[0] == name for m in first))
        assert [m for m in first if m[0] == other] == [f"{other}{i}" for i in range(10)]
        assert [m for p in rec.pushes for m in _msgs(p) if m[0] == lead] == [
            f"{lead}{i}" for i in range(10)]

        del rec.pushes[:]  # without a backlog the same reads wait for their post
        feeder, splitter = ingest.feeder(), FrameSplitter()
        for k in range(3):
            await ingest.read(feeder, splitter, _wire("c", 2, 2 * k), received, "c")
            assert len(rec.pushes) == k + 1

    trio.run(main)


def test_a_round_grows_for_at_most_round_passes_and_round_bytes() -> None:
    """However long a connection keeps saying more is waiting, the round it joins is posted
    after ``ROUND_PASSES`` passes of its lead, or at once when its reads held
    ``ROUND_BYTES``."""
    async def main() -> None:
        ingest, (rec,), received = _setup()
        ingest.ROUND_PASSES = 3

        async def busy(name: str, reads: int) -> None:
            feeder, splitter = ingest.feeder(), FrameSplitter()
            for k in range(reads):
                await ingest.read(feeder, splitter, _wire(name, 1, k), received, name, True)
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(busy, "a", 1)
            nursery.start_soon(busy, "b", 30)
        assert sum(len(p) for p in rec.pushes) == 31
        assert len(rec.pushes) >= 30 // 4  # about a post every three passes, not one in all
        lines = [m for p in rec.pushes for m in _msgs(p)]
        assert [m for m in lines if m[0] == "b"] == [f"b{i}" for i in range(30)]

        del rec.pushes[:]  # and at once, without a pass, once its reads hold ROUND_BYTES
        ingest.ROUND_PASSES, ingest.ROUND_BYTES = 1000, 100
        feeder, splitter = ingest.feeder(), FrameSplitter()
        with trio.testing.assert_no_checkpoints():
            await ingest.read(feeder, splitter, _wire("c", 4), received, "c", True)
        assert [len(p) for p in rec.pushes] == [4]

    trio.run(main)


def test_the_push_back_of_a_round_not_waited_for_is_settled_before_the_next_read() -> None:
    """A connection that went on without waiting for its round's post still waits for the
    drains that round pushed past their buffer: before its next read is routed."""
    async def main() -> None:
        ingest, (rec,), received = _setup(pushback=True)
        waited: list[str] = []

        async def wait_room(deadline: float) -> float:
            waited.append(f"wait after {len(rec.pushes)} posts")
            return 0.0

        rec.wait_room = wait_room  # type: ignore[method-assign]
        feeder, splitter = ingest.feeder(), FrameSplitter()
        for _ in range(100):  # until the lead is seen waiting (it may post before we look)
            del rec.pushes[:], waited[:]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ingest.read, ingest.feeder(), FrameSplitter(),
                                   _wire("L", 1), received, "L")
                while ingest._round is None and not rec.pushes:
                    await trio.sleep(0)
                if rec.pushes:
                    continue
                with trio.testing.assert_no_checkpoints():  # joins, does not wait
                    await ingest.read(feeder, splitter, _wire("b", 1), received, "b", True)
                assert feeder.unsettled is not None and waited == []
            break
        else:
            raise AssertionError("never interleaved")
        assert len(rec.pushes) == 1 and waited == ["wait after 1 posts"]  # the lead's wait
        await ingest.read(feeder, splitter, _wire("b", 1, 1), received, "b")
        # settled first (before the second read was routed), then the second read's own wait
        assert waited == ["wait after 1 posts"] * 2 + ["wait after 2 posts"]
        assert feeder.unsettled is None

    trio.run(main)


def test_a_round_spread_thin_over_many_channels_grows_past_enough() -> None:
    """``ROUND_ENOUGH`` lines are posted at once when the channels get ``ROUND_SPREAD`` lines
    each or more; spread thinner (thousands of apps) the round goes on to ``ROUND_LINES``."""
    async def main() -> None:
        ingest, recs, received = _setup(apps=4)
        ingest.ROUND_LINES, ingest.ROUND_ENOUGH, ingest.ROUND_SPREAD = 40, 20, 8
        with trio.testing.assert_no_checkpoints():  # 24 lines for 2 channels: 12 each, posted
            await ingest.frames(_frames("x", 12, app=0) + _frames("x", 12, app=1), received, "x")
        assert [len(p) for p in recs[0].pushes] == [12] and ingest._round is None
        del recs[0].pushes[:], recs[1].pushes[:]

        with pytest.raises(AssertionError, match="yielded"):  # 6 lines each for 4 channels,
            # thinner than 8 a channel: not posted at ROUND_ENOUGH, the lead yields a pass first
            with trio.testing.assert_no_checkpoints():
                await ingest.frames([f for app in range(4) for f in _frames("y", 6, app=app)],
                                    received, "y")
        assert [len(r.pushes[0]) for r in recs] == [6] * 4
        with trio.testing.assert_no_checkpoints():  # and at ROUND_LINES it is posted at once
            await ingest.frames([f for app in range(4) for f in _frames("z", 10, app=app)],
                                received, "z")
        assert [len(r.pushes[-1]) for r in recs] == [10] * 4

    trio.run(main)
