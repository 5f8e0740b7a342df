"""How sessions and ``GET /v3/channels/<id>/logs`` read a channel's history: one interface,
two backends, so readers never ask which mode the node runs in.

* :class:`LocalHistory` — the node's own ring (embedded mode): lines are numbered, SSE ids are
  those numbers, a reconnect resumes after a number.
* :class:`SharedHistory` — what every node wrote to the store (cluster mode): the node's
  numbers mean nothing to another node, so SSE ids are derived from each line's bytes and a
  reconnect resumes after the line with that id.

Unlike Logplex (which filtered only the newest ``num + 1`` lines), filters look through the
whole history, so ``-n 5 --dyno web.1`` finds five web.1 lines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from logrouter.core.channels import Channel
from logrouter.protocol.syslog import parse_line
from logrouter.protocol.tailfmt import TailFilter, line_id, render_lines, render_text, sse_event

__all__ = ["HistoryView", "LocalHistory", "SharedHistory", "newest_matching"]


class HistoryView(Protocol):
    """A channel's history as sessions and the v3 logs route see it."""

    async def session_head(self, channel: Channel, num: int, filt: TailFilter, sse: bool,
                           last_event_id: str) -> bytes:
        """What a session shows before its tail: after ``last_event_id`` when the history
        still holds that line (SSE resumes), else the newest ``num`` lines passing ``filt``;
        rendered as SSE events or text lines."""

    async def newest(self, channel: Channel, num: int) -> list[bytes]:
        """The newest ``num`` lines, oldest first."""


def newest_matching(lines: list[bytes], first: int, num: int,
                    filt: TailFilter) -> list[tuple[int, bytes]]:
    """The newest ``num`` of ``lines`` (oldest first, the first numbered ``first``) that pass
    ``filt``, oldest first, with their numbers."""
    if num <= 0:
        return []
    if not filt.active:
        keep = lines[-num:]
        start = first + len(lines) - len(keep)
        return [(start + i, line) for i, line in enumerate(keep)]
    out: list[tuple[int, bytes]] = []
    for i in range(len(lines) - 1, -1, -1):
        parsed = parse_line(lines[i])
        if parsed is not None and filt.matches(parsed):
            out.append((first + i, lines[i]))
            if len(out) == num:
                break
    out.reverse()
    return out


def _render_numbered(items: list[tuple[int, bytes]], sse: bool) -> bytes:
    out = []
    for seq, raw in items:
        parsed = parse_line(raw)
        if parsed is None:
            continue
        text = render_text(parsed)
        out.append(sse_event(text, seq) if sse else text)
    return b"".join(out)


class LocalHistory:
    """The channel's own ring (:class:`~logrouter.core.history.History`); reads are synchronous,
    so a session's backlog and its tail cursor are taken in one step (no gap, no repeat)."""

    async def session_head(self, channel: Channel, num: int, filt: TailFilter, sse: bool,
                           last_event_id: str) -> bytes:
        resume = last_event_id.strip()
        if sse and resume.isascii() and resume.isdigit() and len(resume) <= 20:
            since = channel.history.after(int(resume))
            if since is not None:
                return render_lines(since[1], filt, True, since[0])
        history = channel.history
        first, lines = history.last(len(history))
        return _render_numbered(newest_matching(lines, first, num, filt), sse)

    async def newest(self, channel: Channel, num: int) -> list[bytes]:
        return channel.history.last(num)[1]


class SharedHistory:
    """The history every node wrote to the shared store.

    Args:
        read: a channel id's lines, oldest first (``RedisStore.read_history``).
    """

    def __init__(self, read: Callable[[str], Awaitable[list[bytes]]]) -> None:
        self.read = read

    async def session_head(self, channel: Channel, num: int, filt: TailFilter, sse: bool,
                           last_event_id: str) -> bytes:
        lines = await self.read(channel.id)
        wanted = last_event_id.strip().encode("latin-1", "replace")
        if sse and wanted.startswith(b"c"):
            # after the oldest line with that id (a repeat rather than a gap if two match)
            for i, raw in enumerate(lines):
                if line_id(raw) == wanted:
                    return render_lines(lines[i + 1:], filt, True, content_ids=True)
        items = newest_matching(lines, 1, num, filt)
        return render_lines([raw for _, raw in items], filt, sse, content_ids=True)

    async def newest(self, channel: Channel, num: int) -> list[bytes]:
        return (await self.read(channel.id))[-num:] if num > 0 else []
