"""The ingest pipeline shared by every transport: route a batch, post it, count it.

:meth:`Ingest.read` (a syslog read) or :meth:`Ingest.frames` (a request's frames) is
called once per read or request. It makes one metric
call per counter per batch and logs drops at most once a second per reason
(with the count since the last line), never per message.

Posting in rounds
-----------------
A read is routed at once, into the node's pending round, and posted together
with every other read or request routed in the same pass of the event loop: the
first batch of a round (its lead) yields (the other connections that are ready
route theirs meanwhile), then posts the round — one ``Channel.post`` per channel for
all of them — and wakes the others. With lines spread over many connections or
apps each channel and drain then gets fewer, fuller batches (paced S1 at 1 M
lines/s: 0.81-0.87 µs a line against 0.89-0.96). A round holding ``ROUND_ENOUGH``
lines is posted at once — unless they are spread thinner than ``ROUND_SPREAD`` lines
a channel (thousands of apps, where each channel post and drain write costs several
µs of its own): then it may grow to ``ROUND_LINES`` (S1 with 5,000 apps: +11 %
lines/s, median of four pairs against posting at 262,144; 100 apps post as before). A round
is posted at once at ``ROUND_LINES`` lines or ``ROUND_BYTES`` bytes of reads, so it
stays bounded.
Order is kept within each connection: its lines are appended to each channel's
list in the order they were read.

Rounds grow while the node is behind. A syslog read that finds more waiting in
the kernel (``more``: it filled its buffer, or was big; see ``tcp_server``) does
not wait for its round's post: it returns, and the connection's next read joins
the same round; the lead yields again until two passes in a row bring no such
read (at most ``ROUND_PASSES``). A node at saturation thus posts rounds of over a
hundred thousand lines (each of 5,000 channels gets tens of lines a post instead
of ten), while a node that keeps up posts after one pass, as before: its reads do
not fill their buffers. The push-back of a round a connection did not wait for is
settled at the start of its next read (:class:`Feeder`). The price is paid at
saturation only: a line of a quiet connection that joins a growing round is
posted with it, a few passes later (S1 flat out, the lead's wait for its round:
5,000 apps 2.5 passes and 81 ms on average, 269 ms at most, against 31 and 141 ms
with one pass; 100 apps 3.9 passes, 48 and 106 ms, against 12 and 48 ms).

:meth:`Ingest.frames` and :meth:`Ingest.token_frames` return the drains their round
pushed past their buffer; the transport then awaits :meth:`Ingest.wait_for_room`
before reading more (burst absorption). :meth:`Ingest.read` does that wait itself.
"""

from __future__ import annotations

import trio
from prometheus_client import Counter

from logrouter.core.buffer import POST_LINES
from logrouter.core.channels import Channel, ChannelTable, Consumer
from logrouter.core.token_routing import Routing, route_by_token, route_to
from logrouter.logs import Throttle, get_logger
from logrouter.metrics import Metrics
from logrouter.protocol.framing import FrameSplitter

__all__ = ["Feeder", "Ingest", "WaitBudget"]

log = get_logger("logrouter.ingest")


class WaitBudget:
    """How long one ingest connection may still wait for drains: ``max_wait`` at once, and
    refilled at a tenth of a second per second, so however many drains push back a
    connection spends at most ``max_wait`` plus 10 % of its time waiting."""

    __slots__ = ("_at", "_left", "max_wait")

    REFILL = 0.1  # seconds of waiting allowed per second

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self._left = max_wait
        self._at = trio.current_time()

    def available(self, now: float) -> float:
        self._left = min(self.max_wait, self._left + (now - self._at) * self.REFILL)
        self._at = now
        return max(0.0, self._left)

    def spend(self, seconds: float) -> None:
        self._left -= seconds


class _Round:
    """Lines routed since the last post, posted together (see the module docstring)."""

    __slots__ = ("done", "grows", "pressured")

    def __init__(self) -> None:
        self.done = trio.Event()  # set once its lines went to their channels
        self.pressured: list[Consumer] = []  # consumers the post pushed past their buffer
        self.grows = False  # a read with more waiting joined since the lead last looked


