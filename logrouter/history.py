"""Recent history: the last N cooked lines of a channel, and saving it across restarts.

A :class:`History` is a ring (drop-oldest, no loss report: history is a window,
not a queue) that also numbers every line ever appended, so a reader can ask
for "what came after line S" — the basis of SSE ``Last-Event-ID`` resumes. The
lines of quiet channels are kept compressed (:class:`HistoryCompactor`), so a
node holds the full history of tens of thousands of apps.
"""

from __future__ import annotations

import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable

import msgpack
import trio

__all__ = ["CHUNK_LINES", "History", "HistoryCompactor", "load_histories", "save_histories"]


#: Lines per compressed chunk of cold history.
CHUNK_LINES = 256


def _pack(lines: list[bytes]) -> bytes:
    return zlib.compress(msgpack.packb(lines, use_bin_type=True), 6)


def _unpack(chunk: bytes) -> list[bytes]:
    lines: list[bytes] = msgpack.unpackb(zlib.decompress(chunk), raw=True)
    return lines


class History:
    """The last ``capacity`` lines of one channel, numbered from 1.

    ``seq`` is the number of the newest line. A fresh history starts numbering at
    the current time in microseconds, so numbers keep growing across a restart that
    lost the saved history (as long as a channel takes under a million lines a
    second): a client's ``Last-Event-ID`` from before is then simply "older".

    New lines go into a ring of raw lines (``extend`` is a ``deque.extend``). A channel
    that has been quiet for a while has its lines compressed by :class:`HistoryCompactor`
    (zlib over chunks of ``CHUNK_LINES``, 10 to 12 times smaller for typical lines); reads
    decompress what they need. The oldest lines, raw or compressed, go once the window
    is full.
    """

    __slots__ = ("_cold", "_cold_count", "_cold_skip", "_lines", "capacity", "seq")

    def __init__(self, capacity: int, lines: Iterable[bytes] = (), seq: int | None = None) -> None:
        self.capacity = capacity
        self._lines: deque[bytes] = deque(lines, maxlen=capacity)
        self._cold: deque[tuple[int, bytes]] = deque()  # (lines, compressed), oldest first
        self._cold_count = 0  # lines in _cold
        self._cold_skip = 0  # lines of the oldest cold chunk already out of the window
        if seq is None:
            seq = time.time_ns() // 1000
        self.seq = max(seq, len(self._lines))

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
            return self.seq - n + 1, list(hot)[len(hot) - n:]
        need = n - len(hot)
        parts: list[list[bytes]] = []
        for i in range(len(self._cold) - 1, -1, -1):
            chunk = _unpack(self._cold[i][1])
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

    def compaction_input(self) -> tuple[int, list[bytes], list[bytes]]:
        """What compacting needs: ``(seq now, lines of the newest cold chunk if it is not
        full, the raw lines)``; the chunk is decompressed here."""
        tail: list[bytes] = []
        if self._cold and self._cold[-1][0] < CHUNK_LINES:
            tail = _unpack(self._cold[-1][1])
        return self.seq, tail, list(self._lines)

    def compacted(self, seq: int, merged_tail: bool, chunks: list[tuple[int, bytes]]) -> bool:
        """Swap in ``chunks`` (made from :meth:`compaction_input` at ``seq``) for the raw
        lines (and the partial cold chunk they merged); False, and nothing changes, when lines
        arrived meanwhile."""
        if seq != self.seq:
            return False
        if merged_tail:
            count, _ = self._cold.pop()
            self._cold_count -= count
        for count, data in chunks:
            self._cold.append((count, data))
            self._cold_count += count
        self._lines.clear()
        self._trim_cold()
        return True


def compress_lines(tail: list[bytes], lines: list[bytes]) -> list[tuple[int, bytes]]:
    """``tail + lines`` as compressed chunks of at most ``CHUNK_LINES`` (blocking: zlib)."""
    every = tail + lines
    return [(len(every[i:i + CHUNK_LINES]), _pack(every[i:i + CHUNK_LINES]))
            for i in range(0, len(every), CHUNK_LINES)]


class HistoryCompactor:
    """Compresses the history of channels that have been quiet for ``idle`` seconds.

    Every ``idle`` seconds it compares each channel's line number with the last pass:
    a channel that took no line since then, with raw lines to compress, is compacted in a
    worker thread (zlib releases the GIL), a hundred channels per trip. A busy channel is
    never touched, so ingest does no compression work: its lines leave the window raw.

    Args:
        histories: returns the histories to look at, by channel id.
        idle: seconds a channel must be quiet; 0 turns compaction off.
    """

    BATCH = 100

    def __init__(self, histories: Callable[[], dict[str, History]], idle: float) -> None:
        self.histories = histories
        self.idle = idle
        self._seen: dict[str, int] = {}
        self.compacted_lines = 0

    async def run(self) -> None:
        if self.idle <= 0:
            return
        while True:
            await trio.sleep(self.idle)
            await self.pass_once()

    async def pass_once(self) -> None:
        """One pass over every channel (see the class docstring)."""
        current = self.histories()
        seen, self._seen = self._seen, {}
        todo: list[tuple[History, int, list[bytes], list[bytes]]] = []
        for channel_id, history in current.items():
            seq = history.seq
            self._seen[channel_id] = seq
            if seen.get(channel_id) == seq and history.hot:
                now_seq, tail, lines = history.compaction_input()
                todo.append((history, now_seq, tail, lines))
            if len(todo) >= self.BATCH:
                await self._compact(todo)
                todo = []
        if todo:
            await self._compact(todo)

    async def _compact(self, todo: list[tuple[History, int, list[bytes], list[bytes]]]) -> None:
        results = await trio.to_thread.run_sync(
            lambda: [compress_lines(tail, lines) for _, _, tail, lines in todo])
        for (history, seq, tail, lines), chunks in zip(todo, results, strict=True):
            if history.compacted(seq, bool(tail), chunks):
                self.compacted_lines += len(lines)


def save_histories(path: str, histories: dict[str, History]) -> int:
    """Write every history to ``path`` (msgpack, replaced atomically); return lines saved."""
    payload = {cid: (h.seq, h.snapshot()) for cid, h in histories.items() if len(h)}
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        msgpack.pack(payload, fh, use_bin_type=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return sum(len(lines) for _, lines in payload.values())


def load_histories(path: str) -> dict[str, tuple[int, list[bytes]]]:
    """Read what :func:`save_histories` wrote: channel id → (seq, lines). Missing file → {}.

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
    return {str(cid): (int(v[0]), [bytes(x) for x in v[1]]) for cid, v in data.items()}
