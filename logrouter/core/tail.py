"""Tails: a channel's live lines, shared by all of its tail sessions.

Theory of operation
-------------------
A channel with at least one live tail has one :class:`TailHub`, a channel
consumer. ``push`` (on the ingest path) appends the batch to a ring of recent
batches holding ``capacity`` lines (more for at most half a second, so that a
burst posted in one round of ingest does not overflow a tail that keeps up) and
wakes the readers — constant work, however many tails there are. Every line has its channel sequence number
(see :class:`~logrouter.core.history.History`).

Each session holds a :class:`TailCursor`: the number of the last line it sent.
On wake-up it takes everything after that from the ring. A batch is rendered
once per encoding (text, SSE) for all unfiltered cursors; filtered cursors
render their own. A cursor that fell behind the ring (its client was too slow)
resumes at the ring's oldest line and reports the lines it skipped, which the
session shows as the L11 line. A slow client never slows ingest or other
tails: it only loses lines.
"""

from __future__ import annotations

import time
from collections import deque

import trio

from logrouter.core.buffer import POST_LINES
from logrouter.core.channels import Channel
from logrouter.protocol.tailfmt import TailFilter, render_lines

__all__ = ["TailCursor", "TailHub", "TailHubs"]


class _Batch:
    __slots__ = ("at", "first_seq", "lines", "sse", "text")

    def __init__(self, first_seq: int, lines: list[bytes], at: float) -> None:
        self.first_seq = first_seq
        self.lines = lines
        self.at = at  # when it was pushed (trio clock)
        self.text: bytes | None = None
        self.sse: bytes | None = None

    @property
    def end_seq(self) -> int:
        return self.first_seq + len(self.lines)

    def rendered(self, sse: bool, content_ids: bool) -> bytes:
        if sse:
            if self.sse is None:
                self.sse = render_lines(self.lines, TailFilter(), True, self.first_seq,
                                        content_ids)
            return self.sse
        if self.text is None:
            self.text = render_lines(self.lines, TailFilter(), False)
        return self.text


class TailHub:
    """The ring of a channel's recent lines that its tails read from.

    Args:
        capacity: lines held; a tail further behind than this loses lines (L11).
        last_seq: the channel's newest line number when the hub is created.
        content_ids: SSE events carry ids derived from each line (cluster mode: the
            line numbers here are this node's own and mean nothing to another node).
    """

    def __init__(self, capacity: int, last_seq: int, content_ids: bool = False) -> None:
        self.capacity = capacity
        self.content_ids = content_ids
        self.next_seq = last_seq + 1
        self._batches: deque[_Batch] = deque()
        self._held = 0
        self._wakeup = trio.Event()
        self.cursors: set[TailCursor] = set()
        self.closed = False

    @property
    def oldest_seq(self) -> int:
        return self._batches[0].first_seq if self._batches else self.next_seq

    #: Lines younger than this stay even past ``capacity`` (up to ``BURST_FACTOR`` times it):
    #: the reads of one scheduler round can bring more lines than ``capacity`` at once, and a
    #: tail that keeps up must not lose them before its writer even ran.
    GRACE = 0.5
    BURST_FACTOR = 64
    #: Within the grace the ring holds at least one post of ingest, so a tail that keeps up
    #: gets a whole round.
    ROUND_LINES = POST_LINES
    BATCH_LINES = 1024  # a pushed batch is kept in pieces of at most this many lines
    READ_BYTES = 256 * 1024  # a read stops after this much rendered data (at least one batch)

    def push(self, lines: list[bytes]) -> bool:
        """Add a batch (never asks the feeder to wait: a slow tail only loses lines).

        Past ``capacity`` lines the oldest batches go, unless they are younger than
        ``GRACE`` seconds and the ring holds at most ``BURST_FACTOR * capacity`` lines (or
        ``ROUND_LINES``, if more).
        """
        hard = max(self.capacity * self.BURST_FACTOR, self.ROUND_LINES)
        if len(lines) > hard:
            skipped = len(lines) - hard
            self.next_seq += skipped
            lines = lines[skipped:]
        now = trio.current_time()
        step = self.BATCH_LINES
        for start in range(0, len(lines), step):  # a tail's read then stays small
            part = lines[start:start + step] if len(lines) > step else lines
            self._batches.append(_Batch(self.next_seq, part, now))
            self.next_seq += len(part)
        self._held += len(lines)
        batches = self._batches
        while self._held > self.capacity and (self._held > hard or now - batches[0].at > self.GRACE):
            self._held -= len(batches.popleft().lines)
        self.wake()
        return False

    async def wait_room(self, deadline: float) -> float:
        """Tails never push back."""
        return 0.0

    def wake(self) -> None:
        """Wake every waiting cursor (each re-checks whether it has something to do)."""
        self._wakeup.set()
        self._wakeup = trio.Event()

    def close(self) -> None:
        """The channel was deleted: every cursor ends."""
        self.closed = True
        self.wake()

    async def wait(self) -> None:
        await self._wakeup.wait()

    def read(self, after: int, filt: TailFilter, sse: bool) -> tuple[int, bytes, int]:
        """What came after line ``after``: ``(lines skipped, rendered bytes, last line number)``.

        At most about ``capacity`` lines or ``READ_BYTES`` (whole batches, at least one)
        per call, so what a tail has in hand to send stays small while the ring holds a
        burst (a thousand tails each with a burst in hand would hold gigabytes); the next
        call goes on from there."""
        skipped = max(0, self.oldest_seq - after - 1)
        chunks = []
        last = self.next_seq - 1
        taken = size = 0
        for batch in self._batches:
            if taken >= self.capacity or size >= self.READ_BYTES:
                last = batch.first_seq - 1
                break
            if batch.end_seq <= after + 1:
                continue
            if batch.first_seq > after:
                if filt.active:
                    chunks.append(render_lines(batch.lines, filt, sse,
                                               batch.first_seq if sse else None, self.content_ids))
                else:
                    chunks.append(batch.rendered(sse, self.content_ids))
            else:  # a batch partly seen (a resume inside it)
                start = after + 1 - batch.first_seq
                chunks.append(render_lines(batch.lines[start:], filt, sse,
                                           after + 1 if sse else None, self.content_ids))
            taken += batch.end_seq - max(batch.first_seq, after + 1)
            size += len(chunks[-1])
        return skipped, chunks[0] if len(chunks) == 1 else b"".join(chunks), last


