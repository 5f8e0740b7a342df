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

Lines go out as records that fill what is left of the spool's newest segment, so a
segment stays near ``segment_bytes`` and a disk with less room than a whole flush still
takes what fits. A write that fails (disk full, permissions) is logged at most once a
minute per spool, cut back off the segment (no torn record is left behind) and not
tried again for that spool for ``write_retry`` seconds; its lines stay in memory and
are written by a later flush, or dropped and counted once memory runs over (see the
queue). A failed write or ledger never keeps a spool from deleting the segments whose
lines were all delivered: on a full disk that is what makes room again (a ledger that
could not be written is written again once they are gone). At shutdown
(:meth:`Spooler.close`) the lines the disk did not take are counted lost, so the next
run reports them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import trio

from logrouter.logs import Throttle, get_logger
from logrouter.protocol.spoolfmt import Ledger, encode_record
from logrouter.spool import files
from logrouter.spool.queue import SpoolQueue

__all__ = ["Spooler"]

log = get_logger("logrouter.spool")

FLUSH_INTERVAL = 0.05
SYNC_INTERVAL = 1.0
WRITE_RETRY = 1.0


@dataclass(slots=True)
class _Append:
    """One record, of lines ``first`` to ``end``, to append to ``segment`` at byte ``at``."""

    segment: files.Segment
    new_segment: bool
    at: int
    first: int
    end: int
    record: bytes


@dataclass(slots=True)
class _Work:
    """One spool's file work in a flush, and how it went."""

    queue: SpoolQueue
    appends: list[_Append] = field(default_factory=list)
    ledger: Ledger | None = None
    delete: tuple[files.Segment, ...] = ()
    appended: int = 0  # appends done, in order (a failed one stops the rest)
    write_error: str = ""
    ledger_error: str = ""
    undeleted: list[files.Segment] = field(default_factory=list)


def _error(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc}"


def _do(work: list[_Work], sync: bool) -> None:
    """The file work of one flush (in a worker thread): for each spool its ledger, then its
    deletes, then its appends — so the disk never holds the segments past the bound and the
    lines that replace them at once; each step is tried whatever became of the one before (a
    ledger that failed is tried once more after the deletes: they may have made room)."""
    for w in work:
        if w.ledger is not None:
            try:
                files.write_ledger(w.queue.directory, w.ledger, sync)
            except OSError as exc:
                w.ledger_error = _error(exc)
        for seg in w.delete:
            try:
                os.unlink(seg.path)
            except FileNotFoundError:
                pass
            except OSError:
                w.undeleted.append(seg)
        if w.ledger is not None and w.ledger_error and len(w.undeleted) < len(w.delete):
            try:
                files.write_ledger(w.queue.directory, w.ledger, sync)
                w.ledger_error = ""
            except OSError as exc:
                w.ledger_error = _error(exc)
        for a in w.appends:
            try:
                files.append(a.segment.path, a.record, sync, a.at)
            except OSError as exc:
                w.write_error = _error(exc)
                break
            w.appended += 1


