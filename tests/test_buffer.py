"""BoundedBuffer: drop-oldest, loss accounting, batches by count and bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logrouter.core.buffer import BoundedBuffer, LineParts, Loss
from tests.helpers import needs_native


def lines(*xs: int) -> list[bytes]:
    return [b"%d" % x for x in xs]


def test_drop_oldest_and_loss_reported_once() -> None:
    now = [100.0]
    b = BoundedBuffer(3, clock=lambda: now[0])
    assert b.push_many(lines(1, 2)) == 0
    assert b.push_many(lines(3, 4, 5)) == 2
    now[0] = 200.0
    b.push_many(lines(6))
    loss, got = b.pop_batch()
    assert loss is not None and (loss.count, loss.since) == (3, 100.0)
    assert got == lines(4, 5, 6)
    assert b.pop_batch() == (None, [])
    assert b.statistics().lost == 3 and b.statistics().pushed == 6


def test_pop_by_bytes_always_takes_one() -> None:
    b = BoundedBuffer(10)
    b.push_many([b"a" * 10, b"b" * 10, b"c" * 10])
    assert b.pop_batch(max_bytes=25)[1] == [b"a" * 10, b"b" * 10]
    b.push_many([b"x" * 100])
    assert b.pop_batch(max_bytes=5)[1] == [b"c" * 10]
    assert b.pop_batch(max_bytes=5)[1] == [b"x" * 100]


def test_unpop_restores_order_and_loss() -> None:
    b = BoundedBuffer(4, clock=lambda: 1.0)
    b.push_many(lines(1, 2, 3, 4, 5))
    loss, got = b.pop_batch(max_lines=2)
    b.push_many(lines(6, 7, 8))  # 2 slots were free: 8 displaced 4
    b.unpop(loss, got)  # the batch no longer fits at all
    loss2, rest = b.pop_batch()
    assert rest == lines(5, 6, 7, 8)
    assert loss2 is not None and loss2.count == 1 + 1 + 2


def test_resize_counts_excess() -> None:
    b = BoundedBuffer(5)
    b.push_many(lines(1, 2, 3, 4, 5))
    b.resize(2)
    loss, got = b.pop_batch()
    assert got == lines(4, 5) and loss is not None and loss.count == 3
    with pytest.raises(ValueError):
        BoundedBuffer(0)


@needs_native
def test_buffered_lines_are_not_walked_by_the_garbage_collector() -> None:
    """A drain buffer holds only bytes, so it is kept out of the cyclic GC: with 5,000 drains
    holding 1,024 lines each, a full collection took 129 ms walking them, 3 ms without."""
    import gc

    b = BoundedBuffer(4)
    pushed = lines(1, 2, 3)
    b.push_many(pushed)
    b.resize(2)
    assert not gc.is_tracked(b._lines._parts) and not gc.is_tracked(pushed)
    assert b.snapshot() == lines(2, 3) and not any(gc.is_tracked(part) for part in b._lines._parts)
    b.unpop(None, lines(0))
    assert not any(gc.is_tracked(part) for part in b._lines._parts)


def test_a_batch_that_is_the_oldest_push_is_that_list_and_pushes_are_not_changed() -> None:
    """Lines are kept as pushed, not copied line by line: a batch that is exactly the oldest
    push hands out that list; a partial batch or a drop slices, never changing a pushed list
    (ingest shares one list among a channel's history, drains and tails)."""
    b = BoundedBuffer(5)
    first, second = lines(1, 2, 3), lines(4, 5, 6)
    b.push_many(first)
    assert b.pop_batch()[1] is first
    b.push_many(first)
    b.push_many(second)  # one displaced: the head of `first`
    assert b.pop_batch(max_lines=1)[1] == lines(2)
    assert b.pop_batch(max_lines=3)[1] == lines(3, 4, 5)
    assert first == lines(1, 2, 3) and second == lines(4, 5, 6)
    assert b.pop_batch()[1] == lines(6) and len(b) == 0


class _Model:
    """The buffer's contract, plainly: a list and a loss count."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.loss = capacity, 0
        self.lines: list[bytes] = []

    def push(self, new: list[bytes]) -> int:
        self.lines += new
        over = max(0, len(self.lines) - self.capacity)
        self.lines, self.loss = self.lines[over:], self.loss + over
        return over


@given(st.integers(1, 12), st.lists(st.tuples(
    st.sampled_from(["push", "pop", "pop_bytes", "unpop", "resize"]), st.integers(0, 15)),
    max_size=40))
def test_the_buffer_behaves_as_a_plain_drop_oldest_list(capacity: int,
                                                        ops: list[tuple[str, int]]) -> None:
    b, m = BoundedBuffer(capacity, clock=lambda: 1.0), _Model(capacity)
    seq = 0
    last: tuple[Loss | None, list[bytes]] = (None, [])
    for op, k in ops:
        if op == "push":
            new = [b"x" * (i % 4) + b"%d" % (seq + i) for i in range(k)]
            seq += k
            assert b.push_many(list(new)) == m.push(new)
        elif op in ("pop", "pop_bytes"):
            loss, got = b.pop_batch(max_lines=k or None, max_bytes=8 if op == "pop_bytes" else None)
            want = m.lines[:k or len(m.lines)]
            if op == "pop_bytes" and want:
                taken, size = 1, len(want[0])
                while taken < len(want) and size + len(want[taken]) <= 8:
                    size += len(want[taken])
                    taken += 1
                want = want[:taken]
            assert got == want
            assert (loss.count if loss else 0) == m.loss
            m.lines, m.loss, last = m.lines[len(got):], 0, (loss, got)
        elif op == "unpop":
            loss, got = last
            b.unpop(loss, got)
            room = max(0, capacity - len(m.lines))
            kept = got[len(got) - room:] if room < len(got) else got
            m.loss += (loss.count if loss else 0) + len(got) - len(kept)
            m.lines, last = list(kept) + m.lines, (None, [])
        else:
            capacity = max(1, k)
            b.resize(capacity)
            m.capacity = capacity
            m.push([])
        assert len(b) == len(m.lines) and b.snapshot() == m.lines and b.capacity == capacity
        assert b.has_loss == (m.loss > 0)


def test_small_pushes_share_a_list_and_others_keep_their_own() -> None:
    """A list per push would cost a list's header per line at low rates: pushes under
    ``SMALL`` lines join the newest list while it has under ``JOINED`` (copies: no pushed
    list changes); bigger pushes are kept as they are."""
    b = BoundedBuffer(10_000)
    singles = [lines(i) for i in range(3 * LineParts.JOINED)]
    for one in singles:
        b.push_many(one)
    assert len(b._lines._parts) == 3 and b.snapshot() == lines(*range(3 * LineParts.JOINED))
    assert all(one == lines(i) for i, one in enumerate(singles))
    bigger = lines(*range(LineParts.SMALL))
    b.push_many(bigger)
    assert b._lines._parts[-1] is bigger


@given(st.lists(st.tuples(st.sampled_from(["extend", "drop", "keep_newest", "take", "prepend", "newest"]),
                          st.integers(0, 150)), max_size=40))
def test_line_parts_behave_as_a_plain_list(ops: list[tuple[str, int]]) -> None:
    """Every operation of the lists-kept FIFO against a list; no list given to it changes."""
    held, seq = LineParts(), 0
    model: list[bytes] = []
    given_lists: list[tuple[list[bytes], list[bytes]]] = []
    for op, k in ops:
        if op == "extend":
            new = [b"%d" % (seq + i) for i in range(k)]
            seq += k
            given_lists.append((new, list(new)))
            held.extend(new)
            model += new
        elif op == "drop":
            k = min(k, len(model))
            held.drop(k)
            model = model[k:]
        elif op == "keep_newest":
            assert held.keep_newest(k) == max(0, len(model) - k)
            model = model[max(0, len(model) - k):]
        elif op == "take":
            k = min(k, len(model))
            assert held.take(k) == model[:k]
            model = model[k:]
        elif op == "prepend":
            front = [b"p%d" % (seq + i) for i in range(k % 5)]
            seq += k % 5
            held.prepend(list(front))
            model = front + model
        else:
            assert held.newest(k) == model[len(model) - min(k, len(model)):]
        assert len(held) == len(model) and list(held) == model == held.to_list()
    assert all(now == then for now, then in given_lists)
