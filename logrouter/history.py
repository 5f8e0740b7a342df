"""Recent history: the last N cooked lines of a channel, and saving it across restarts.

A :class:`History` is a ring (drop-oldest, no loss report: history is a window,
not a queue) that also numbers every line ever appended, so a reader can ask
for "what came after line S" — the basis of SSE ``Last-Event-ID`` resumes. Most
of a node's history is kept compressed (:class:`HistoryCompactor`), so a node
holds the full history of tens of thousands of apps.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice

import msgpack
import trio
import zstandard

__all__ = ["CHUNK_LINES", "History", "HistoryCompactor", "load_histories", "save_histories"]


#: Lines per compressed chunk of history (the newest chunk may hold fewer).
CHUNK_LINES = 256

#: One compressed chunk: (lines in it, a zstd frame of the msgpack list of them).
Chunk = tuple[int, bytes]


def pack_chunk(lines: list[bytes]) -> bytes:
    """``lines`` as one compressed chunk body (zstd level 1: 0.6 µs a line, 4-5x smaller
    for typical router and app lines, 10x and more for repetitive ones)."""
    return zstandard.ZstdCompressor(level=1).compress(msgpack.packb(lines, use_bin_type=True))


def unpack_chunk(data: bytes) -> list[bytes]:
    lines: list[bytes] = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(data), raw=True)
    return lines


@dataclass(slots=True)
class Compaction:
    """The raw lines of one history taken for compression, and the check that they are
    still there when the compressed chunks come back (see :meth:`History.take_raw`)."""

    history: History
    first: int  # number of the first raw line taken
    lines: list[bytes]  # raw lines taken, oldest first
    tail: Chunk | None  # a partly filled newest chunk merged into the new chunks
    tail_skip: int  # lines at its start out of the window (when it is also the oldest)
    chunks: list[Chunk] = field(default_factory=list)

    def compress(self) -> None:
        """Make the chunks (blocking: run it in a worker thread)."""
        every = self.lines
        if self.tail is not None:
            every = unpack_chunk(self.tail[1])[self.tail_skip:] + every
        self.chunks = [(len(part), pack_chunk(part))
                       for part in (every[i:i + CHUNK_LINES] for i in range(0, len(every), CHUNK_LINES))]


class History:
    """The last ``capacity`` lines of one channel, numbered from 1.

    ``seq`` is the number of the newest line. A fresh history starts numbering at
    the current time in microseconds, so numbers keep growing across a restart that
    lost the saved history (as long as a channel takes under a million lines a
    second): a client's ``Last-Event-ID`` from before is then simply "older".

    New lines go into a ring of raw lines (``extend`` is a ``deque.extend``). The
    :class:`HistoryCompactor` moves the oldest raw lines into compressed chunks; reads
    decompress what they need. The oldest lines, compressed or raw, go once the window
    is full. Compressed lines are always older than raw ones.
    """

    __slots__ = ("_cold", "_cold_count", "_cold_skip", "_lines", "capacity", "seq")

    def __init__(self, capacity: int, lines: Iterable[bytes] = (), seq: int | None = None) -> None:
        self.capacity = capacity
        self._lines: deque[bytes] = deque(lines, maxlen=capacity)
        self._cold: deque[Chunk] = deque()  # oldest first
        self._cold_count = 0  # lines in _cold
        self._cold_skip = 0  # lines of the oldest chunk already out of the window
        if seq is None:
            seq = time.time_ns() // 1000
        self.seq = max(seq, len(self._lines))

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
        return history

    def saved(self) -> tuple[int, list[bytes], list[Chunk], int]:
        """``(seq, raw lines, compressed chunks, skip)``: what :meth:`restore` takes."""
        return self.seq, list(self._lines), list(self._cold), self._cold_skip

    def __len__(self) -> int:
        return len(self._lines) + self._cold_count - self._cold_skip

    def extend(self, lines: list[bytes]) -> None:
        self._lines.extend(lines)
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
            return self.seq - n + 1, list(islice(hot, len(hot) - n, None))
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
        out.extend(hot)
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

    def take_raw(self) -> Compaction:
        """Every raw line (and the newest chunk, when it is not full, to merge with them),
        for compression outside the event loop; hand the result to :meth:`put_compressed`."""
        tail, skip = None, 0
        if self._cold and self._cold[-1][0] < CHUNK_LINES:
            tail = self._cold[-1]
            skip = self._cold_skip if len(self._cold) == 1 else 0
        return Compaction(self, self.seq - len(self._lines) + 1, list(self._lines), tail, skip)

    def put_compressed(self, job: Compaction) -> bool:
        """Swap the chunks of ``job`` in for the raw lines it took. Lines that arrived since
        stay raw. False, and nothing changes, when what it took is no longer all there (the
        window moved past it)."""
        hot = self._lines
        taken = len(job.lines)
        if self.seq - len(hot) + 1 != job.first or len(hot) < taken:
            return False
        if job.tail is not None:
            if not self._cold or self._cold[-1] is not job.tail:
                return False
            if len(self._cold) == 1 and self._cold_skip != job.tail_skip:
                return False
            self._cold.pop()
            self._cold_count -= job.tail[0]
            if not self._cold:
                self._cold_skip = 0  # the merged chunk was the oldest: its skipped lines are gone
        self._cold.extend(job.chunks)
        self._cold_count += sum(count for count, _ in job.chunks)
        if taken == len(hot):
            hot.clear()
        elif taken * 2 < len(hot):
            for _ in range(taken):
                hot.popleft()
        else:
            self._lines = deque(islice(hot, taken, None), maxlen=self.capacity)
        self._trim_cold()
        return True


class HistoryCompactor:
    """Keeps a node's raw history small by compressing it, off the ingest path.

    Once a second it looks at every channel and compresses, in a worker thread
    (zstd releases the GIL), all raw lines of

    * channels that have been quiet for ``idle`` seconds, and
    * while the raw lines of all channels are estimated above ``raw_bytes``, the channels
      holding the most raw lines, until half the budget is left.

    A node whose whole history fits the budget therefore spends nothing on compression
    while its channels are busy; one with more apps than that pays about 0.6 µs of the
    second core per line that stays in a window.

    Args:
        histories: returns the histories to look at, by channel id.
        idle: seconds a channel must be quiet; 0 = never for quietness alone.
        raw_bytes: budget for raw lines on the node; 0 = no budget.
    """

    BATCH_LINES = 65536  # lines per trip to the worker thread
    INTERVAL = 1.0

    def __init__(self, histories: Callable[[], dict[str, History]], idle: float,
                 raw_bytes: int = 0) -> None:
        self.histories = histories
        self.idle = idle
        self.raw_bytes = raw_bytes
        self.line_bytes = 200.0  # running estimate of a raw line's cost, learnt from the lines
        self._seen: dict[str, tuple[int, float]] = {}  # channel → (seq, since when)
        self.compacted_lines = 0

    async def run(self) -> None:
        if self.idle <= 0 and self.raw_bytes <= 0:
            return
        while True:
            await trio.sleep(self.INTERVAL)
            await self.pass_once()

    def raw_estimate(self) -> int:
        """Estimated bytes of raw lines held by all channels."""
        return int(sum(h.hot for h in self.histories().values()) * self.line_bytes)

    async def pass_once(self) -> None:
        """One pass over every channel (see the class docstring)."""
        now = trio.current_time()
        current = self.histories()
        seen, self._seen = self._seen, {}
        chosen: list[History] = []
        others: list[History] = []
        raw_lines = 0
        for channel_id, history in current.items():
            seq = history.seq
            since = now
            before = seen.get(channel_id)
            if before is not None and before[0] == seq:
                since = before[1]
            self._seen[channel_id] = (seq, since)
            hot = history.hot
            if not hot:
                continue
            raw_lines += hot
            if self.idle > 0 and now - since >= self.idle:
                chosen.append(history)
            else:
                others.append(history)
        if self.raw_bytes > 0:
            over = raw_lines * self.line_bytes - self.raw_bytes / 2
            over -= sum(h.hot for h in chosen) * self.line_bytes
            if raw_lines * self.line_bytes > self.raw_bytes and over > 0:
                others.sort(key=lambda h: h.hot, reverse=True)
                for history in others:
                    if over <= 0:
                        break
                    chosen.append(history)
                    over -= history.hot * self.line_bytes
        batch: list[Compaction] = []
        size = 0
        for history in chosen:
            job = history.take_raw()
            batch.append(job)
            size += len(job.lines)
            if size >= self.BATCH_LINES:
                await self._compact(batch)
                batch, size = [], 0
        if batch:
            await self._compact(batch)

    async def _compact(self, batch: list[Compaction]) -> None:
        def work() -> None:
            for job in batch:
                job.compress()

        await trio.to_thread.run_sync(work)
        raw = lines = 0.0
        for job in batch:
            if job.history.put_compressed(job):
                self.compacted_lines += len(job.lines)
            sample = job.lines[:16]
            if sample:
                raw += sum(map(len, sample)) / len(sample) * len(job.lines)
                lines += len(job.lines)
        if lines:
            # a bytes object costs its length plus 33 bytes, and 8 for its slot in the ring
            self.line_bytes = 0.8 * self.line_bytes + 0.2 * (raw / lines + 41)


def save_histories(path: str, histories: dict[str, History]) -> int:
    """Write every history to ``path`` (msgpack, compressed chunks as they are, replaced
    atomically); return the lines saved."""
    payload = {cid: h.saved() for cid, h in histories.items() if len(h)}
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        msgpack.pack(payload, fh, use_bin_type=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return sum(len(h) for h in histories.values())


Saved = tuple[int, list[bytes], list[Chunk], int]


def load_histories(path: str) -> dict[str, Saved]:
    """Read what :func:`save_histories` wrote: channel id → the arguments of
    :meth:`History.restore` after the capacity. Missing file → {}. Files from before
    compression (``[seq, lines]``) are read too.

    Raises:
        ValueError: the file is not a history file.
    """
    try:
        with open(path, "rb") as fh:
            data = msgpack.unpack(fh, raw=False, strict_map_key=False)
    except FileNotFoundError:
        return {}
    except (msgpack.UnpackException, ValueError) as exc:
        raise ValueError(f"{path}: not a history file: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a history file")
    out: dict[str, Saved] = {}
    try:
        for cid, v in data.items():
            raw = [bytes(x) for x in v[1]]
            chunks: list[Chunk] = []
            skip = 0
            if len(v) >= 4:
                for count, body in v[2]:
                    if zstandard.frame_content_size(body) <= 0 or not 0 < int(count) <= CHUNK_LINES:
                        raise ValueError("bad chunk")
                    chunks.append((int(count), bytes(body)))
                skip = int(v[3])
                if chunks and not 0 <= skip < chunks[0][0]:
                    raise ValueError("bad skip")
            out[str(cid)] = (int(v[0]), raw, chunks, skip)
    except (TypeError, ValueError, IndexError, zstandard.ZstdError) as exc:
        raise ValueError(f"{path}: not a history file: {exc}") from None
    return out
