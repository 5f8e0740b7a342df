"""HTTP(S) drains: ``application/logplex-1`` batches POSTed to a webhook, Logplex §7.3.

One request in flight per drain, on a kept-alive connection. Each batch is cut
from the buffer up to ``http_batch_bytes`` (one longer line goes alone), given a
fresh ``Logplex-Frame-Id`` that stays the same on every retry of that batch, and
sent with ``Logplex-Msg-Count``, ``Logplex-Drain-Token``, ``User-Agent`` and Basic
auth from the URL's userinfo.

Answers: 2xx delivered; 4xx other than 429 drops the batch at once (a receiver
that refuses it will refuse it again); 5xx, 429, other statuses, timeouts and
connection errors close the connection and retry, ``http_attempts`` tries in
all, waiting between tries (``Retry-After`` honoured up to ``backoff_max``). A
batch that runs out of tries is dropped, and the drain waits an exponential
back-off before the next, so a dead receiver is not hammered. Every dropped
line is counted and reported by the L10 line at the head of the next batch.
HTTPS verifies the receiver's certificate unless the URL ends in ``#insecure``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import trio

from drains.backoff import reconnect_delay
from drains.base import Drain
from logrouter import __version__
from logrouter.core.buffer import Loss
from logrouter.errors import DestinationRefused
from logrouter.protocol.drainfmt import http_l10, render_http
from logrouter.protocol.logplex1 import drain_request, drain_request_head
from logrouter.transport.httpclient import HttpClientError, HttpConnection
from logrouter.transport.tlsclient import cert_error, open_stream

__all__ = ["HttpDrain"]

USER_AGENT = f"logrouter/{__version__}"
_IDLE_REUSE = 60.0  # seconds a kept-alive connection is trusted before reconnecting
#: A request in flight this long without an answer counts as waiting on the receiver. A healthy
#: receiver nearby answers in a millisecond or two, several more beside a saturated router: with
#: 5 ms S3 flat out still lost lines, with 20 ms none (bench/RESULTS.md). The price: a receiver
#: answering every batch within it is never found slow, and feeds its app at its own pace.
RESPONSE_GRACE = 0.02


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch in flight: the loss it reports, its log lines and the whole request."""

    loss: Loss | None
    lines: int
    data: bytes