class Feeder:
    """One syslog connection's standing with the pipeline: its allowance of waiting for
    drains, and the round it routed a read into without waiting for the post (its
    push-back is settled before the connection's next read is routed)."""

    __slots__ = ("budget", "unsettled")

    def __init__(self, budget: WaitBudget) -> None:
        self.budget = budget
        self.unsettled: _Round | None = None


class Ingest:
    """Routes frames into channels and keeps the ingest counters."""

    #: A round holding this many lines, or syslog reads of this many bytes, is posted at once.
    ROUND_LINES = POST_LINES
    ROUND_BYTES = 128 * 1024 * 1024
    #: A round holding this many lines is posted at once unless it holds fewer than
    #: ``ROUND_SPREAD`` lines a channel (see the module docstring).
    ROUND_ENOUGH = POST_LINES // 2
    ROUND_SPREAD = 64
    #: Passes of the event loop a round's lead waits at most while reads with more waiting
    #: keep joining it.
    ROUND_PASSES = 16

    def __init__(self, table: ChannelTable, metrics: Metrics, backpressure_max: float = 1.0,
                 ) -> None:
        self.table = table
        self.backpressure_max = backpressure_max
        self.metrics = metrics
        self._drop_log = Throttle()
        self._round: _Round | None = None
        self._pending: dict[Channel, list[bytes]] = {}  # the round's lines per channel
        self._pending_lines = 0
        self._pending_bytes = 0  # the bytes of the syslog reads routed into the round

    def dropped(self, reason: str, count: int, peer: str) -> None:
        """Count and (rate-limited) log ``count`` frames dropped as malformed for ``reason``."""
        if count:
            self.metrics.malformed[reason].inc(count)
            self._log_drop(reason, count, peer)

    def _log_drop(self, reason: str, count: int, peer: str) -> None:
        """Log dropped frames at most once a second per reason, with the count since."""
        if total := self._drop_log.passes(reason, count):
            log.warning("drop", reason=reason, count=total, last_peer=peer)

    def feeder(self) -> Feeder:
        """A new syslog connection's standing: see :meth:`read`."""
        return Feeder(self.budget())

    async def read(self, feeder: Feeder, splitter: FrameSplitter, data: bytes,
                   received: Counter, peer: str, more: bool = False) -> None:
        """Split one read of a syslog stream, route its frames straight from ``data`` (no
        bytes object per frame: :meth:`Routing.octets`), post them with the round and let
        the drains the round pushed past their buffer catch up (:meth:`wait_for_room`)
        before returning. A read that completes no frame returns at once.

        ``more``: more is waiting in the socket (the transport's judgement: the read filled
        its buffer, or was big); while its round is open and not full the call then returns
        without waiting for the post (the next read joins the same round), and the round's
        push-back is waited for at the start of the next call instead.
        """
        await self._settle(feeder)
        routing = Routing(self.table.route, self._pending, self.table.route_cache)
        splitter.feed_to(data, routing.octets, routing.frames)
        if not routing.routed and not routing.dropped:
            return
        self._pending_bytes += len(data)
        pressured = await self._routed(routing, received, peer, feeder if more else None)
        if pressured:
            await self.wait_for_room(pressured, feeder.budget)

    async def _settle(self, feeder: Feeder) -> None:
        """Wait for room in the drains that the round ``feeder`` left without waiting
        pushed past their buffer, once that round is posted."""
        round_ = feeder.unsettled
        if round_ is not None and round_.done.is_set():
            feeder.unsettled = None
            if round_.pressured:
                await self.wait_for_room(round_.pressured, feeder.budget)

    async def frames(self, frames: list[bytes], received: Counter, peer: str) -> list[Consumer]:
        """Route frames by the token in each APP-NAME and post them with the round.

        Returns:
            The consumers (drains absorbing a burst) the caller must let catch up, with
            :meth:`wait_for_room`, before it feeds more; usually empty.
        """
        table = self.table
        return await self._routed(route_by_token(frames, table.route, self._pending,
                                                 table.route_cache), received, peer)

    async def _routed(self, routing: Routing[Channel], received: Counter, peer: str,
                      feeder: Feeder | None = None) -> list[Consumer]:
        """Count a batch routed into the pending round, and post it with the round (a
        ``feeder`` with more to read may go on without waiting: see :meth:`_finish`)."""
        round_, lead = self._join()
        routed = routing.routed
        if routed:
            received.inc(routed)
            self._pending_lines += routed
        if routing.unknown_token:
            self.metrics.unknown_token.inc(routing.unknown_token)
            self._log_drop("unknown_token", routing.unknown_token, peer)
        self.dropped("no_token", routing.no_token, peer)
        self.dropped("not_syslog", routing.not_syslog, peer)
        return await self._finish(round_, lead, feeder)

    async def token_frames(self, frames: list[bytes], channel: Channel, token: bytes,
                           name: bytes, received: Counter) -> list[Consumer]:
        """Post frames sent with one token's credentials to that token's channel, with the
        round; returns what :meth:`frames` returns."""
        round_, lead = self._join()
        if frames:
            cooked = route_to(frames, token, name)
            pending = self._pending.get(channel)
            if pending is None:
                self._pending[channel] = cooked
            else:
                pending += cooked
            received.inc(len(frames))
            self._pending_lines += len(frames)
        return await self._finish(round_, lead)

    def _join(self) -> tuple[_Round, bool]:
        """The round a batch is routed into, and whether the batch begins it."""
        round_ = self._round
        if round_ is None:
            round_ = self._round = _Round()
            return round_, True
        return round_, False

    async def _finish(self, round_: _Round, lead: bool,
                      feeder: Feeder | None = None) -> list[Consumer]:
        """Post the round now when it is full; else the batch that began it posts it after
        one pass of the event loop, or, once reads with more to read joined it, after the
        first two passes in a row in which none did (at most ``ROUND_PASSES``; shielded:
        posted even if that caller is cancelled), and the others wait for that
        — except a ``feeder`` with more to read, which returns at once with nothing: it
        settles the round's push-back before its next read (:meth:`_settle`)."""
        if self._full():
            self._post(round_)
        elif lead:
            try:
                grown = False
                idle = 0  # passes in a row without a read with more joining
                for _ in range(self.ROUND_PASSES):
                    round_.grows = False
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    if round_.done.is_set():
                        break
                    if round_.grows:
                        grown, idle = True, 0
                        continue
                    idle += 1
                    if not grown or idle == 2:  # two: a read may fall either side of a look
                        break
            finally:
                self._post(round_)
        elif feeder is not None:
            round_.grows = True
            feeder.unsettled = round_
            return []
        else:
            await round_.done.wait()
        return round_.pressured

    def _full(self) -> bool:
        """Whether the pending round is to be posted at once (see the module docstring)."""
        lines = self._pending_lines
        return (lines >= self.ROUND_LINES or self._pending_bytes >= self.ROUND_BYTES
                or (lines >= self.ROUND_ENOUGH
                    and lines >= self.ROUND_SPREAD * len(self._pending)))

    def _post(self, round_: _Round) -> None:
        """Post the round's lines, one ``Channel.post`` per channel, and wake its batches."""
        if round_.done.is_set():
            return
        pending, self._pending = self._pending, {}
        self._pending_lines = self._pending_bytes = 0
        if self._round is round_:
            self._round = None
        round_.done.set()  # its waiters run after this returns, pressured filled in
        pressured = round_.pressured
        for channel, lines in pending.items():
            channel.post(lines, pressured)

    def budget(self) -> WaitBudget:
        """A new connection's (or request's) allowance of waiting for drains."""
        return WaitBudget(self.backpressure_max)

    async def wait_for_room(self, pressured: list[Consumer], budget: WaitBudget) -> None:
        """Let the drains a batch pushed past their buffer catch up, for at most what
        ``budget`` allows (each drain that does not because of its receiver is marked slow
        and stops pushing back; see :mod:`drains.base`). Only the part of the waits that was
        some receiver's doing spends the budget: waiting for the router's own CPU (a saturated
        node) is what flow control is for. The caller reads nothing meanwhile, so TCP flow
        control slows the sender instead of lines being dropped."""
        start = trio.current_time()
        deadline = start + budget.available(start)
        self.metrics.backpressure_waits.inc()
        charged = 0.0
        for consumer in pressured:  # past the deadline: a receiver-bound one is marked slow
            charged += await consumer.wait_room(deadline)
        end = trio.current_time()
        budget.spend(min(charged, end - start))  # waits for the router's own CPU are free
        self.metrics.backpressure_seconds.inc(end - start)