class Spooler:
    """Writes the node's drain spools; see the module docstring.

    Args:
        flush_interval: seconds between writes.
        sync_interval: seconds between fsyncs.
        write_retry: seconds a spool whose write failed waits before its lines are tried again.
    """

    def __init__(self, flush_interval: float = FLUSH_INTERVAL,
                 sync_interval: float = SYNC_INTERVAL, write_retry: float = WRITE_RETRY) -> None:
        self.flush_interval = flush_interval
        self.sync_interval = sync_interval
        self.write_retry = write_retry
        self.queues: dict[SpoolQueue, None] = {}
        self._wakeup = trio.Event()
        self._lock = trio.Lock()
        self._last_sync = 0.0
        self._error_log = Throttle(60.0)  # per spool directory
        self._retry_write_at: dict[SpoolQueue, float] = {}  # after a failed write (monotonic)
        self._undeleted: dict[SpoolQueue, list[files.Segment]] = {}  # to delete again

    def register(self, queue: SpoolQueue) -> None:
        """Flush ``queue`` from now on (build it with ``wants_flush=spooler.wake``)."""
        self.queues[queue] = None

    def wake(self) -> None:
        """Flush now rather than at the next tick (a queue is over its memory)."""
        self._wakeup.set()

    def unregister(self, queue: SpoolQueue) -> None:
        self.queues.pop(queue, None)
        self._retry_write_at.pop(queue, None)
        self._undeleted.pop(queue, None)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush until cancelled (call :meth:`flush` once more after, at shutdown)."""
        task_status.started()
        while True:
            with trio.move_on_after(self.flush_interval):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            await self.flush()

    async def flush(self, queues: list[SpoolQueue] | None = None, sync: bool | None = None,
                    everything: bool = False, retry_now: bool = False) -> None:
        """Write what the queues (all registered ones by default) should have on disk by now:
        the lines that waited a flush interval, or with ``everything`` all undelivered ones
        (shutdown; an HTTP batch about to be sent); ``retry_now`` tries a spool whose last
        write failed without waiting ``write_retry``."""
        async with self._lock:
            now = time.monotonic()
            if sync is None:
                sync = now - self._last_sync >= self.sync_interval
            if retry_now:
                self._retry_write_at.clear()
            work = [w for q in (queues if queues is not None else list(self.queues))
                    if q.recovered and (w := self._plan(q, everything, now)) is not None]
            if not work:
                return
            with trio.CancelScope(shield=True):  # what was written must be recorded as written
                await trio.to_thread.run_sync(_do, work, sync)
            if sync:
                self._last_sync = now
            for w in work:
                self._commit(w)

    async def close(self) -> None:
        """At shutdown: write every undelivered line; those the disk does not take are
        counted lost (logged, and reported by the next run's L10 when the ledger could be
        written)."""
        await self.flush(sync=True, everything=True, retry_now=True)
        abandoned = False
        for q in list(self.queues):
            lost = q.abandon_unwritten()
            if lost:
                abandoned = True
                log.error("spool_lines_lost", dir=q.directory, lines=lost,
                          reason="not written at shutdown")
        if abandoned:
            await self.flush(sync=True, retry_now=True)

    def _plan(self, q: SpoolQueue, everything: bool, now: float) -> _Work | None:
        w = _Work(q)
        first, lines = 0, list[bytes]()
        if now >= self._retry_write_at.get(q, 0.0):
            first, lines = q.unpersisted(everything)
        incoming = 0
        gave_up = False
        if lines:
            # records that fill what is left of a segment (a segment stays near its size), so
            # a disk with less room than the whole write left still takes what fits
            sample = lines[:16]
            line_bytes = sum(map(len, sample)) / len(sample) + 8  # and msgpack's framing
            segment = q.segments[-1] if q.segments else None
            fit = max(1, int(q.max_bytes / line_bytes))
            if len(lines) > fit:
                # more than the whole spool holds: only the newest go, into a new segment;
                # the others are lost, and so is every older segment (the oldest go first)
                skip = len(lines) - fit
                q.give_up_unwritten(first + skip)
                first, lines, segment, gave_up = first + skip, lines[skip:], None, True
            size = segment.size if segment is not None else q.segment_bytes
            at = 0
            while at < len(lines):
                start = first + at
                new = segment is None or q.segment_bytes - size < q.segment_bytes // 8
                if segment is None or new:
                    segment = files.Segment(start, start, files.segment_path(q.directory, start), 0)
                    size = 0
                part = lines[at:at + max(1, int((q.segment_bytes - size) / line_bytes))]
                record = encode_record(start, part)
                w.appends.append(_Append(segment, new, size, start, start + len(part), record))
                size += len(record)
                incoming += len(record)
                at += len(part)
        into_last = bool(w.appends) and not w.appends[0].new_segment
        dropped = q.over_bound(q.max_bytes if gave_up else incoming, into_last=into_last)
        done = q.done_segments()
        w.delete = (*self._undeleted.pop(q, ()), *dropped, *done)
        if q.ledger_dirty or w.delete:
            w.ledger = q.ledger()
            q.ledger_dirty = False
        if not w.appends and w.ledger is None and not w.delete:
            return None
        return w

    def _commit(self, w: _Work) -> None:
        q = w.queue
        if w.ledger_error:
            q.ledger_dirty = True
        if w.undeleted:
            self._undeleted[q] = w.undeleted
        for a in w.appends[:w.appended]:
            if a.new_segment:
                q.add_segment(a.segment)
            q.grew(a.segment, a.first, a.end, len(a.record))
            q.persisted_to(a.end)
        if w.write_error:
            q.write_failed()
            self._retry_write_at[q] = time.monotonic() + self.write_retry
        elif w.appends:
            self._retry_write_at.pop(q, None)
        error = w.write_error or w.ledger_error or (
            f"could not delete {len(w.undeleted)} segment(s)" if w.undeleted else "")
        if error:
            if self._error_log.passes(q.directory):
                log.error("spool_write_failed", dir=q.directory, error=error)
