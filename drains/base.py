"""The drain contract and what every drain shares: its buffer, counters and status.

Theory of operation
-------------------
A drain is a channel consumer. ``push`` (on the ingest path, synchronous)
appends to the drain's own :class:`~logrouter.buffer.BoundedBuffer` (1,024 lines
by default, drop-oldest) and wakes the drain's task; it never blocks, so a slow,
dead or hostile receiver costs ingest, tails and other drains nothing but its
own bounded buffer.

The drain's task (:meth:`Drain.run`) takes batches out of the buffer and
delivers them. Delivery is at-most-once: a batch that cannot be delivered is
counted as lost, and the loss — like lines displaced from a full buffer — is
reported to the receiver by the L10 line at the head of the next delivery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from logrouter.buffer import BoundedBuffer, Loss
from logrouter.destinations import DestinationPolicy
from logrouter.models import DrainRecord, DrainUrl, parse_drain_url
from logrouter.protocol.syslog import format_time

__all__ = ["Drain", "DrainOptions"]

log = logging.getLogger("logrouter.drains")


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
    destinations: DestinationPolicy = field(default_factory=DestinationPolicy)


class Drain:
    """Base of the drain kinds. Subclasses implement :meth:`deliver_forever`.

    Args:
        record: the drain's id, token, channel and URL.
        options: delivery settings.
        inject: posts lines into the drain's own channel, bypassing drains (L14).
        buffer: a buffer to take over (a drain whose URL changed keeps its lines).
    """

    def __init__(self, record: DrainRecord, options: DrainOptions,
                 inject: Callable[[list[bytes]], None] | None = None,
                 buffer: BoundedBuffer | None = None) -> None:
        assert record.url is not None
        self.record = record
        self.url: DrainUrl = parse_drain_url(record.url)
        self.token = record.token.encode()
        self.options = options
        self.buffer = buffer if buffer is not None else BoundedBuffer(options.buffer_lines)
        if self.buffer.capacity != options.buffer_lines:  # taken over from a degraded drain
            self.buffer.resize(options.buffer_lines)
        self.inject = inject
        self.delivered = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.connected = False
        self.degraded = False
        self._wakeup = trio.Event()
        self._wake_at = 1  # buffered lines that wake the delivery task (raised while lingering)
        self._idle = trio.Event()  # set while nothing is buffered or in flight
        self._closed = False

    # consumer side (ingest path) ---------------------------------------------------------

    def push(self, lines: list[bytes]) -> None:
        buffer = self.buffer
        if buffer.push_many(lines) or len(buffer) >= self._wake_at:
            self._wakeup.set()  # enough to do (or a loss to report): wake the delivery task
        if self._idle.is_set():
            self._idle = trio.Event()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    # delivery side -----------------------------------------------------------------------

    async def wait_lines(self, at_least: int = 1) -> None:
        """Wait until ``at_least`` lines (or an unreported loss) are waiting for delivery."""
        buffer = self.buffer
        self._wake_at = at_least
        try:
            while len(buffer) < at_least and not buffer.has_loss:
                if not len(buffer):
                    self._idle.set()
                self._wakeup = trio.Event()
                await self._wakeup.wait()
        finally:
            self._wake_at = 1

    async def wait_idle(self) -> None:
        """Wait until everything pushed so far was delivered or given up on."""
        await self._idle.wait()

    @property
    def dropped(self) -> int:
        """Lines lost so far: displaced from the full buffer or given up on."""
        return self.buffer.lost

    def succeeded(self, lines: int) -> None:
        self.delivered += lines
        self.last_success = time.time()
        if self.degraded:
            self.restore()

    def degrade(self) -> None:
        """Logplex's degraded mode: a drain failing for long keeps only its newest
        ``degraded_lines`` lines; the excess counts as lost and the next L10 reports it."""
        if self.buffer.capacity != self.options.degraded_lines:
            self.degraded = True
            before = len(self.buffer)
            self.buffer.resize(self.options.degraded_lines)
            log.warning("at=drain_degraded drain_id=%s channel_id=%s dest=%s lost=%d",
                        self.record.id, self.record.channel_id, self.url.host,
                        max(0, before - self.options.degraded_lines))

    def restore(self) -> None:
        """Leave degraded mode: the buffer holds ``buffer_lines`` again."""
        if self.degraded:
            self.degraded = False
            if self.buffer.capacity != self.options.buffer_lines:
                self.buffer.resize(self.options.buffer_lines)
            log.info("at=drain_restored drain_id=%s channel_id=%s", self.record.id,
                     self.record.channel_id)

    def failed(self, error: str, lost_lines: int = 0, loss: Loss | None = None) -> None:
        """Record a delivery failure; ``lost_lines`` (and a carried ``loss``) are given up on
        and will be reported by the next L10."""
        self.last_error = error
        self.last_error_at = time.time()
        if lost_lines or loss is not None:
            self.buffer.lose(lost_lines)
            if loss is not None:
                self.buffer.unpop(loss, [])
        log.warning("at=drain_error drain_id=%s channel_id=%s dest=%s error=%r lost=%d",
                    self.record.id, self.record.channel_id, self.url.host, error, lost_lines)

    def statistics(self) -> dict[str, Any]:
        """The drain's status as the API shows it."""
        stats = self.buffer.statistics()

        def iso(t: float | None) -> str | None:
            return format_time(t).decode() if t is not None else None

        return {
            "delivered": self.delivered, "dropped": stats.lost, "buffered": stats.buffered,
            "pending_loss": stats.pending_loss, "connected": self.connected,
            "degraded": self.degraded,
            "last_success": iso(self.last_success), "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
        }

    async def run(self) -> None:
        """Deliver until cancelled (the drain was removed or the node stops)."""
        await self.deliver_forever()

    async def deliver_forever(self) -> None:
        raise NotImplementedError
