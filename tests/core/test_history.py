"""History: the same lines, numbers and answers whether its lines are raw or compressed."""

from __future__ import annotations

import random
from collections import deque

import trio
import trio.testing

from logrouter.history import History, HistoryCompactor, compress_lines


def check(h: History, ref: deque[bytes], seq: int) -> None:
    assert len(h) == len(ref) and h.seq == seq
    assert h.snapshot() == list(ref)
    for n in (0, 1, 7, len(ref) // 2, len(ref), len(ref) + 5):
        first, lines = h.last(n)
        want = list(ref)[len(ref) - min(n, len(ref)):]
        assert lines == want and first == seq - len(want) + 1
    if len(ref) >= 3:
        after = h.after(seq - 3)
        assert after is not None and after[1] == list(ref)[-3:]


def compact(h: History) -> None:
    seq, tail, lines = h.compaction_input()
    assert h.compacted(seq, bool(tail), compress_lines(tail, lines))


def test_random_extends_and_compactions_match_a_plain_ring() -> None:
    rng = random.Random(7)
    for _ in range(300):
        capacity = rng.randint(1, 700)
        h = History(capacity, seq=0)
        ref: deque[bytes] = deque(maxlen=capacity)
        seq = 0
        for _ in range(rng.randint(1, 25)):
            batch = [b"line %d" % (seq + i) for i in range(rng.randint(0, 400))]
            h.extend(batch)
            ref.extend(batch)
            seq += len(batch)
            if rng.random() < 0.5 and h.hot:
                compact(h)
            check(h, ref, seq)


def test_compaction_is_refused_when_lines_arrived_meanwhile() -> None:
    h = History(100, seq=0)
    h.extend([b"a", b"b"])
    seq, tail, lines = h.compaction_input()
    h.extend([b"c"])
    assert not h.compacted(seq, bool(tail), compress_lines(tail, lines))
    assert h.snapshot() == [b"a", b"b", b"c"] and h.hot == 3


def test_compactor_touches_only_quiet_channels() -> None:
    async def main() -> None:
        quiet, busy = History(1500, seq=0), History(1500, seq=0)
        line = b"<190>1 2026-11-26T10:00:00.000000+00:00 host app web.1 - - " + b"x" * 90
        quiet.extend([line] * 1500)
        busy.extend([line] * 1500)
        compactor = HistoryCompactor(lambda: {"q": quiet, "b": busy}, idle=5.0)
        await compactor.pass_once()  # first sight of both: nothing yet
        busy.extend([line])
        await compactor.pass_once()
        assert quiet.hot == 0 and busy.hot == 1500
        assert quiet.snapshot() == [line] * 1500 and compactor.compacted_lines == 1500

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
