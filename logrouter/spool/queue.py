"""SpoolQueue: a drain's queue that keeps what is not yet delivered on disk.

Theory of operation
-------------------
Every line pushed gets the next sequence number (seq). The queue tracks four
positions: ``acked`` (every seq below it was delivered), ``next_pop`` (the next
seq to hand to the drain; ``[acked, next_pop)`` is in flight), ``persisted``
(every seq below it is on disk or was delivered before it needed to be) and
``next`` (the seq the next push gets).

* Memory holds the newest lines, ``[mem_seq, next)``: push is a ``deque.extend``
  (no I/O on the ingest path). When memory holds more than ``memory_lines``,
  lines already on disk are evicted; a drain that reaches them reads them back
  (:meth:`fill`, in a worker thread) a segment at a time.
* The node's :class:`~logrouter.spool.spooler.Spooler` writes, every
  ``FLUSH_INTERVAL``, the lines not yet persisted, **not yet delivered and
  already waiting at the previous flush**, as one record per drain, and the
  ledger. With a receiver that keeps up, lines are delivered within one interval
  and never touch the disk; with one that is down they pile up on disk while
  memory stays bounded (when memory is over its size, every waiting line is
  written at once).
* While more lines wait in memory for the disk than ``memory_lines``
  (:attr:`waits_for_disk`), the drain asks its feeders to wait (see
  :meth:`drains.base.Drain.wait_room`); :meth:`when_written` tells it when lines
  reached the disk. Memory may let go of lines of a record the spooler is still
  writing: they count lost only if that write fails (:meth:`write_failed`), and a
  drain that reaches them waits for the write (:meth:`fill`).
* A delivered batch is acknowledged (:meth:`ack`); a failed one is put back
  (:meth:`unpop`) and sent again. Lines are dropped — counted, and reported by
  the next L10 — only when the spool exceeds ``max_bytes`` (the oldest segment
  goes; or, when more waits for one write than the whole spool holds, the oldest of
  those lines: :meth:`give_up_unwritten`) or when memory overflows faster than the disk
  takes it (a full disk).

A crash loses at most the lines accepted during the last two flush intervals,
and may resend what was delivered during them (at-least-once at the crash
boundary).
An HTTP batch in flight is recorded in the ledger before it is first sent, so a
restart resends exactly that batch with the same ``Logplex-Frame-Id``.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import trio

from logrouter.core.buffer import BufferStatistics, Loss, PendingLoss, line_deque
from logrouter.logs import get_logger
from logrouter.protocol.spoolfmt import Ledger
from logrouter.spool import files

__all__ = ["SpoolQueue"]

log = get_logger("logrouter.spool")

#: Largest segment file: a drain reading back from disk holds one decoded segment at a time.
SEGMENT_BYTES = 1024 * 1024
#: Lines kept from a segment read back (the rest is read again when reached).
REPLAY_LINES = 4096
#: Memory may run this many times ``memory_lines`` (or ``memory_cap``) ahead of the disk
#: before lines drop.
_MEMORY_HARD_FACTOR = 4


class SpoolQueue:
    """A drain queue spooled to ``directory``; see the module docstring.

    Args:
        directory: the drain's spool directory.
        max_bytes: the most the spool may hold on disk (oldest segment dropped past it).
        memory_lines: lines kept in memory before lines already on disk are evicted (the
            drain changes it with :meth:`resize`).
        memory_cap: lines memory may hold while the disk has not taken them yet (at least
            four times ``memory_lines``); past it the oldest of them are dropped, counted. The
            drain supervisor gives a burst's worth plus what one round of ingest may bring
            (feeders learn that they must wait only after a round is posted).
        clock: Unix time, for loss timestamps.
        wants_flush: called when memory is over ``memory_lines`` and lines must go to disk
            now (the spooler's :meth:`~logrouter.spool.spooler.Spooler.wake`).
    """

    spooled = True

    def __init__(self, directory: str, max_bytes: int, memory_lines: int,
                 clock: Callable[[], float] = time.time, memory_cap: int = 0,
                 wants_flush: Callable[[], None] = lambda: None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.memory_lines = max(1, memory_lines)
        self.memory_cap = memory_cap
        self.segment_bytes = max(64 * 1024, min(SEGMENT_BYTES, max_bytes // 8))
        self.recovered = False
        self._pre: list[bytes] = []  # pushed before recovery finished
        self._next = 0
        self._acked = 0
        self._next_pop = 0
        self._persisted = 0
        self._mem = line_deque()
        self._mem_seq = 0
        self._replay: deque[tuple[int, bytes]] = deque()  # read back from disk, seq order
        self._inflight: Sequence[int] = ()  # seqs of the batch in flight
        self.segments: deque[files.Segment] = deque()
        self.disk_bytes = 0
        self._loss = PendingLoss(clock)
        self._inflight_loss: Loss | None = None
        self.lost = 0
        self.pushed = 0
        self.batch: tuple[int, int, str] | None = None  # HTTP batch in flight (ledger)
        self.resume: tuple[int, str] | None = None  # (lines, frame id) to resend first
        self.ledger_dirty = False
        self._ripe = 0  # lines below this were pushed before the previous flush
        self._writing_end = 0  # end of the lines the spooler is writing (0: none)
        # lines of those gone from memory meanwhile, [lo, hi): lost if their write fails
        self._risk_lo = self._risk_hi = 0
        self._write_done: trio.Event | None = None  # set once that write is over
        self._on_written: Callable[[], None] = lambda: None
        self._full_logged = -1e9
        self._full_drops = 0
        self.wants_flush = wants_flush  # asks the spooler to flush now (Spooler.wake)

    # -- opening -------------------------------------------------------------------------

    async def recover(self) -> None:
        """Read the directory (in a worker thread) and take up where the last run stopped."""
        found = await trio.to_thread.run_sync(files.scan, self.directory)
        for what in found.damaged:
            log.error("spool_damaged", dir=self.directory, what=what)
        ledger = found.ledger
        self.segments = deque(found.segments)
        self.disk_bytes = sum(s.size for s in found.segments)
        end = max([ledger.acked, *(s.end for s in found.segments)])
        first = found.segments[0].first if found.segments else end
        self._acked = self._next_pop = max(ledger.acked, first)
        self._next = self._persisted = self._mem_seq = end
        if ledger.loss is not None:
            self._loss.count, self._loss.since = ledger.loss
        if found.lost:
            self._lose(found.lost)
        if ledger.batch is not None and ledger.batch[0] == self._next_pop:
            self.resume = (ledger.batch[1], ledger.batch[2])
        self.recovered = True
        pre, self._pre = self._pre, []
        if pre:
            self.push_many(pre)
        if self._next > self._next_pop:
            log.info("spool_recovered", dir=self.directory, lines=self._next - self._next_pop,
                     segments=len(self.segments), bytes=self.disk_bytes)

    # -- the queue interface (what drains call) -------------------------------------------

    async def ready(self) -> None:
        """Before popping: finish opening, and read back lines that are on disk only."""
        if not self.recovered:
            await self.recover()
        if self.needs_fill:
            await self.fill()

    @property
    def capacity(self) -> int:
        return self.memory_lines

    def __len__(self) -> int:
        """Lines waiting to be handed to the drain (not counting the batch in flight)."""
        return self._next - self._next_pop + len(self._pre)

    @property
    def waits_for_disk(self) -> bool:
        """More undelivered lines wait in memory for the disk than ``memory_lines``: a
        feeder should let the spooler write them before it pushes more (past the memory's
        hard bound the oldest of them would be dropped)."""
        return self._next - self._unwritten_from > self.memory_lines

    @property
    def _unwritten_from(self) -> int:
        """The first line neither on disk, nor delivered, nor dropped from memory."""
        return max(self._persisted, self._acked, self._mem_seq)

    def when_written(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time lines reach the disk (a feeder waiting for the disk
        may look again)."""
        self._on_written = callback

    @property
    def has_loss(self) -> bool:
        return self._loss.count > 0

    def _lose(self, n: int) -> None:
        self._loss.add(n)
        self.lost += n
        self.ledger_dirty = True

    def lose(self, n: int) -> None:
        """Count ``n`` lines lost outside the queue (a batch the receiver refused)."""
        if n > 0:
            self._lose(n)

    def push_many(self, lines: list[bytes]) -> int:
        """Append ``lines``; return how many were dropped (memory outran the disk)."""
        if not self.recovered:
            self._pre.extend(lines)
            self.pushed += len(lines)
            return 0
        mem = self._mem
        mem.extend(lines)
        self._next += len(lines)
        self.pushed += len(lines)
        if len(mem) <= self.memory_lines:
            return 0
        evictable = min(len(mem) - self.memory_lines, self._persisted - self._mem_seq)
        if evictable > 0:
            self._evict(evictable)
        if len(mem) <= self.memory_lines:
            return 0
        self.wants_flush()
        excess = len(mem) - max(self.memory_lines * _MEMORY_HARD_FACTOR, self.memory_cap)
        if excess <= 0:
            return 0
        before = self._mem_seq
        self._evict(excess)
        # the lines evicted that were neither on disk nor handed out are gone, but for those
        # in the record being written: lost only if that write fails (see write_failed)
        safe = max(self._next_pop, self._persisted, before)
        writing = max(safe, min(self._mem_seq, self._writing_end))
        if writing > safe:
            if self._risk_hi <= self._risk_lo:
                self._risk_lo = safe
            self._risk_hi = writing
        dropped = self._mem_seq - writing
        self._persisted = max(self._persisted, self._mem_seq)
        if dropped > 0:
            self._lose(dropped)
            return dropped
        return 0

    def _evict(self, n: int) -> None:
        popleft = self._mem.popleft
        for _ in range(n):
            popleft()
        self._mem_seq += n

    @property
    def needs_fill(self) -> bool:
        """The next lines to hand out are on disk only: await :meth:`fill` first."""
        need = self._next_pop
        if need >= self._mem_seq or need >= self._next:
            return False
        return not self._replay or self._replay[-1][0] < need

    async def fill(self) -> None:
        """Read the next lines back from disk (in a worker thread), skipping what is gone."""
        while self.needs_fill:
            need = self._next_pop
            segment = next((s for s in self.segments if s.end > need), None)
            if segment is None or segment.first >= self._mem_seq:
                if need < self._writing_end and self._write_done is not None:
                    await self._write_done.wait()  # memory let go of lines still being written
                    continue
                self._next_pop = max(need, self._mem_seq)  # not on disk: delivered or dropped
                return
            records = await trio.to_thread.run_sync(files.read_segment, segment.path)
            limit = self._mem_seq
            replay = deque(itertools.islice(
                (item for r in records if r.end > need
                 for item in zip(itertools.count(r.first), r.lines, strict=False)
                 if need <= item[0] < limit), REPLAY_LINES))
            if not replay:
                self._next_pop = min(segment.end, limit) if segment.end > need else limit
                continue
            self._replay = replay
            if replay[0][0] > need:
                self._next_pop = replay[0][0]

    def pop_batch(self, max_lines: int | None = None, max_bytes: int | None = None,
                  ) -> tuple[Loss | None, list[bytes]]:
        """Hand out the next lines (see :meth:`BoundedBuffer.pop_batch`); they stay in flight
        until :meth:`ack` or :meth:`unpop`. Returns no lines while :attr:`needs_fill`."""
        if self.needs_fill or not self.recovered:
            return None, []
        loss = self._loss.take()
        if loss is not None:
            self._inflight_loss = loss
        limit = max_lines if max_lines is not None else len(self)
        lines: list[bytes] = []
        size = 0
        need = self._next_pop
        seqs: list[int] | range
        if need < self._mem_seq:
            replay = self._replay
            while replay and replay[0][0] < need:
                replay.popleft()
            seqs = []
            while replay and len(lines) < limit:
                seq, line = replay[0]
                if seq >= self._mem_seq or (max_bytes is not None and lines
                                            and size + len(line) > max_bytes):
                    break
                replay.popleft()
                seqs.append(seq)
                lines.append(line)
                size += len(line)
            if seqs:
                self._next_pop = seqs[-1] + 1
        else:
            offset = need - self._mem_seq
            avail = len(self._mem) - offset
            take = min(limit, avail)
            it = itertools.islice(self._mem, offset, offset + take)
            if max_bytes is None:
                lines = list(it)
            else:
                for line in it:
                    if lines and size + len(line) > max_bytes:
                        break
                    lines.append(line)
                    size += len(line)
            seqs = range(need, need + len(lines))
            self._next_pop = need + len(lines)
        self._inflight = seqs
        return loss, lines

    def unpop(self, loss: Loss | None, lines: Iterable[bytes]) -> None:
        """Put back ``lines`` — the last lines handed out — and ``loss``, to send again."""
        again = list(lines)
        n = len(again)
        if n:
            back = self._inflight[len(self._inflight) - n:]
            self._next_pop = back[0]
            if back[0] < self._mem_seq:  # handed out from disk: keep them for the next pop
                self._replay.extendleft(reversed(list(zip(back, again, strict=True))))
            self._inflight = self._inflight[:len(self._inflight) - n]
        self._loss.carry(loss)
        self._inflight_loss = None
        self.ledger_dirty = True

    def ack(self) -> None:
        """The batch in flight was delivered (what was put back is not part of it)."""
        self._inflight = ()
        self._inflight_loss = None
        self.batch = None
        if self._next_pop > self._acked:
            self._acked = self._next_pop
            trim = min(self._acked, self._next) - self._mem_seq
            if trim > 0:
                self._evict(min(trim, len(self._mem)))
                self._persisted = max(self._persisted, self._mem_seq)
            self.ledger_dirty = True

    def begin_batch(self, lines: int, frame_id: str) -> None:
        """Record the HTTP batch just handed out (the ledger keeps it until acked)."""
        if self._inflight:
            self.batch = (self._inflight[0], lines, frame_id)
            self.ledger_dirty = True

    def resize(self, capacity: int) -> None:
        """Hold at most ``capacity`` lines in memory (the drain's state sets it: a burst's
        worth while it delivers, its buffer while it is down); the spool's own bound is
        ``max_bytes`` on disk, so nothing is lost here — lines already on disk leave
        memory now, the others at the next flush."""
        self.memory_lines = max(1, capacity)
        over = len(self._mem) - self.memory_lines
        if over > 0:
            self._evict(min(over, max(0, self._persisted - self._mem_seq)))
        if len(self._mem) > self.memory_lines:
            self.wants_flush()

    def statistics(self) -> BufferStatistics:
        return BufferStatistics(self.memory_lines, len(self), self.pushed, self.lost,
                                self._loss.count)

    # -- what the spooler does -------------------------------------------------------------

    def ledger(self) -> Ledger:
        loss_count = self._loss.count + (self._inflight_loss.count if self._inflight_loss else 0)
        since = self._loss.since if self._loss.count else (
            self._inflight_loss.since if self._inflight_loss else 0.0)
        return Ledger(self._acked, self.batch, (loss_count, since) if loss_count else None)

    def unpersisted(self, everything: bool = False) -> tuple[int, list[bytes]]:
        """The lines to write now: ``(first seq, lines)`` — not on disk, not delivered, and
        (unless ``everything``) already waiting at the previous flush: a line delivered
        within one flush interval of its arrival is never written."""
        ripe, self._ripe = self._ripe, self._next
        start = self._unwritten_from
        end = self._next if everything or len(self._mem) > self.memory_lines else ripe
        if start >= end:
            return start, []
        self._writing_end = end
        self._write_done = trio.Event()
        return start, list(itertools.islice(self._mem, start - self._mem_seq,
                                            end - self._mem_seq))

    def give_up_unwritten(self, end: int) -> None:
        """The lines :meth:`unpersisted` gave below ``end`` will not be written: more arrived
        for one write than the whole spool holds, and like the oldest segment past the bound
        they go — those not handed out counted lost, out of memory too."""
        start = self._unwritten_from
        if end <= start:
            return
        gone = end - max(start, self._next_pop)
        if gone > 0:
            self._lose(gone)
        if self._next_pop >= start:  # else lines on disk come first (fill skips the gap)
            self._next_pop = max(self._next_pop, end)
        cut = min(end - self._mem_seq, len(self._mem))
        if cut > 0:
            self._evict(cut)
        self._persisted = max(self._persisted, end)
        self._risk_lo = max(self._risk_lo, end)

    def persisted_to(self, end: int) -> None:
        """Lines below ``end`` are on disk now (of those :meth:`unpersisted` gave); evict
        them if memory is over its size."""
        self._persisted = max(self._persisted, end)
        self._risk_lo = max(self._risk_lo, end)
        if end >= self._writing_end:
            self._write_over()
        over = len(self._mem) - self.memory_lines
        if over > 0:
            self._evict(min(over, self._persisted - self._mem_seq))
        self._on_written()

    def abandon_unwritten(self) -> int:
        """Give up the lines neither delivered nor on disk (shutdown, after the last write
        failed): count them lost (the ledger carries the loss to the next run) and return how
        many."""
        start = self._unwritten_from
        lost = max(0, self._next - start)
        if lost:
            self._persisted = self._next
            self._lose(lost)
        return lost

    def write_failed(self) -> None:
        """The rest of the lines :meth:`unpersisted` gave (past the last
        :meth:`persisted_to`) were not written: those still in memory are written by a later
        flush; those memory dropped meanwhile are lost now."""
        if self._risk_hi > self._risk_lo:
            self._lose(self._risk_hi - self._risk_lo)
        self._write_over()

    def _write_over(self) -> None:
        self._writing_end = self._risk_lo = self._risk_hi = 0
        if self._write_done is not None:
            self._write_done.set()
            self._write_done = None

    def add_segment(self, segment: files.Segment) -> None:
        self.segments.append(segment)

    def grew(self, segment: files.Segment, first: int, end: int, size: int) -> None:
        segment.records.append((first, end - first))
        segment.end = end
        segment.size += size
        self.disk_bytes += size

    def done_segments(self) -> list[files.Segment]:
        """Segments whose every line was delivered (to delete once the ledger says so)."""
        done = []
        while len(self.segments) > 1 and self.segments[0].end <= self._acked:
            done.append(self.segments.popleft())
        if len(self.segments) == 1 and self.segments[0].end <= self._acked \
                and self.segments[0].end >= self._next:
            done.append(self.segments.popleft())
        for s in done:
            self.disk_bytes -= s.size
        return done

    def over_bound(self, incoming: int = 0, into_last: bool = True) -> list[files.Segment]:
        """Drop the oldest segments while the spool, with ``incoming`` bytes about to be
        written (into the last segment when ``into_last``), is over ``max_bytes``; their
        lines not yet handed out (on disk, or still in memory too) are counted lost."""
        dropped = []
        keep = 1 if into_last else 0
        while self.disk_bytes + incoming > self.max_bytes and len(self.segments) > keep:
            seg = self.segments.popleft()
            self.disk_bytes -= seg.size
            dropped.append(seg)
            gone = seg.pending(self._next_pop, self._mem_seq)  # on disk only, not handed out
            cut = min(seg.end, self._next) - self._mem_seq
            if cut > 0:  # the same lines still in memory go too: the bound is the spool's
                gone += max(0, self._mem_seq + cut - max(self._next_pop, self._mem_seq))
                self._evict(cut)
                self._persisted = max(self._persisted, self._mem_seq)
            if gone:
                self._lose(gone)
            self._next_pop = max(self._next_pop, min(seg.end, self._next))
            self._replay.clear()
        if dropped:
            self._full_drops += len(dropped)
            now = time.monotonic()
            if now - self._full_logged >= 10.0:
                log.warning("spool_full", dir=self.directory, dropped_segments=self._full_drops,
                            bytes=self.disk_bytes, lost_total=self.lost)
                self._full_logged, self._full_drops = now, 0
        return dropped
