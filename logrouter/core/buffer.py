"""BoundedBuffer: the one queue type of logrouter.

Theory of operation
-------------------
A fixed-capacity FIFO of log lines that never blocks its producer and never
grows: when full, pushing displaces the *oldest* lines, which are counted as
lost together with the time of the first loss (Logplex ``logplex_msg_buffer``).
The consumer takes a batch with :meth:`pop_batch`; the loss carried since the
last batch comes out with it so the consumer can render it first (L10 for
drains, L11 for tails). Shrinking capacity counts the excess as lost too.

Pure data: no I/O, no trio. Producers call :meth:`push_many` once per ingest
batch (a ``deque.extend``), so the per-line cost is a C-level append.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from logrouter.protocol.speedups import untrack

__all__ = ["POST_LINES", "BoundedBuffer", "BufferStatistics", "DrainQueue", "Loss", "PendingLoss",
           "line_deque"]

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

    Args:
        capacity: most lines held; at least 1.
        clock: returns Unix time; injected for tests.
    """

    __slots__ = ("_lines", "_loss", "lost", "pushed")

    #: Undelivered lines live on disk too (a spool); a memory buffer loses them on a crash.
    spooled = False
    #: An HTTP batch to resend first after a restart (only a spool knows one).
    resume: tuple[int, str] | None = None
    #: The next lines are on disk only (only a spool has a disk).
    needs_fill = False

    def __init__(self, capacity: int, clock: Callable[[], float] = time.time) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._lines = line_deque(maxlen=capacity)
        self._loss = PendingLoss(clock)
        self.pushed = 0  # lines ever pushed
        self.lost = 0  # lines ever displaced

    @property
    def capacity(self) -> int:
        maxlen = self._lines.maxlen
        assert maxlen is not None
        return maxlen

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def has_loss(self) -> bool:
        """Lines were lost since the last batch was taken."""
        return self._loss.count > 0

    def push_many(self, lines: list[bytes]) -> int:
        """Append ``lines``; return how many old lines were displaced."""
        n = len(lines)
        dq = self._lines
        overflow = len(dq) + n - dq.maxlen  # type: ignore[operator]
        dq.extend(lines)
        self.pushed += n
        if overflow > 0:
            self._lose(overflow)
            return overflow
        return 0

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
            ``(loss, lines)``; ``loss`` is None when nothing was lost.
        """
        loss = self._loss.take()
        dq = self._lines
        if max_bytes is None:
            if max_lines is None or max_lines >= len(dq):
                lines = list(dq)
                dq.clear()
                return loss, lines
            return loss, [dq.popleft() for _ in range(max_lines)]
        lines = []
        size = 0
        limit = len(dq) if max_lines is None else min(max_lines, len(dq))
        popleft = dq.popleft
        while len(lines) < limit:
            n = len(dq[0])
            if lines and size + n > max_bytes:
                break
            lines.append(popleft())
            size += n
        return loss, lines

    def unpop(self, loss: Loss | None, lines: Iterable[bytes]) -> None:
        """Put a batch back at the head (a delivery that did not start).

        Lines that no longer fit because newer ones arrived are counted lost.
        """
        lines = list(lines)
        dq = self._lines
        room = dq.maxlen - len(dq)  # type: ignore[operator]
        if room < len(lines):
            self._lose(len(lines) - max(room, 0))
            lines = lines[len(lines) - max(room, 0):]
        dq.extendleft(reversed(lines))
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
        old = self._lines
        excess = len(old) - capacity
        if excess > 0:
            self._lose(excess)
        self._lines = line_deque(old, maxlen=capacity)

    def clear(self) -> None:
        self._lines.clear()

    def snapshot(self) -> list[bytes]:
        """A copy of the buffered lines, oldest first (the buffer is unchanged)."""
        return list(self._lines)

    def statistics(self) -> BufferStatistics:
        return BufferStatistics(self.capacity, len(self._lines), self.pushed, self.lost,
                                self._loss.count)
