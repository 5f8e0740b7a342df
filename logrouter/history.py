"""Recent history: the last N cooked lines of a channel, and saving it across restarts.

A :class:`History` is a ring (drop-oldest, no loss report: history is a window,
not a queue) that also numbers every line ever appended, so a reader can ask
for "what came after line S" — the basis of SSE ``Last-Event-ID`` resumes.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable

import msgpack

__all__ = ["History", "load_histories", "save_histories"]


class History:
    """The last ``capacity`` lines of one channel, numbered from 1.

    ``seq`` is the number of the newest line. A fresh history starts numbering at
    the current time in microseconds, so numbers keep growing across a restart that
    lost the saved history (as long as a channel takes under a million lines a
    second): a client's ``Last-Event-ID`` from before is then simply "older".
    """

    __slots__ = ("_lines", "seq")

    def __init__(self, capacity: int, lines: Iterable[bytes] = (), seq: int | None = None) -> None:
        self._lines: deque[bytes] = deque(lines, maxlen=capacity)
        if seq is None:
            seq = time.time_ns() // 1000
        self.seq = max(seq, len(self._lines))

    def __len__(self) -> int:
        return len(self._lines)

    def extend(self, lines: list[bytes]) -> None:
        self._lines.extend(lines)
        self.seq += len(lines)

    def last(self, n: int) -> tuple[int, list[bytes]]:
        """The newest ``n`` lines, oldest first, and the number of the first."""
        dq = self._lines
        n = max(0, min(n, len(dq)))
        lines = list(dq)[len(dq) - n:] if n else []
        return self.seq - n + 1, lines

    def after(self, seq: int) -> tuple[int, list[bytes]] | None:
        """Lines numbered above ``seq`` and the number of the first; None when that cannot
        be answered without a gap or a guess: ``seq`` is in the future, or lines after it
        are no longer held."""
        if seq > self.seq or seq < self.seq - len(self._lines):
            return None
        return self.last(self.seq - seq)

    def snapshot(self) -> list[bytes]:
        return list(self._lines)


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
