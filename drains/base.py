"""The drain contract and what every drain shares: its buffer, counters and status.

Theory of operation
-------------------
A drain is a channel consumer. ``push`` (on the ingest path, synchronous)
appends to the drain's own :class:`~logrouter.core.buffer.BoundedBuffer` and wakes
the drain's task; it never blocks. The drain's task (:meth:`Drain.run`) takes
batches out of the buffer and delivers them.

**Bursts are absorbed, not dropped.** While a drain is *absorbing* — its last
connect or delivery did not fail, not slow, not degraded — its buffer may grow to
``burst_lines``, and ``push`` returns True once it holds more than
``buffer_lines``: the ingest connection that fed it then waits (see
:meth:`wait_room`) before reading more, until the drain is back under
``buffer_lines``. TCP flow control carries the wait to the sender. So a
receiver that keeps up on average gets every line of a burst of any size.
Feeders learn that they must wait only after a post, and one post (a round of
ingest: several connections' reads) may bring a drain far more than
``burst_lines`` at once; an absorbing drain therefore holds ``post_lines`` (what
one round holds at most) beyond ``burst_lines``, so no line of such a post is
displaced before its feeders were told to wait.

A drain with a disk spool also asks its feeders to wait while its memory holds more
lines than the disk has taken (a burst faster than the disk), whether or not its
receiver is up; such a wait never marks the drain slow.

**A drain never slows ingest for long.** A wait lasts at most
``backpressure_max`` seconds; a drain that cannot get back under
``buffer_lines`` in that time *because of its receiver* (see
:attr:`Drain.receiver_bound`: not connected, a write the socket did not take whole,
a request the receiver has not answered) is marked *slow*: its buffer shrinks to
``buffer_lines`` (the excess counted lost) and it stops pushing back until it
has caught up (its buffer empty) and a cool-down has passed: 10 s after the
first time, doubling each time it is found slow again (up to 5 minutes), so a
receiver that is slower than its input costs ingest at most one
``backpressure_max`` wait per cool-down. A drain that is not absorbing (down,
reconnecting, failing, degraded) holds ``buffer_lines`` and drops the oldest,
as Logplex did. Whatever is lost is counted and reported to the receiver by the
L10 line at the head of the next delivery.

**A busy router slows ingest, not its drains.** When the router itself is the
bottleneck (its CPU), a drain whose receiver takes every write is only waiting for
its turn to run: such waits are not charged to the connection's budget and never
mark the drain slow, so ingest runs at the speed the router can deliver (TCP flow
control carries that to the senders, as in rsyslog) and nothing is dropped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from drains.pacing import ConnectPacer
from logrouter.core.buffer import POST_LINES, BoundedBuffer, DrainQueue, Loss
from logrouter.destinations import DestinationPolicy
from logrouter.logs import Throttle, get_logger
from logrouter.models import DrainRecord, DrainUrl, parse_drain_url
from logrouter.protocol.syslog import format_time
from logrouter.settings import Settings

__all__ = ["Drain", "DrainOptions"]

log = get_logger("logrouter.drains")

SLOW_COOLDOWN = 10.0  # seconds a drain found slow stays slow at least (doubling per strike)
SLOW_COOLDOWN_MAX = 300.0
SLOW_FORGET = 600.0  # a drain not found slow for this long starts its cool-downs afresh
ROOM_SAMPLE = 0.005  # seconds between looks at whether a wait for room is the receiver's doing
#: Failures that lose nothing are logged once per ``DRAIN_ERROR_LOG_INTERVAL`` per destination,
#: with how many there were (``failures``): thousands of drains of one dead receiver made a line
#: each per reconnect round. Each drain's own ``last_error`` and error count stay exact.
DRAIN_ERROR_LOG_INTERVAL = 10.0
_failures_logged = Throttle(DRAIN_ERROR_LOG_INTERVAL)


@dataclass(frozen=True, slots=True)
class DrainOptions:
    """Delivery settings shared by all drains of a node (see logrouter.settings)."""

    buffer_lines: int = 1024
    degraded_lines: int = 10
    syslog_shrink_after: int = 10
    http_shrink_after: float = 300.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    max_connection_age: float = 18000.0
    syslog_send_timeout: float = 4.0
    syslog_idle_timeout: float = 240.0
    http_connect_timeout: float = 3.0
    http_response_timeout: float = 5.0
    http_attempts: int = 3
    http_batch_bytes: int = 102400
    tls_ca_file: str = ""
    linger: float = 0.002
    burst_lines: int = 32768
    #: Lines one post of ingest may bring a drain at once: an absorbing drain holds them
    #: beyond ``burst_lines`` (see the module docstring).
    post_lines: int = POST_LINES
    backpressure_max: float = 1.0
    spool_bytes: int = 0
    spool_root: str = ""

    @classmethod
    def from_settings(cls, s: Settings, destinations: DestinationPolicy) -> DrainOptions:
        """The drain settings of ``s`` (each declared once, in :mod:`logrouter.settings`)."""
        return cls(
            buffer_lines=s.drain_buffer_lines, degraded_lines=s.drain_degraded_lines,
            syslog_shrink_after=s.syslog_drain_shrink_after,
            http_shrink_after=s.http_drain_shrink_after,
            backoff_initial=s.drain_backoff_initial, backoff_max=s.drain_backoff_max,
            max_connection_age=s.drain_max_connection_age,
            syslog_send_timeout=s.syslog_drain_send_timeout,
            syslog_idle_timeout=s.syslog_drain_idle_timeout,
            http_connect_timeout=s.http_drain_connect_timeout,
            http_response_timeout=s.http_drain_response_timeout,
            http_attempts=s.http_drain_attempts, http_batch_bytes=s.http_drain_batch_bytes,
            tls_ca_file=s.tls_ca_file, linger=s.syslog_drain_linger,
            destinations=destinations, burst_lines=s.drain_burst_lines,
            backpressure_max=s.drain_backpressure_max, spool_bytes=s.drain_spool_bytes,
            spool_root=os.path.join(s.data_dir, "spool"),
            connect_pacer=ConnectPacer(s.drain_connect_rate))
    destinations: DestinationPolicy = field(default_factory=DestinationPolicy)
    #: Spaces the connection attempts of all the node's drains (``drain_connect_rate``).
    connect_pacer: ConnectPacer = field(default_factory=lambda: ConnectPacer(0.0))


class Drain:
    """Base of the drain kinds. Subclasses implement :meth:`deliver_forever`.

    Args:
        record: the drain's id, token, channel and URL.
        options: delivery settings.
        inject: posts lines into the drain's own channel, bypassing drains (L14).
        buffer: a buffer to take over (a drain whose URL changed keeps its lines), or the
            drain's spool.
        persist: with a spool, writes it now (an HTTP batch is on disk before it is sent).
        observe_request: told how long each HTTP request took to answer (a histogram).
        observe_delay: told, for each delivery, how long its oldest line waited in the buffer.
    """

    def __init__(self, record: DrainRecord, options: DrainOptions,
                 inject: Callable[[list[bytes]], None] | None = None,
                 buffer: DrainQueue | None = None,
                 persist: Callable[[], Awaitable[None]] | None = None,
                 observe_request: Callable[[float], None] | None = None,
                 observe_delay: Callable[[float], None] | None = None) -> None:
        assert record.url is not None
        self.record = record
        self.url: DrainUrl = parse_drain_url(record.url)
        self.token = record.token.encode()
        self.options = options
        self.buffer: DrainQueue = buffer if buffer is not None else BoundedBuffer(
            options.buffer_lines)
        self.inject = inject
        self.persist = persist
        self.delivered = 0
        self.connects = 0  # connections opened
        self.errors = 0  # failed connects, writes and requests
        self.observe_request = observe_request or (lambda seconds: None)
        self.observe_delay = observe_delay or (lambda seconds: None)
        self._waiting_since: float | None = None  # when the oldest waiting line arrived
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.connected = False
        self.degraded = False
        self.slow = False  # could not catch up within backpressure_max: no push-back for now
        self._slow_until = 0.0  # trio time before which a slow drain stays slow
        self._slow_strikes = 0  # times found slow recently (the cool-down doubles)
        self._failing = False  # the last delivery attempt failed (cleared by a success)
        self._room = trio.Event()  # set when the buffer falls to buffer_lines
        self._room_waiters = 0
        self._awaiting_slot = False  # waiting for a connection-attempt slot (connect_slot)
        self._wakeup = trio.Event()
        self._wake_at = 1  # buffered lines that wake the delivery task (raised while lingering)
        self._quiet = False  # nothing buffered or in flight (see wait_idle)
        self._quiet_waiter: trio.Event | None = None  # set when quiet; made by wait_idle
        self._closed = False
        self.buffer.when_written(self._signal_room)  # a spool: a feeder may wait for its disk
        self._apply_capacity()  # a buffer taken over may have been sized for another state

    # consumer side (ingest path) ---------------------------------------------------------

    def push(self, lines: list[bytes]) -> bool:
        """Buffer ``lines``; True when the feeder should wait for room (see :meth:`wait_room`)."""
        buffer = self.buffer
        if self._waiting_since is None:
            self._waiting_since = trio.current_time()
        self._lines_waiting(buffer.push_many(lines))
        self._quiet = False
        return (len(buffer) > self.options.buffer_lines and self.absorbing) or buffer.waits_for_disk

    def _lines_waiting(self, displaced: int) -> None:
        """Lines were pushed (``displaced`` old ones lost to make room): get them delivered.
        Here: wake the delivery task once there is enough to do, or a loss to report."""
        if displaced or len(self.buffer) >= self._wake_at:
            self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        self._room.set()

    @property
    def spooled(self) -> bool:
        """Undelivered lines are kept on disk (drain_spool_bytes): nothing is given up on."""
        return self.buffer.spooled

    @property
    def absorbing(self) -> bool:
        """Bursts beyond ``buffer_lines`` are kept (and pushed back on) rather than dropped:
        the drain's last attempt did not fail (a drain that is connecting for the first time
        or after an idle close absorbs too), and it is neither slow nor degraded."""
        return not (self.slow or self.degraded or self._failing or self._closed)

    def _capacity(self) -> int:
        opts = self.options
        if self.degraded:
            return opts.degraded_lines
        if self.absorbing:
            return max(opts.burst_lines, opts.buffer_lines) + opts.post_lines
        return opts.buffer_lines

    def _apply_capacity(self) -> None:
        """Size the buffer for the drain's state (the excess counts lost); wake waiters if
        the drain no longer absorbs."""
        capacity = self._capacity()
        if self.buffer.capacity != capacity:
            self.buffer.resize(capacity)
        if not self.absorbing or len(self.buffer) <= self.options.buffer_lines:
            self._signal_room()

    def _signal_room(self) -> None:
        if self._room_waiters:
            self._room.set()
            self._room = trio.Event()

    def set_connected(self, connected: bool, healthy: bool = False) -> None:
        """Record a connect (``healthy``: the connection itself shows the receiver is back,
        as for syslog) or a disconnect, and size the buffer for it."""
        if healthy:
            self._failing = False
        if connected and not self.connected:
            self.connects += 1
        if connected != self.connected or healthy:
            self.connected = connected
            self._apply_capacity()

    @property
    def receiver_bound(self) -> bool:
        """Whether delivery now waits on the receiver (or cannot reach it) rather than on
        this router's CPU. True here; a drain that can tell overrides it."""
        return True

    async def connect_slot(self) -> None:
        """Wait for this drain's connection-attempt slot (:mod:`drains.pacing`). The wait is
        this router's pacing, not the receiver's doing: :attr:`receiver_bound` is False
        meanwhile, so a drain waiting its turn after a restart is not marked slow and drops
        nothing; its feeders wait for it, uncharged, as for a busy node's CPU."""
        self._awaiting_slot = True
        try:
            await self.options.connect_pacer.wait()
        finally:
            self._awaiting_slot = False

    async def wait_room(self, deadline: float) -> float:
        """Wait (ingest side) until the buffer is back to ``buffer_lines`` or the drain stops
        absorbing, and a spool's disk has caught up with its memory
        (:attr:`~logrouter.core.buffer.DrainQueue.waits_for_disk`), or ``deadline`` passes. A
        drain that pushed back only for its disk is never marked slow for it. The wait is
        judged by how much of it was the receiver's doing: :attr:`receiver_bound` is sampled
        every ``ROOM_SAMPLE`` seconds (one instant would mislead: a drain turning over on a
        busy router has nearly always just sent a request). Unless it made room, a drain not
        yet slow that is receiver-bound at the end and for at least half of the wait is then
        marked slow (see the module docstring).

        Returns:
            The seconds of the wait that were the receiver's doing (the feeder charges them
            to its budget).
        """
        limit = self.options.buffer_lines
        start = trio.current_time()
        absorbing = self.absorbing
        samples = bound_samples = 0
        self._room_waiters += 1
        try:
            with trio.move_on_at(deadline):
                while (self.absorbing and len(self.buffer) > limit) or self.buffer.waits_for_disk:
                    with trio.move_on_after(ROOM_SAMPLE):
                        await self._room.wait()
                    samples += 1
                    bound_samples += self.receiver_bound
        finally:
            self._room_waiters -= 1
        bound = self.receiver_bound
        share = (bound_samples + bound) / (samples + 1)
        now = trio.current_time()
        if ((absorbing or not self.buffer.spooled) and not self._closed and not self.slow
                and (len(self.buffer) > limit or not self.absorbing) and bound and share >= 0.5):
            # it did not make room in time, or failed meanwhile: no more push-back for now
            # (once: another feeder waiting on it may have found it slow already)
            if now - self._slow_until > SLOW_FORGET:
                self._slow_strikes = 0
            self._slow_strikes += 1
            self._slow_until = now + min(SLOW_COOLDOWN * 2 ** (self._slow_strikes - 1),
                                         SLOW_COOLDOWN_MAX)
            self.slow = True
            before, lost_before = len(self.buffer), self.buffer.lost
            self._apply_capacity()  # a memory buffer loses the excess; a spool keeps it on disk
            log.warning("drain_slow", drain_id=self.record.id, channel_id=self.record.channel_id,
                        dest=self.url.host, buffered=before, lost=self.buffer.lost - lost_before)
        return (now - start) * share

    # delivery side -----------------------------------------------------------------------

    async def wait_lines(self, at_least: int = 1) -> None:
        """Wait until ``at_least`` lines (or an unreported loss) are waiting for delivery."""
        buffer = self.buffer
        self._wake_at = at_least
        try:
            while len(buffer) < at_least and not buffer.has_loss:
                if not len(buffer):
                    self._set_quiet()
                self._wakeup = trio.Event()
                await self._wakeup.wait()
        finally:
            self._wake_at = 1
        await buffer.ready()

    def _set_quiet(self) -> None:
        """Everything pushed so far was delivered or given up on."""
        self._quiet = True
        waiter, self._quiet_waiter = self._quiet_waiter, None
        if waiter is not None:
            waiter.set()

    async def wait_idle(self) -> None:
        """Wait until everything pushed so far was delivered or given up on. (A push only
        clears a flag: no event is made per delivery cycle unless somebody waits here.)"""
        while not self._quiet:
            if self._quiet_waiter is None:
                self._quiet_waiter = trio.Event()
            await self._quiet_waiter.wait()

    @property
    def dropped(self) -> int:
        """Lines lost so far: displaced from the full buffer or given up on."""
        return self.buffer.lost

    def succeeded(self, lines: int) -> None:
        """The batch in flight was delivered (``lines`` of it were log lines)."""
        self.buffer.ack()
        self.delivered += lines
        now = trio.current_time()
        if self._waiting_since is not None:
            self.observe_delay(now - self._waiting_since)
        self._waiting_since = now if len(self.buffer) else None
        self.last_success = time.time()
        if self.degraded:
            self.restore()
        changed = self._failing
        self._failing = False
        if self.slow and not len(self.buffer) and trio.current_time() >= self._slow_until:
            self.slow = False  # caught up, and cooled down: absorb bursts again
            changed = True
        if changed:
            self._apply_capacity()
        elif len(self.buffer) <= self.options.buffer_lines:
            self._signal_room()

    def degrade(self) -> None:
        """Logplex's degraded mode: a drain failing for long keeps only its newest
        ``degraded_lines`` lines; the excess counts as lost and the next L10 reports it."""
        if self.buffer.capacity != self.options.degraded_lines:
            self.degraded = True
            before = len(self.buffer)
            self._apply_capacity()
            log.warning("drain_degraded", drain_id=self.record.id, channel_id=self.record.channel_id,
                        dest=self.url.host, lost=max(0, before - self.options.degraded_lines))

    def restore(self) -> None:
        """Leave degraded mode: the buffer holds ``buffer_lines`` again."""
        if self.degraded:
            self.degraded = False
            self._apply_capacity()
            log.info("drain_restored", drain_id=self.record.id, channel_id=self.record.channel_id)

    def failed(self, error: str, lost_lines: int = 0, loss: Loss | None = None,
               transient: bool = True) -> None:
        """Record a delivery failure; ``lost_lines`` (and a carried ``loss``) are given up on
        and will be reported by the next L10. A ``transient`` failure (the receiver is down
        or failing, not refusing one batch) stops the drain absorbing bursts until its next
        success."""
        self.last_error = error
        self.last_error_at = time.time()
        if lost_lines or loss is not None:
            self.buffer.lose(lost_lines)
            if loss is not None:
                self.buffer.unpop(loss, [])
            self.buffer.ack()  # the batch is done with: given up on
        if transient and not self._failing:
            self._failing = True
            self._apply_capacity()
        dest = f"{self.url.host}:{self.url.port}"
        if lost_lines or loss is not None:
            failures = 1  # lines given up on: always said
        elif not (failures := _failures_logged.passes(dest)):
            return
        log.warning("drain_error", drain_id=self.record.id, channel_id=self.record.channel_id,
                    dest=dest, error=error, lost=lost_lines, failures=failures)

    def metric_row(self) -> tuple[int, int, int, int, int]:
        """``(delivered, dropped, buffered, connects, errors)``: the drain's series in
        ``/metrics``."""
        return self.delivered, self.buffer.lost, len(self.buffer), self.connects, self.errors

    def statistics(self) -> dict[str, Any]:
        """The drain's status as the API shows it."""
        stats = self.buffer.statistics()

        def iso(t: float | None) -> str | None:
            return format_time(t).decode() if t is not None else None

        return {
            "delivered": self.delivered, "dropped": stats.lost, "buffered": stats.buffered,
            "pending_loss": stats.pending_loss, "connected": self.connected,
            "degraded": self.degraded, "slow": self.slow,
            "last_success": iso(self.last_success), "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
        }

    async def run(self) -> None:
        """Deliver until cancelled (the drain was removed or the node stops); a spool is
        opened first (what the last run left is delivered first)."""
        await self.buffer.ready()
        if len(self.buffer) or self.buffer.has_loss:
            self._wakeup.set()
        await self.deliver_forever()

    async def deliver_forever(self) -> None:
        raise NotImplementedError
