"""Spooler: one task per node that writes every drain's spool, in worker threads.

Every ``flush_interval`` (or at once when a queue's memory runs ahead) it takes,
from each registered :class:`~logrouter.spool.queue.SpoolQueue`, the lines not
yet on disk, not yet delivered and already waiting at the previous flush, its
ledger if it changed, the segments it no
longer needs and those over its bound — then does all the file work for all
drains in one trip to a worker thread, and tells each queue what is on disk now.
Every ``sync_interval`` that work ends with fsync: a process crash (``kill -9``)
loses at most the last two ``flush_interval`` of lines (the page cache keeps
what was written); a machine crash at most the last ``sync_interval``.

A write that fails (disk full, permissions) is logged at most once a minute per
spool; its lines stay in memory and are written by a later flush, or dropped and
counted once memory runs over (see the queue).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import trio

from logrouter.logs import get_logger
from logrouter.protocol.spoolfmt import Ledger, encode_record
from logrouter.spool import files
from logrouter.spool.queue import SpoolQueue

__all__ = ["Spooler"]

log = get_logger("logrouter.spool")

FLUSH_INTERVAL = 0.05
SYNC_INTERVAL = 1.0


@dataclass(slots=True)
class _Work:
    queue: SpoolQueue
    first: int = 0
    end: int = 0
    record: bytes = b""
    segment: files.Segment | None = None
    new_segment: bool = False
    ledger: Ledger | None = None
    delete: tuple[files.Segment, ...] = ()
    error: str = ""


def _do(work: list[_Work], sync: bool) -> None:
    """The file work of one flush (in a worker thread): appends, then ledgers, then deletes."""
    for w in work:
        try:
            if w.record and w.segment is not None:
                files.append(w.segment.path, w.record, sync)
            if w.ledger is not None:
                files.write_ledger(w.queue.directory, w.ledger, sync)
            for seg in w.delete:
                try:
                    os.unlink(seg.path)
                except FileNotFoundError:
                    pass
        except OSError as exc:
            w.error = f"{type(exc).__name__}: {exc}"


class Spooler:
    """Writes the node's drain spools; see the module docstring.

    Args:
        flush_interval: seconds between writes.
        sync_interval: seconds between fsyncs.
    """

    def __init__(self, flush_interval: float = FLUSH_INTERVAL,
                 sync_interval: float = SYNC_INTERVAL) -> None:
        self.flush_interval = flush_interval
        self.sync_interval = sync_interval
        self.queues: dict[SpoolQueue, None] = {}
        self._wakeup = trio.Event()
        self._lock = trio.Lock()
        self._last_sync = 0.0
        self._error_logged: dict[str, float] = {}

    def register(self, queue: SpoolQueue) -> None:
        """Flush ``queue`` from now on (build it with ``wants_flush=spooler.wake``)."""
        self.queues[queue] = None

    def wake(self) -> None:
        """Flush now rather than at the next tick (a queue is over its memory)."""
        self._wakeup.set()

    def unregister(self, queue: SpoolQueue) -> None:
        self.queues.pop(queue, None)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush until cancelled (call :meth:`flush` once more after, at shutdown)."""
        task_status.started()
        while True:
            with trio.move_on_after(self.flush_interval):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            await self.flush()

    async def flush(self, queues: list[SpoolQueue] | None = None, sync: bool | None = None,
                    everything: bool = False) -> None:
        """Write what the queues (all registered ones by default) should have on disk by now:
        the lines that waited a flush interval, or with ``everything`` all undelivered ones
        (shutdown; an HTTP batch about to be sent)."""
        async with self._lock:
            now = time.monotonic()
            if sync is None:
                sync = now - self._last_sync >= self.sync_interval
            work = [w for q in (queues if queues is not None else list(self.queues))
                    if q.recovered and (w := self._plan(q, everything)) is not None]
            if not work:
                return
            with trio.CancelScope(shield=True):  # what was written must be recorded as written
                await trio.to_thread.run_sync(_do, work, sync)
            if sync:
                self._last_sync = now
            for w in work:
                self._commit(w)

    @staticmethod
    def _plan(q: SpoolQueue, everything: bool) -> _Work | None:
        w = _Work(q)
        first, lines = q.unpersisted(everything)
        if lines:
            w.first, w.end = first, first + len(lines)
            w.record = encode_record(first, lines)
            last = q.segments[-1] if q.segments else None
            if last is None or last.size >= q.segment_bytes:
                w.segment = files.Segment(first, first, files.segment_path(q.directory, first), 0)
                w.new_segment = True
            else:
                w.segment = last
        dropped = q.over_bound(len(w.record), into_last=not w.new_segment)
        done = q.done_segments()
        w.delete = (*dropped, *done)
        if q.ledger_dirty or w.delete:
            w.ledger = q.ledger()
            q.ledger_dirty = False
        if not w.record and w.ledger is None and not w.delete:
            return None
        return w

    def _commit(self, w: _Work) -> None:
        q = w.queue
        if w.error:
            q.ledger_dirty = True
            last = self._error_logged.get(q.directory, 0.0)
            if time.monotonic() - last > 60:
                self._error_logged[q.directory] = time.monotonic()
                log.error("spool_write_failed", dir=q.directory, error=w.error)
            return
        if w.record and w.segment is not None:
            if w.new_segment:
                q.add_segment(w.segment)
            q.grew(w.segment, w.first, w.end, len(w.record))
            q.persisted_to(w.end)
