"""Recent history: the last N cooked lines of a channel, and saving it across restarts.

A :class:`History` is a ring (drop-oldest, no loss report: history is a window,
not a queue) that also numbers every line ever appended, so a reader can ask
for "what came after line S" — the basis of SSE ``Last-Event-ID`` resumes. Most
of a node's history is kept compressed (:class:`HistoryCompactor`), so a node
holds the full history of tens of thousands of apps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice

import trio

from logrouter.core.buffer import LineParts
from logrouter.logs import get_logger
from logrouter.protocol.chunkfmt import make_chunks, unpack_chunk, unpack_chunks
from logrouter.protocol.speedups import release_freed_memory

__all__ = ["CHUNK_LINES", "Chunk", "History", "HistoryCompactor", "Saved"]

log = get_logger("logrouter.history")


#: Lines per compressed chunk of history (the newest chunk may hold fewer).
CHUNK_LINES = 256

#: One compressed chunk: (lines in it, a zstd frame of the msgpack list of them).
Chunk = tuple[int, bytes]

#: A history as saved: (seq, raw lines, compressed chunks, skip); see :meth:`History.saved`.
Saved = tuple[int, list[bytes], list[Chunk], int]


def _ragged(chunks: Iterable[Chunk]) -> bool:
    """Whether any of ``chunks`` but the newest is not full (see :meth:`History.take_raw`)."""
    chunks = list(chunks)
    return any(count < CHUNK_LINES for count, _ in chunks[:-1])


@dataclass(slots=True)
class Compaction:
    """The raw lines of one history taken for compression, and the check that they are
    still there when the compressed chunks come back (see :meth:`History.take_raw`)."""

    history: History
    first: int  # number of the first raw line taken
    lines: list[bytes]  # raw lines taken, oldest first
    tail: list[Chunk]  # the newest chunks, not full, merged into the new chunks
    tail_skip: int  # lines at the start of tail[0] out of the window (when it is the oldest)
    chunks: list[Chunk] = field(default_factory=list)

    def compress(self) -> None:
        """Make the chunks (blocking: run it in a worker thread)."""
        compress_all([self])


def compress_all(jobs: list[Compaction]) -> None:
    """Make the chunks of every job (blocking: run it in a worker thread): chunks of at most
    ``CHUNK_LINES`` lines in the format of :mod:`logrouter.protocol.chunkfmt`.

    Reading the lines — scattered objects on a busy node — and compressing them need no
    GIL, and are done in two calls for the whole batch (:func:`make_chunks`: pack, then
    zstd), so a worker thread competes for the GIL a few times a batch rather than holding it while
    it touches every line; with the event loop busy, each competition costs up to the
    interpreter's switch interval (5 ms). Only a job that merges chunks (a channel gone
    quiet) has them unpacked and its lines listed again with the GIL held.
    """
    unpacked = unpack_chunks([chunk[1] for job in jobs for chunk in job.tail])
    at = 0
    groups: list[list[bytes]] = []
    for job in jobs:
        if job.tail:
            every: list[bytes] = []
            for i in range(len(job.tail)):
                every += unpacked[at + i][job.tail_skip:] if i == 0 else unpacked[at + i]
            at += len(job.tail)
            every += job.lines
            groups.append(every)
        else:
            groups.append(job.lines)
    packed = make_chunks(groups, CHUNK_LINES)
    at = 0
    for job, group in zip(jobs, groups, strict=True):
        counts = [min(CHUNK_LINES, len(group) - i) for i in range(0, len(group), CHUNK_LINES)]
        job.chunks = list(zip(counts, packed[at:at + len(counts)], strict=True))
        at += len(counts)


class History:
    """The last ``capacity`` lines of one channel, numbered from 1.

    ``seq`` is the number of the newest line. A fresh history starts numbering at
    the current time in microseconds, so numbers keep growing across a restart that
    lost the saved history (as long as a channel takes under a million lines a
    second): a client's ``Last-Event-ID`` from before is then simply "older".

    New lines go into the raw lines (a :class:`LineParts`: ``extend`` keeps the list it is
    given, shared with the channel's other consumers, not to be changed). The
    :class:`HistoryCompactor` moves the oldest raw lines into compressed chunks; reads
    decompress what they need. The oldest lines, compressed or raw, go once the window
    is full. Compressed lines are always older than raw ones.
    """

    __slots__ = ("_cold", "_cold_count", "_cold_skip", "_lines", "capacity", "ragged", "seen_at",
                 "seen_seq", "seq")

    def __init__(self, capacity: int, lines: Iterable[bytes] = (), seq: int | None = None) -> None:
        self.capacity = capacity
        self._lines = LineParts(lines)
        self._lines.keep_newest(capacity)
        self._cold: deque[Chunk] = deque()  # oldest first
        self._cold_count = 0  # lines in _cold
        self._cold_skip = 0  # lines of the oldest chunk already out of the window
        if seq is None:
            seq = time.time_ns() // 1000
        self.seq = max(seq, len(self._lines))
        # the compactor's notes: the newest line number it saw, and since when (trio clock)
        self.seen_seq = -1
        self.seen_at = 0.0
        self.ragged = False  # a chunk before the newest is not full (see take_raw's merge)

    @classmethod
    def restore(cls, capacity: int, seq: int, raw: list[bytes], chunks: list[Chunk],
                skip: int) -> History:
        """A history as :meth:`saved` described it, cut to ``capacity``."""
        history = cls(capacity, raw, seq)
        if len(raw) < capacity:
            history._cold.extend(chunks)
            history._cold_count = sum(count for count, _ in chunks)
            history._cold_skip = skip if chunks else 0
            history._trim_cold()
            history.ragged = _ragged(chunks)
        return history

    def saved(self) -> Saved:
        """``(seq, raw lines, compressed chunks, skip)``: what :meth:`restore` takes."""
        return self.seq, self._lines.to_list(), list(self._cold), self._cold_skip

    def __len__(self) -> int:
        return len(self._lines) + self._cold_count - self._cold_skip

    def extend(self, lines: list[bytes]) -> None:
        """Append ``lines`` (kept as they are: the caller must not change the list after)."""
        self._lines.extend(lines)
        self._lines.keep_newest(self.capacity)
        self.seq += len(lines)
        if self._cold:
            self._trim_cold()

    def _trim_cold(self) -> None:
        over = len(self) - self.capacity
        while over > 0 and self._cold:
            count = self._cold[0][0]
            left = count - self._cold_skip
            if over >= left:
                self._cold.popleft()
                self._cold_count -= count
                self._cold_skip = 0
                over -= left
            else:
                self._cold_skip += over
                over = 0

    def last(self, n: int) -> tuple[int, list[bytes]]:
        """The newest ``n`` lines, oldest first, and the number of the first."""
        n = max(0, min(n, len(self)))
        if not n:
            return self.seq + 1, []
        hot = self._lines
        if n <= len(hot):
            return self.seq - n + 1, hot.newest(n)
        need = n - len(hot)
        parts: list[list[bytes]] = []
        for i in range(len(self._cold) - 1, -1, -1):
            chunk = unpack_chunk(self._cold[i][1])
            if i == 0:
                chunk = chunk[self._cold_skip:]
            if len(chunk) >= need:
                parts.append(chunk[len(chunk) - need:])
                break
            parts.append(chunk)
            need -= len(chunk)
        out = [line for part in reversed(parts) for line in part]
        out += hot.to_list()
        return self.seq - n + 1, out

    def after(self, seq: int) -> tuple[int, list[bytes]] | None:
        """Lines numbered above ``seq`` and the number of the first; None when that cannot
        be answered without a gap or a guess: ``seq`` is in the future, or lines after it
        are no longer held."""
        if seq > self.seq or seq < self.seq - len(self):
            return None
        return self.last(self.seq - seq)

    def snapshot(self) -> list[bytes]:
        return self.last(len(self))[1]

    # compaction (see HistoryCompactor) ------------------------------------------------------

    @property
    def hot(self) -> int:
        """Raw lines held."""
        return len(self._lines)

    @property
    def compressed_bytes(self) -> int:
        return sum(len(data) for _, data in self._cold)

    def take_raw(self, merge: bool = True) -> Compaction:
        """Every raw line, for compression outside the event loop; hand the result to
        :meth:`put_compressed`. With ``merge``, the newest chunks that are not full are
        taken too (every chunk from the first one that is not full), to be made into full
        ones with the raw lines: recompressing them is worth it for a channel gone quiet,
        not for one still taking lines."""
        tail: list[Chunk] = []
        skip = 0
        if merge:
            cold = self._cold
            i = next((k for k, (count, _) in enumerate(cold) if count < CHUNK_LINES), len(cold))
            tail = list(islice(cold, i, None))
            skip = self._cold_skip if tail and i == 0 else 0
        return Compaction(self, self.seq - len(self._lines) + 1, self._lines.to_list(), tail, skip)

    def put_compressed(self, job: Compaction) -> bool:
        """Swap the chunks of ``job`` in for the raw lines (and chunks) it took. Lines that
        arrived since stay raw. False, and nothing changes, when what it took is no longer
        all there (the window moved past it)."""
        hot = self._lines
        taken = len(job.lines)
        if self.seq - len(hot) + 1 != job.first or len(hot) < taken:
            return False
        if job.tail:
            cold = self._cold
            start = len(cold) - len(job.tail)
            if start < 0 or any(a is not b for a, b in
                                 zip(islice(cold, start, None), job.tail, strict=True)):
                return False
            if start == 0 and self._cold_skip != job.tail_skip:
                return False
            for _ in job.tail:
                self._cold_count -= cold.pop()[0]
            if not cold:
                self._cold_skip = 0  # the merged chunks were the oldest: their skipped lines are gone
        self._cold.extend(job.chunks)
        self.ragged = _ragged(self._cold)
        self._cold_count += sum(count for count, _ in job.chunks)
        if taken == len(hot):
            hot.clear()
        else:
            hot.drop(taken)
        self._trim_cold()
        return True


def _line_bytes(lines: list[bytes]) -> float:
    """The memory a raw line of ``lines`` (not empty) takes, judged by the first 16: a bytes
    object costs its length plus 33 bytes, and 8 for its slot in the ring."""
    sample = lines[:16]
    return sum(map(len, sample)) / len(sample) + 41


class HistoryCompactor:
    """Keeps a node's raw history small by compressing it, off the ingest path.

    Once a second (every 0.1 s while over the budget) it looks at every channel and
    compresses, in a worker thread (zstd releases the GIL), all raw lines of

    * channels that have been quiet for ``idle`` seconds, merging their chunks that are
      not full into full ones (best ratio, paid once), and
    * while the raw lines of all channels are estimated above ``raw_bytes``, the channels
      holding the most raw lines, until half the budget is left; their chunks are made
      from the raw lines alone (a chunk may hold fewer than 256 lines until the channel
      goes quiet), so a line is compressed once while its channel is busy.

    A node whose whole history fits the budget therefore spends nothing on compression
    while its channels are busy; one with more apps than that pays about 0.4 µs of the
    second core per line that stays in a window.

    A trip to the worker thread waits for turns of the event loop twice (to start, then to
    hand its chunks back), and a node taking lines flat out makes those turns long (0.1 to
    0.3 s measured), so trips of ``BATCH_BYTES`` one at a time fall behind a fast fill
    (~150 k lines/s). While the raw lines are over ``CATCH_UP`` times the budget, trips carry
    ``CATCH_UP_BATCH_BYTES``, ``CATCH_UP_TRIPS`` at once: raw history stays near that
    bound (at most 21 times the budget in a fill of 50,000 apps at ~0.9 M lines/s). Below
    it the smaller trips keep a burst that fits (thousands of apps, each a few hundred
    lines) from paying for its compression while it goes on. A pass starts no trip after
    ``PASS_SECONDS``: the channels it chose keep taking lines meanwhile, so an unbounded
    pass would carry on in the mode it began in; the next pass looks again.

    Once quiet channels holding ``RELEASE_LINES`` raw lines or more have been compressed
    since the last time, in a pass that found the node under its budget (a burst is over),
    the memory their lines took is given back to the kernel (``release_memory``, in a worker
    thread; at most once per ``RELEASE_INTERVAL``): the allocator would otherwise keep most
    of it mapped, held by the few long-lived objects allocated among the lines
    (bench/RESULTS.md).

    Args:
        histories: returns the histories to look at.
        idle: seconds a channel must be quiet; 0 = never for quietness alone.
        raw_bytes: budget for raw lines on the node; 0 = no budget.
        release_memory: gives freed memory back to the kernel, returns the bytes released.
    """

    # raw lines (estimated) a trip to the worker thread carries, copied once more while it
    # is packed: ~65,536 and ~524,288 lines of 150 bytes
    BATCH_BYTES = 12 << 20
    # times the raw budget past which compression goes all out; a burst that stays under it
    # pays no compression while it lasts (8 cost S1 at 5,000 apps 5-11 %: bench/RESULTS.md)
    CATCH_UP = 16
    CATCH_UP_BATCH_BYTES = 96 << 20
    CATCH_UP_TRIPS = 2  # trips at once while catching up
    PASS_SECONDS = 2.0  # a pass starts no trip after this
    INTERVAL = 1.0
    BUSY_INTERVAL = 0.1  # after a pass that found the raw budget exceeded
    RELEASE_LINES = 100_000  # quiet lines compressed before memory is given back
    RELEASE_INTERVAL = 30.0  # seconds between two releases at least

    def __init__(self, histories: Callable[[], Iterable[History]], idle: float,
                 raw_bytes: int = 0, release_memory: Callable[[], int] = release_freed_memory,
                 ) -> None:
        self.histories = histories
        self.idle = idle
        self.raw_bytes = raw_bytes
        self.release_memory = release_memory
        self.line_bytes = 200.0  # running estimate of a raw line's cost, learnt from the lines
        self.compacted_lines = 0
        self.trips = 0  # batches sent to a worker thread
        self.quiet_since_release = 0  # raw lines of quiet channels compressed since then
        self.released_at = -self.RELEASE_INTERVAL  # trio clock

    async def run(self) -> None:
        if self.idle <= 0 and self.raw_bytes <= 0:
            return
        pause = self.INTERVAL
        while True:
            await trio.sleep(pause)
            over_budget = await self.pass_once()
            # while lines come in faster than the budget allows, look again soon
            pause = self.BUSY_INTERVAL if over_budget else self.INTERVAL

    def raw_estimate(self) -> int:
        """Estimated bytes of raw lines held by all channels."""
        return int(sum(h.hot for h in self.histories()) * self.line_bytes)

    async def pass_once(self) -> bool:
        """One pass over every channel (see the class docstring); True when the raw lines
        were over the budget."""
        now = trio.current_time()
        quiet: list[History] = []
        busy: list[History] = []
        raw_lines = 0
        for history in self.histories():
            seq = history.seq
            if history.seen_seq != seq:  # took lines since the last pass: busy from now
                history.seen_seq = seq
                history.seen_at = now
            hot = history.hot
            raw_lines += hot
            if self.idle > 0 and now - history.seen_at >= self.idle:
                if hot or history.ragged:
                    quiet.append(history)
            elif hot:
                busy.append(history)
        chosen = [(history, True) for history in quiet]
        over_budget = self.raw_bytes > 0 and raw_lines * self.line_bytes > self.raw_bytes
        if over_budget:
            over = raw_lines * self.line_bytes - self.raw_bytes / 2
            over -= sum(h.hot for h in quiet) * self.line_bytes
            busy.sort(key=lambda h: h.hot, reverse=True)
            for history in busy:
                if over <= 0:
                    break
                chosen.append((history, False))
                over -= history.hot * self.line_bytes
        if raw_lines * self.line_bytes > self.CATCH_UP * self.raw_bytes > 0:
            await self._compact_all(chosen, self.CATCH_UP_BATCH_BYTES, self.CATCH_UP_TRIPS)
        else:
            await self._compact_all(chosen, self.BATCH_BYTES, 1)
        if (not over_budget and self.quiet_since_release >= self.RELEASE_LINES
                and now - self.released_at >= self.RELEASE_INTERVAL):
            self.quiet_since_release = 0
            self.released_at = now
            start = time.monotonic()
            released = await trio.to_thread.run_sync(self.release_memory)
            log.info("memory_released", bytes=released,
                     ms=round((time.monotonic() - start) * 1000, 1))
        return over_budget

    async def _compact_all(self, chosen: list[tuple[History, bool]], batch_bytes: int,
                           trips: int) -> None:
        """Compress the raw lines of the ``(history, merge)`` chosen, in order, about
        ``batch_bytes`` of them a trip to the worker thread (a job's size estimated from its
        first lines), up to ``trips`` trips at once, starting none after
        ``PASS_SECONDS``. What it took is no longer referenced once it returns (its memory can
        be released)."""
        end = trio.current_time() + self.PASS_SECONDS
        room = trio.Semaphore(trips)
        async with trio.open_nursery() as nursery:
            batch: list[Compaction] = []
            size = 0.0
            for history, merge in chosen:
                if trio.current_time() >= end:
                    break
                job = history.take_raw(merge)
                if merge:
                    self.quiet_since_release += len(job.lines)
                batch.append(job)
                line = _line_bytes(job.lines) if job.lines else self.line_bytes
                size += line * (len(job.lines) + CHUNK_LINES * len(job.tail))
                if size >= batch_bytes:
                    await room.acquire()
                    nursery.start_soon(self._compact, batch, room)
                    batch, size = [], 0
            if batch:
                await room.acquire()
                nursery.start_soon(self._compact, batch, room)

    async def _compact(self, batch: list[Compaction], room: trio.Semaphore) -> None:
        self.trips += 1
        try:
            await trio.to_thread.run_sync(compress_all, batch)
        finally:
            room.release()
        raw = lines = 0.0
        for job in batch:
            if job.history.put_compressed(job):
                self.compacted_lines += len(job.lines)
            if job.lines:
                raw += _line_bytes(job.lines) * len(job.lines)
                lines += len(job.lines)
        if lines:
            self.line_bytes = 0.8 * self.line_bytes + 0.2 * raw / lines