class TailCursor:
    """One tail session's position in its channel's hub."""

    def __init__(self, hub: TailHub, filt: TailFilter, sse: bool, after: int) -> None:
        self.hub = hub
        self.filt = filt
        self.sse = sse
        self.after = after
        self.closed = False
        self.read_at = time.time()

    def close(self) -> None:
        self.closed = True
        self.hub.wake()

    async def next_chunk(self) -> tuple[int, float, bytes] | None:
        """Wait for new lines: ``(lines lost, lost since, rendered bytes)``, None once closed."""
        hub = self.hub
        while not self.closed and not hub.closed and hub.next_seq <= self.after + 1:
            await hub.wait()
        if self.closed or hub.closed:
            return None
        skipped, data, self.after = self.hub.read(self.after, self.filt, self.sse)
        since = self.read_at
        self.read_at = time.time()
        return skipped, since, data


class TailHubs:
    """A node's tail hubs: one per channel that has live tails, made on the first attach and
    dropped (and detached from its channel) with the last cursor.

    Args:
        capacity: lines each hub holds (a slower tail loses lines: L11).
        content_ids: SSE ids derived from each line's bytes (cluster mode).
    """

    def __init__(self, capacity: int, content_ids: bool = False) -> None:
        self.capacity = capacity
        self.content_ids = content_ids
        self._hubs: dict[str, TailHub] = {}

    def get(self, channel_id: str) -> TailHub | None:
        """The channel's hub, if it has live tails on this node."""
        return self._hubs.get(channel_id)

    def attach(self, channel: Channel, filt: TailFilter, sse: bool) -> tuple[TailCursor, bool]:
        """A cursor at the channel's newest line; True when this started the channel's hub."""
        hub = self._hubs.get(channel.id)
        new = hub is None or hub.closed
        if hub is None or hub.closed:
            hub = self._hubs[channel.id] = TailHub(self.capacity, channel.history.seq,
                                                   content_ids=self.content_ids)
            channel.add_consumer(hub)
        cursor = TailCursor(hub, filt, sse, channel.history.seq)
        hub.cursors.add(cursor)
        return cursor, new

    def detach(self, channel: Channel, cursor: TailCursor) -> bool:
        """Remove a cursor; True when it was the channel's last (its hub is gone)."""
        hub = cursor.hub
        hub.cursors.discard(cursor)
        if hub.cursors:
            return False
        channel.remove_consumer(hub)
        if self._hubs.get(channel.id) is hub:
            del self._hubs[channel.id]
            return True
        return False

    def close_all(self) -> None:
        """End every cursor (shutdown)."""
        for hub in list(self._hubs.values()):
            for cursor in list(hub.cursors):
                cursor.close()
