"""BoundedBuffer: the one queue type of logrouter; LineParts: how it and history hold lines.

Theory of operation
-------------------
A fixed-capacity FIFO of log lines that never blocks its producer and never
grows: when full, pushing displaces the *oldest* lines, which are counted as
lost together with the time of the first loss (Logplex ``logplex_msg_buffer``).
The consumer takes a batch with :meth:`pop_batch`; the loss carried since the
last batch comes out with it so the consumer can render it first (L10 for
drains, L11 for tails). Shrinking capacity counts the excess as lost too.

Pure data: no I/O, no trio. Producers call :meth:`push_many` once per ingest
batch, which keeps the batch's list itself: no per-line cost on the way in, and a
consumer that takes exactly what one push brought gets that list back — each line
object is touched by the consumer only (with thousands of drains, lines are cold
by then: each touch is a cache miss).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from logrouter.protocol.speedups import untrack

__all__ = ["POST_LINES", "BoundedBuffer", "BufferStatistics", "DrainQueue", "LineParts", "Loss",
           "PendingLoss", "line_deque"]

#: The lines one post of ingest may hand a consumer at once (a round: several connections'
#: reads, posted together; see ``ingest.pipeline``). Consumers that keep lines for a receiver
#: that keeps up (drain buffers, tail rings) hold at least this much, since the feeders learn
#: that they must wait only after the post.
POST_LINES = 524288


def line_deque(lines: Iterable[bytes] = (), maxlen: int | None = None) -> deque[bytes]:
    """A deque for lines only, kept out of the cyclic garbage collector: it only ever holds
    bytes, so it can be in no reference cycle, and a full collection would otherwise walk every
    line it holds (5,000 drain buffers of 1,024 lines: 129 ms a collection, 3 ms untracked)."""
    dq: deque[bytes] = deque(lines, maxlen=maxlen)
    untrack(dq)
    return dq


@dataclass(frozen=True, slots=True)
class Loss:
    """``count`` lines dropped, the first of them at ``since`` (Unix time)."""

    count: int
    since: float


def _untracked(lines: list[bytes]) -> list[bytes]:
    untrack(lines)
    return lines


class LineParts:
    """A FIFO of lines kept as the lists they came in, not copied line by line.

    Ingest hands each consumer of a channel the same list of a round's lines; keeping
    that list (``extend``) instead of copying its items into a deque spares a touch of
    every line object, and with thousands of channels those objects are cold by then
    (each touch a cache miss). A list given to :meth:`extend` is shared: it is never
    changed here, nor may its giver change it. What is dropped or taken in part is
    sliced into new lists; very small lists are joined into new ones (``SMALL``). Every list
    held is kept out of the cyclic GC (only bytes: no cycle; a full collection would
    otherwise walk every line).
    """

    __slots__ = ("_count", "_head", "_parts")

    #: A list of fewer lines than ``SMALL`` joins the newest list while that has fewer than
    #: ``JOINED`` (a copy): a list per line would cost 64 bytes a line, not 8, at low rates;
    #: a list of ``SMALL`` lines or more costs at most 7 a line, and is kept as it is.
    SMALL = 8
    JOINED = 64

    def __init__(self, lines: Iterable[bytes] = ()) -> None:
        self._parts: deque[list[bytes]] = deque()
        untrack(self._parts)
        self._count = 0  # lines held: in _parts, from _head on
        self._head = 0  # lines of the oldest list already dropped or taken
        first = list(lines)
        if first:
            self._parts.append(_untracked(first))
            self._count = len(first)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[bytes]:
        """The lines, oldest first."""
        skip = self._head
        for part in self._parts:
            yield from islice(part, skip, None) if skip else part
            skip = 0

    def to_list(self) -> list[bytes]:
        """A copy of the lines, oldest first (a list made at C speed, unlike ``list(self)``)."""
        out: list[bytes] = []
        skip = self._head
        for part in self._parts:
            out += part[skip:] if skip else part
            skip = 0
        return out

    def extend(self, lines: list[bytes]) -> None:
        """Append ``lines``, keeping the list itself (see the class docstring)."""
        n = len(lines)
        if not n:
            return
        parts = self._parts
        if n < self.SMALL and parts and len(parts[-1]) < self.JOINED:
            parts[-1] = _untracked(parts[-1] + lines)  # the same prefix: _head stays right
        else:
            untrack(lines)
            parts.append(lines)
        self._count += n

    def prepend(self, lines: list[bytes]) -> None:
        """Put ``lines`` (a list of the caller's own) before the oldest."""
        if not lines:
            return
        if self._head:
            self._parts[0] = _untracked(self._parts[0][self._head:])
            self._head = 0
        self._parts.appendleft(_untracked(lines))
        self._count += len(lines)

    def drop(self, n: int) -> None:
        """Let the oldest ``n`` lines go (``n`` at most ``len(self)``)."""
        parts = self._parts
        self._count -= n
        while n:
            rest = len(parts[0]) - self._head
            if rest <= n:
                parts.popleft()
                self._head = 0
                n -= rest
            else:
                self._head += n
                n = 0
        self._trim_head()

    def keep_newest(self, capacity: int) -> int:
        """Drop the oldest lines past ``capacity``; return how many went."""
        excess = self._count - capacity
        if excess <= 0:
            return 0
        self.drop(excess)
        return excess

    def take(self, n: int) -> list[bytes]:
        """Remove and return the oldest ``n`` lines (at most ``len(self)``): the oldest list
        itself when it is exactly those lines (shared: not to be changed)."""
        parts = self._parts
        if not n:
            return []
        self._count -= n
        first, head = parts[0], self._head
        if len(first) - head >= n:
            if len(first) - head == n:
                parts.popleft()
                self._head = 0
                return first if not head else first[head:]
            self._head = head + n
            self._trim_head()
            return first[head:head + n]
        out: list[bytes] = []
        while n:
            first, head = parts[0], self._head
            rest = len(first) - head
            if rest <= n:
                out += first[head:] if head else first
                parts.popleft()
                self._head = 0
                n -= rest
            else:
                out += first[head:head + n]
                self._head = head + n
                self._trim_head()
                n = 0
        return out

    def newest(self, n: int) -> list[bytes]:
        """A copy of the newest ``n`` lines (all, if fewer are held), oldest first."""
        n = min(n, self._count)
        if n <= 0:
            return []
        picked: list[list[bytes]] = []
        need = n
        for part in reversed(self._parts):
            if len(part) >= need:
                picked.append(part[len(part) - need:])
                break
            picked.append(part)
            need -= len(part)
        return [line for part in reversed(picked) for line in part]

    def clear(self) -> None:
        self._parts.clear()
        self._count = self._head = 0

    def _trim_head(self) -> None:
        """Once most of the oldest list is gone, keep only its rest (a new list): what was
        taken or dropped is let go, and each line is copied at most once this way."""
        head = self._head
        if head and 2 * head > len(self._parts[0]):
            self._parts[0] = _untracked(self._parts[0][head:])
            self._head = 0


class PendingLoss:
    """Lines a queue lost since its last batch was taken: how many, and when the first of
    them went (Unix time). The next batch carries them as a :class:`Loss` (its L10); a
    batch put back brings its loss back in."""

    __slots__ = ("_clock", "count", "since")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.count = 0
        self.since = 0.0

    def add(self, n: int) -> None:
        if not self.count:
            self.since = self._clock()
        self.count += n

    def take(self) -> Loss | None:
        """The loss so far (None when nothing was lost), and start counting afresh."""
        if not self.count:
            return None
        loss = Loss(self.count, self.since)
        self.count = 0
        return loss

    def carry(self, loss: Loss | None) -> None:
        """Merge back a loss a batch carried (the batch was put back)."""
        if loss is None:
            return
        self.since = min(self.since, loss.since) if self.count else loss.since
        self.count += loss.count


@dataclass(frozen=True, slots=True)
class BufferStatistics:
    capacity: int
    buffered: int
    pushed: int
    lost: int
    pending_loss: int


class DrainQueue(Protocol):
    """What a drain's queue offers: a :class:`BoundedBuffer` (memory), or a spool
    (:class:`logrouter.spool.SpoolQueue`, memory plus disk)."""

    spooled: bool
    resume: tuple[int, str] | None
    lost: int
    pushed: int

    @property
    def capacity(self) -> int: ...
    @property
    def has_loss(self) -> bool: ...
    @property
    def needs_fill(self) -> bool: ...
    @property
    def waits_for_disk(self) -> bool: ...
    def when_written(self, callback: Callable[[], None]) -> None: ...
    def __len__(self) -> int: ...
    def push_many(self, lines: list[bytes]) -> int: ...
    def pop_batch(self, max_lines: int | None = None, max_bytes: int | None = None,
                  ) -> tuple[Loss | None, list[bytes]]: ...
    def unpop(self, loss: Loss | None, lines: Iterable[bytes]) -> None: ...
    def lose(self, n: int) -> None: ...
    def ack(self) -> None: ...
    def begin_batch(self, lines: int, frame_id: str) -> None: ...
    def resize(self, capacity: int) -> None: ...
    async def ready(self) -> None: ...
    def statistics(self) -> BufferStatistics: ...


class BoundedBuffer:
    """Drop-oldest FIFO of ``bytes`` lines.

    The lines are a :class:`LineParts`: a push keeps its list (the caller must not change
    it after), and a batch that is exactly the oldest push is that list.

    Args:
        capacity: most lines held; at least 1.
        clock: returns Unix time; injected for tests.
    """

    __slots__ = ("_capacity", "_lines", "_loss", "lost", "pushed")

    #: Undelivered lines live on disk too (a spool); a memory buffer loses them on a crash.
    spooled = False
    #: An HTTP batch to resend first after a restart (only a spool knows one).
    resume: tuple[int, str] | None = None
    #: The next lines are on disk only (only a spool has a disk).
    needs_fill = False
    #: More lines wait in memory for the disk than memory is for (only a spool has a disk).
    waits_for_disk = False

    def __init__(self, capacity: int, clock: Callable[[], float] = time.time) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._lines = LineParts()
        self._loss = PendingLoss(clock)
        self.pushed = 0  # lines ever pushed
        self.lost = 0  # lines ever displaced

    @property
    def capacity(self) -> int:
        return self._capacity

    def when_written(self, callback: Callable[[], None]) -> None:
        """A memory buffer writes nothing to disk: ``callback`` is never called."""

    def __len__(self) -> int:
        return self._lines._count  # (asked per drain per round: one Python call, not two)

    @property
    def has_loss(self) -> bool:
        """Lines were lost since the last batch was taken."""
        return self._loss.count > 0

    def push_many(self, lines: list[bytes]) -> int:
        """Append ``lines`` (kept as they are: the caller must not change the list after);
        return how many old lines were displaced."""
        self._lines.extend(lines)
        self.pushed += len(lines)
        overflow = self._lines.keep_newest(self._capacity)
        if overflow:
            self._lose(overflow)
        return overflow

    def _lose(self, n: int) -> None:
        self._loss.add(n)
        self.lost += n

    def lose(self, n: int) -> None:
        """Count ``n`` lines lost outside the buffer (a batch a drain gave up on)."""
        if n > 0:
            self._lose(n)

    def pop_batch(self, max_lines: int | None = None, max_bytes: int | None = None,
                  ) -> tuple[Loss | None, list[bytes]]:
        """Take the oldest lines and the loss carried since the previous batch.

        Args:
            max_lines: take at most this many lines.
            max_bytes: stop before the batch's bytes would exceed this; the first
                line is always taken, however long.

        Returns:
            ``(loss, lines)``; ``loss`` is None when nothing was lost. ``lines`` may be a
            list as it was pushed (shared: not to be changed).
        """
        loss = self._loss.take()
        held = self._lines
        limit = len(held) if max_lines is None else min(max_lines, len(held))
        if max_bytes is not None and limit:
            taken = size = 0
            for line in held:
                if taken == limit or (taken and size + len(line) > max_bytes):
                    break
                size += len(line)
                taken += 1
            limit = taken
        return loss, held.take(limit)

    def unpop(self, loss: Loss | None, lines: Iterable[bytes]) -> None:
        """Put a batch back at the head (a delivery that did not start).

        Lines that no longer fit because newer ones arrived are counted lost.
        """
        lines = list(lines)
        room = self._capacity - len(self._lines)
        if room < len(lines):
            self._lose(len(lines) - max(room, 0))
            lines = lines[len(lines) - max(room, 0):]
        self._lines.prepend(lines)
        self._loss.carry(loss)

    async def ready(self) -> None:
        """Nothing to prepare before popping (a spool may have to read from disk)."""

    def ack(self) -> None:
        """The batch last popped was delivered: nothing to do, it left the buffer when
        popped (a spool keeps it until this call)."""

    def begin_batch(self, lines: int, frame_id: str) -> None:
        """An HTTP batch was popped (a spool records it to resend it after a crash)."""

    def resize(self, capacity: int) -> None:
        """Change capacity, keeping the newest lines; the excess counts as lost."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        excess = self._lines.keep_newest(capacity)
        if excess:
            self._lose(excess)

    def clear(self) -> None:
        self._lines.clear()

    def snapshot(self) -> list[bytes]:
        """A copy of the buffered lines, oldest first (the buffer is unchanged)."""
        return self._lines.to_list()

    def statistics(self) -> BufferStatistics:
        return BufferStatistics(self._capacity, len(self._lines), self.pushed, self.lost,
                                self._loss.count)
