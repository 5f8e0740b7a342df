"""TailHub's ring: bursts a reader keeps up with are kept whole, slow readers lose the oldest
lines and are told how many (the L11 count)."""

from __future__ import annotations

import trio
import trio.testing

from logrouter.core.tail import TailHub
from logrouter.protocol.tailfmt import TailFilter


def lines(start: int, count: int) -> list[bytes]:
    return [b"<190>1 2026-11-27T10:00:00+00:00 host app web.1 - - line %d" % i
            for i in range(start, start + count)]


def run(main: object) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def test_a_burst_larger_than_the_buffer_reaches_a_reader_that_keeps_up() -> None:
    async def main() -> None:
        hub = TailHub(1024, last_seq=0)
        for b in range(5):  # one scheduler round's reads: 3,000 lines before the writer runs
            hub.push(lines(b * 600, 600))
        got = 0
        after = 0
        while after < 3000:  # in pieces of about the buffer's size, nothing skipped
            skipped, data, after = hub.read(after, TailFilter(), sse=True)
            assert skipped == 0 and data.count(b"data: ") <= 1024 + 600
            got += data.count(b"data: ")
        assert got == 3000 and data.endswith(b"id: 3000\n\n")

    run(main)


def test_a_whole_round_of_ingest_in_one_post_reaches_a_reader_that_keeps_up() -> None:
    """Four connections' bursts to one app can be posted as one round of 200,000 lines; a
    tail that keeps up gets all of them (the ring used to keep 64 times its capacity: 65,536)."""
    from logrouter.ingest.pipeline import Ingest

    async def main() -> None:
        assert TailHub.ROUND_LINES >= Ingest.ROUND_LINES
        hub = TailHub(1024, last_seq=0)
        hub.push(lines(0, 200_000))
        got = after = 0
        while after < 200_000:
            skipped, data, after = hub.read(after, TailFilter(), sse=False)
            assert skipped == 0
            got += data.count(b"\n")
        assert got == 200_000

    run(main)


def test_a_reader_behind_for_longer_than_the_grace_loses_the_oldest_and_counts_them() -> None:
    async def main() -> None:
        hub = TailHub(1024, last_seq=0)
        hub.push(lines(0, 600))
        await trio.sleep(1)  # the reader did not come for a second
        hub.push(lines(600, 600))
        skipped, data, last = hub.read(0, TailFilter(), sse=False)
        assert skipped == 600 and last == 1200
        assert data.count(b"\n") == 600 and b"line 600\n" in data and b"line 599\n" not in data

    run(main)


def test_even_within_the_grace_the_ring_is_bounded() -> None:
    async def main() -> None:
        hub = TailHub(10, last_seq=0)
        hub.ROUND_LINES = 100  # below BURST_FACTOR * capacity: that bound applies
        for b in range(100):
            hub.push(lines(b * 10, 10))
        skipped, data, last = hub.read(0, TailFilter(), sse=False)
        assert skipped == 1000 - 10 * TailHub.BURST_FACTOR
        assert last == 1000 - 10 * TailHub.BURST_FACTOR + 10 and data.count(b"\n") == 10

    run(main)


def test_a_batch_beyond_the_hard_bound_keeps_its_newest_lines() -> None:
    async def main() -> None:
        hub = TailHub(2, last_seq=5)
        hub.ROUND_LINES = 10  # below BURST_FACTOR * capacity: that bound applies
        hub.push(lines(0, 1000))
        skipped, data, last = hub.read(5, TailFilter(), sse=False)
        assert last == 1005 and skipped == 1000 - 2 * TailHub.BURST_FACTOR
        assert data.endswith(b"line 999\n")

    run(main)


def test_a_large_batch_is_read_in_pieces() -> None:
    async def main() -> None:
        hub = TailHub(100_000, last_seq=0)
        hub.push([line + b" " + b"x" * 400 for line in lines(0, 5000)])  # one read of a busy app
        after, reads, got = 0, 0, 0
        while after < 5000:
            skipped, data, after = hub.read(after, TailFilter(), sse=False)
            assert skipped == 0 and data.count(b"\n") <= TailHub.BATCH_LINES
            got += data.count(b"\n")
            reads += 1
        assert got == 5000 and reads >= 5

    run(main)
