"""Tail subscribers: a live session's bounded view of one channel.

A :class:`TailSubscriber` is a channel consumer. ``push`` (on the ingest path)
appends to its own :class:`~logrouter.buffer.BoundedBuffer` — 1,024 lines by
default, dropping the oldest — and wakes the session task, so a slow client
never slows ingest. The session task takes batches with :meth:`wait_batch`;
a loss comes out first and is shown as the L11 line.

Every line a channel ever posts has a sequence number (see
:class:`~logrouter.history.History`); the subscriber knows the number of
each line it hands out, which SSE sends as the event ``id``.
"""

from __future__ import annotations

import trio

from logrouter.buffer import BoundedBuffer, Loss

__all__ = ["TailBatch", "TailSubscriber"]

TailBatch = tuple[Loss | None, int, list[bytes]]


class TailSubscriber:
    """Buffers a channel's lines for one tail session.

    Args:
        capacity: lines buffered at most.
        start_seq: sequence number of the channel's newest line when subscribing.
    """

    def __init__(self, capacity: int, start_seq: int) -> None:
        self.buffer = BoundedBuffer(capacity)
        self.start_seq = start_seq
        self.closed = False
        self._wakeup = trio.Event()

    def push(self, lines: list[bytes]) -> None:
        self.buffer.push_many(lines)
        self._wakeup.set()

    def close(self) -> None:
        """End the subscription (its channel went away); :meth:`wait_batch` returns None."""
        self.closed = True
        self._wakeup.set()

    async def wait_batch(self, max_lines: int = 1024) -> TailBatch | None:
        """Wait for lines; return ``(loss, first_seq, lines)``, or None once closed."""
        buffer = self.buffer
        while not len(buffer) and not self.closed:
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        if self.closed:
            return None
        first_seq = self.start_seq + buffer.pushed - len(buffer) + 1
        loss, lines = buffer.pop_batch(max_lines)
        return loss, first_seq, lines