class HttpDrain(Drain):
    """Delivers to one HTTP(S) endpoint."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._head = drain_request_head(self.url.url, self.url.host, self.record.token, USER_AGENT)
        self._conn: HttpConnection | None = None
        self._failed_batches = 0

    @property
    def receiver_bound(self) -> bool:
        """Waiting on the receiver: not connected, failing, or a request in flight for
        ``RESPONSE_GRACE`` or longer whose response has not arrived. A response sitting unread
        in the socket, no request in flight at all, or one just sent (a drain turning over on
        a busy router has nearly always just sent one when a feeder looks, and a receiver
        cannot have answered yet) means the drain only waits for its turn on this router's
        CPU."""
        conn = self._conn
        if self._awaiting_slot:
            return False  # this router's pacing of connection attempts (Drain.connect_slot)
        if conn is None or self._failing:
            return True
        return (conn.in_flight and trio.current_time() - conn.sent_at >= RESPONSE_GRACE
                and not conn.response_arrived())

    async def deliver_forever(self) -> None:
        batch: _Batch | None = None
        try:
            while True:
                if batch is None:
                    await self.wait_lines()
                    batch = await self._next_batch()
                    if batch is None:
                        continue
                if await self._deliver(batch):
                    batch = None
                    self._failed_batches = 0
                    continue
                if not self.spooled:
                    batch = None  # given up on (counted lost); a spool keeps it and retries
                self._failed_batches += 1
                last = self.last_success
                if last is None:
                    self.degraded = True  # Logplex §7.3: flagged, but never shrunk
                elif time.time() - last > self.options.http_shrink_after:
                    self.degrade()  # Logplex §7.3: failing long after its last success
                await trio.sleep(reconnect_delay(self._failed_batches,
                                                 self.options.backoff_initial,
                                                 self.options.backoff_max))
        finally:
            if self._conn is not None:
                await self._conn.aclose()

    async def _next_batch(self) -> _Batch | None:
        """Take the next batch from the queue: after a restart with a spool, the batch that was
        in flight, with its Frame-Id; else up to ``http_batch_bytes`` with a fresh one."""
        resume = self.buffer.resume
        if resume is not None:
            self.buffer.resume = None
            loss, lines = self.buffer.pop_batch(max_lines=resume[0])
            frame_id = resume[1]
        else:
            loss, lines = self.buffer.pop_batch(max_bytes=self.options.http_batch_bytes)
            frame_id = secrets.token_hex(16).upper()
        body, count, skipped = render_http(lines)
        if skipped:  # lines that cannot be rendered as syslog: reported, never silently gone
            self.buffer.lose(skipped)
        if loss is not None:
            body = http_l10(loss.count, loss.since) + body
            count += 1
        if not count:
            self.buffer.ack()
            return None
        self.buffer.begin_batch(len(lines), frame_id)
        if self.persist is not None:
            await self.persist()  # on disk, with its Frame-Id, before it is first sent
        return _Batch(loss, len(lines) - skipped, drain_request(self._head, body, count, frame_id))

    async def _connection(self) -> HttpConnection:
        conn = self._conn
        now = trio.current_time()
        if conn is not None and conn.usable and now - conn.used_at < _IDLE_REUSE \
                and now - conn.opened_at < self.options.max_connection_age:
            return conn
        if conn is not None:
            await conn.aclose()
        self._conn = None
        await self.connect_slot()
        with trio.fail_after(self.options.http_connect_timeout):
            stream = await open_stream(self.url.host, self.url.port, self.url.tls,
                                       self.url.insecure, self.options.tls_ca_file,
                                       self.options.destinations)
        self._conn = HttpConnection(stream)
        self.set_connected(True)
        return self._conn

    async def _drop_connection(self) -> None:
        self.set_connected(False)
        if self._conn is not None:
            await self._conn.aclose()
            self._conn = None

    async def _deliver(self, batch: _Batch) -> bool:
        """Try one batch ``http_attempts`` times; False when all failed. Without a spool the
        batch is then given up on (counted lost, reported by the next L10); with one it stays
        in flight and is tried again after a back-off (same Frame-Id)."""
        outcome = "cancelled"
        try:
            for attempt in range(1, self.options.http_attempts + 1):
                error, retry_after = await self._attempt(batch.data)
                if error is not None:
                    self.errors += 1
                if error is None:
                    outcome = ""
                    self.succeeded(batch.lines)
                    return True
                if retry_after is None:  # a 4xx: the receiver refuses this batch
                    outcome = ""
                    self.failed(error, lost_lines=batch.lines, loss=batch.loss, transient=False)
                    return True
                outcome = error
                if attempt < self.options.http_attempts:
                    await trio.sleep(retry_after or reconnect_delay(
                        attempt, self.options.backoff_initial, self.options.backoff_max))
            return False
        finally:
            if outcome and not self.spooled:
                self.failed(outcome, lost_lines=batch.lines, loss=batch.loss)
            elif outcome and outcome != "cancelled":
                self.failed(outcome)  # a spool keeps the batch: nothing is lost

    async def _attempt(self, data: bytes) -> tuple[str | None, float | None]:
        """One try. Returns ``(None, None)`` on success, ``(error, None)`` when the batch
        must not be retried, ``(error, delay)`` when it should be (delay 0 = default)."""
        try:
            conn = await self._connection()
            sent_at = trio.current_time()
            result = await conn.request(data, sent_at + self.options.http_response_timeout)
            self.observe_request(trio.current_time() - sent_at)
        except DestinationRefused as exc:
            await self._drop_connection()
            return f"refused: {exc}", 0.0
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError,
                HttpClientError) as exc:
            await self._drop_connection()
            problem = cert_error(exc)
            if problem is not None:
                return f"certificate: {problem}", 0.0
            if isinstance(exc, trio.TooSlowError):
                return "timeout", 0.0
            return f"{type(exc).__name__}: {exc}".rstrip(": "), 0.0
        if not result.keep_alive:
            await self._drop_connection()
        status = result.status
        if 200 <= status < 300:
            return None, None
        if 400 <= status < 500 and status != 429:
            return f"HTTP {status}", None
        await self._drop_connection()
        delay = 0.0
        retry_after = result.headers.get("retry-after", "").strip()
        if status == 429 and retry_after.isascii() and retry_after.isdigit():
            delay = min(float(retry_after), self.options.backoff_max)
        return f"HTTP {status}", delay
