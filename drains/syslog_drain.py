"""Syslog drains over TCP (``syslog://``) and TLS (``syslog+tls://``), Logplex §7.4.

State machine: *disconnected* → (lines waiting) connect → *connected*: write
batches as they come → back to *disconnected* on a write error or timeout, when
the peer closes, after ``syslog_idle_timeout`` without lines, or when the
connection is older than ``max_connection_age``. Failed connects wait
``reconnect_delay`` (exponential, capped at ``backoff_max``) while the buffer
keeps the newest lines and counts the rest.

While a plain-TCP drain is connected, the node's :class:`SyslogWriter` does its writes (one
task for all drains); TLS drains write from their own task. Each write carries every line
waiting, up to 512 lines, rendered as
``LEN <PRI>1 TIME d.<token> APP PROCID - - MSG\\n``; after a loss the write starts
with the L10 line. A batch whose write fails is counted lost (at-most-once: a
TCP write error cannot tell what the receiver got). A certificate that fails
verification injects L14 into the app's own stream (history and tails).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import trio

from drains.backoff import reconnect_delay
from drains.base import Drain, log
from drains.syslog_writer import SyslogWriter
from logrouter.core.buffer import Loss
from logrouter.errors import DestinationRefused
from logrouter.protocol.drainfmt import render_syslog, syslog_l10, syslog_unsent
from logrouter.protocol.syslog import l14_line
from logrouter.transport.tlsclient import cert_error, open_stream

__all__ = ["SyslogDrain"]

WRITE_LINES = 512  # per write: ~75 KiB of typical lines, 5 MiB at most
TLS_PIECE = 16384  # bytes per TLS send_all: what a failed TLS write may send twice


@dataclass(slots=True)
class _Write:
    """One write: its bytes (an L10 of ``l10_len`` bytes first, if any; only the L10 until
    it is rendered), the lines taken for it, the frames it shows, the loss it reports, the
    lines it could not render, and how many bytes went out."""

    data: bytes
    lines: list[bytes]
    shown: int
    loss: Loss | None
    l10_len: int
    skipped: int  # lines that could not be rendered (counted lost once the write is done)
    sent: int = 0


class SyslogDrain(Drain):
    """Delivers to one syslog receiver.

    ``writer``, the node's shared writer, writes this drain's batches while it is connected
    (plain TCP only: a TLS drain writes its own); the drain's own task connects, finishes
    partial writes, closes idle connections and reconnects.
    """

    _direct: socket.socket | None = None
    _out: _Write | None = None  # a write the writer handed back part-way
    _broken = False
    _end_paced = False  # a broken connection's end took its slot already

    def __init__(self, *args, writer: SyslogWriter | None = None,  # type: ignore[no-untyped-def]
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.writer = None if self.url.tls else writer

    @property
    def receiver_bound(self) -> bool:
        """Not connected, or holding a write the socket did not take whole: the receiver is
        the hold-up. Connected with every write taken, or waiting for its connection slot, the
        drain only waits for its turn."""
        if self._awaiting_slot:
            return False
        return self._direct is None or self._out is not None

    def _lines_waiting(self, displaced: int) -> None:
        """Connected with every write taken: the shared writer writes them (it reports a
        loss at the head of its next write); otherwise the drain's own task does."""
        writer = self.writer
        if self._direct is None or self._out is not None or writer is None:
            super()._lines_waiting(displaced)
        else:
            writer.mark(self)

    def take_write(self) -> tuple[int, _Write] | None:
        """The next write for the shared writer: the socket's file descriptor and the batch,
        not yet rendered (its ``data`` is the L10, if any; it is in flight until
        :meth:`write_sent`, or :meth:`render_write` renders it); None when there is nothing to
        write here (not connected, a partial write being finished by the drain's own task,
        lines waiting on disk, or nothing buffered)."""
        sock = self._direct
        if sock is None or self._out is not None or self._broken:
            return None
        if self.buffer.needs_fill:  # a spool's next lines are on disk: the drain's task reads
            self._wakeup.set()
            return None
        out = self._take()
        if out is None:
            if self._after_write():
                self._mark_again()  # a full batch waits behind it: the next round
            return None
        return sock.fileno(), out

    def render_write(self, out: _Write) -> bytes | None:
        """Render a write :meth:`take_write` gave (for the writer, when the C renderer left
        it to Python): its bytes, or None when none of its lines could be rendered (then the
        write is done with: they are counted lost; see :meth:`write_skipped`)."""
        return out.data if self._render(out) else None

    def write_skipped(self) -> bool:
        """After a write :meth:`render_write` found nothing to send in: whether another full
        batch waits."""
        return self._after_write()

    def write_sent(self, out: _Write, sent: int, rest: bytes | None = None) -> bool:
        """The writer's send of ``out`` took ``sent`` bytes (``-errno``: it failed); ``rest``
        is the whole rendered write when the socket took only part of it. Hand what did not
        go out at once to the drain's own task. Returns whether another full batch waits."""
        if sent < 0:
            error = OSError(-sent, os.strerror(-sent))  # its subclass names the error
            self._write_failed(out, f"write: {type(error).__name__}")
            self._broken = True
            self._wakeup.set()
            return False
        if rest is not None:
            out.data = rest
            out.sent = sent
            self._out = out
            self._wakeup.set()
            return False
        self._write_done(out)
        return self._after_write()

    def _after_write(self) -> bool:
        if len(self.buffer) or self.buffer.has_loss:
            return len(self.buffer) >= WRITE_LINES or self._mark_again()
        self._set_quiet()
        return False

    def _take(self) -> _Write | None:
        """Take the next batch, not rendered yet: its ``data`` is the L10 when lines were
        lost, else empty. None when there is nothing to write (the buffer is acknowledged)."""
        loss, lines = self.buffer.pop_batch(max_lines=WRITE_LINES)
        l10 = syslog_l10(self.token, loss.count, loss.since) if loss is not None else b""
        if not lines and not l10:
            self.buffer.ack()
            return None
        return _Write(l10, lines, len(lines), loss, len(l10), 0)

    def _render(self, out: _Write) -> bool:
        """Render ``out`` after its L10. Lines that cannot be rendered are counted lost (the
        next L10 reports them); False when nothing is left to send (the batch is done with)."""
        data, shown, skipped = render_syslog(out.lines, self.token)
        if not data and not out.l10_len:
            if skipped:
                self.buffer.lose(skipped)
            self.buffer.ack()
            return False
        out.data = out.data[:out.l10_len] + data
        out.shown, out.skipped = shown, skipped
        return True

    def _next_write(self) -> _Write | None:
        """Take the next batch, rendered; it starts with L10 when lines were lost."""
        out = self._take()
        return out if out is not None and self._render(out) else None

    def _write_done(self, out: _Write) -> None:
        if out.skipped:
            self.buffer.lose(out.skipped)
        self.succeeded(out.shown)
        self.last_write = trio.current_time()

    def _write_failed(self, out: _Write, error: str) -> None:
        """A write stopped after ``out.sent`` bytes: what went out whole is delivered, the
        rest goes back to the head of the buffer (and the L10, if it did not go out)."""
        self.errors += 1
        sent_lines = out.sent - out.l10_len
        loss = out.loss if sent_lines < 0 else None
        whole, done, skipped = syslog_unsent(out.lines, self.token, max(0, sent_lines))
        self.buffer.unpop(loss, out.lines[done:])
        self.buffer.ack()  # what went out whole
        if skipped:
            self.buffer.lose(skipped)
        if whole:
            self.delivered += whole
        self.failed(error)

    def _mark_again(self) -> bool:
        assert self.writer is not None
        self.writer.mark(self)
        return False

    async def deliver_forever(self) -> None:
        """Connect, write, reconnect. The first connection is opened at once, lines or not,
        so the first lines after a start (or a drain added) do not wait for a handshake;
        after that a connection is opened when lines wait (an idle one closes after
        ``syslog_idle_timeout``). A first connect that fails is retried only once lines
        come: a receiver nobody logs to is not dialled again and again."""
        failures = 0
        first = True
        while True:
            if not first:
                await self.wait_lines()
            await self.connect_slot()
            try:
                with trio.fail_after(self.options.syslog_send_timeout):
                    stream = await open_stream(self.url.host, self.url.port, self.url.tls,
                                               self.url.insecure, self.options.tls_ca_file,
                                               self.options.destinations)
            except (OSError, trio.BrokenResourceError, trio.TooSlowError, DestinationRefused) as exc:
                failures += 1
                first = False
                self._connect_failed(exc)
                buffer = self.buffer
                if (failures > self.options.syslog_shrink_after and buffer.has_loss
                        and len(buffer) >= buffer.capacity):
                    self.degrade()  # Logplex §7.4: a full, losing buffer after many failures
                await trio.sleep(reconnect_delay(failures, self.options.backoff_initial,
                                                 self.options.backoff_max))
                continue
            failures = 0
            first = False
            self.restore()
            self.set_connected(True, healthy=True)
            log.info("drain_connected", drain_id=self.record.id, dest=f"{self.url.host}:{self.url.port}")
            try:
                await self._session(stream)
            finally:
                self.set_connected(False)
                await trio.aclose_forcefully(stream)

    def _connect_failed(self, exc: BaseException) -> None:
        self.errors += 1
        problem = cert_error(exc)
        if problem is not None:
            self.failed(f"certificate: {problem}")
            if self.inject is not None:
                uri = f"syslog+tls://{self.url.host}:{self.url.port}/"
                line = l14_line(self.token, problem, uri)
                self.inject([line])
            return
        if isinstance(exc, DestinationRefused):
            self.failed(f"refused: {exc}")
            return
        self.failed(f"connect: {type(exc).__name__}: {exc}".rstrip(": "))

    async def _session(self, stream: trio.abc.Stream) -> None:
        """Write batches until the connection should end; never raises for I/O errors.

        After a wake-up the drain lingers up to ``linger`` seconds (unless a full write is
        already waiting) so that lines arriving read by read leave in one write: with many
        apps each read brings a few lines per channel, and a write per read per drain would
        cost more than the lines themselves.
        """
        opts = self.options
        clock = trio.current_time
        end_of_life = clock() + opts.max_connection_age
        if self.writer is not None and isinstance(stream, trio.SocketStream):
            await self._direct_session(stream, end_of_life)
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._discard_peer_data, stream, nursery.cancel_scope)
            while clock() < end_of_life:
                with trio.CancelScope(deadline=clock() + opts.syslog_idle_timeout) as idle:
                    await self.wait_lines()
                if idle.cancelled_caught:
                    log.info("drain_idle_close", drain_id=self.record.id)
                    break
                if opts.linger > 0 and len(self.buffer) < WRITE_LINES:
                    with trio.CancelScope(deadline=clock() + opts.linger):
                        await self.wait_lines(WRITE_LINES)
                if not await self._write_batch(stream):
                    break
            nursery.cancel_scope.cancel()

    async def _direct_session(self, stream: trio.SocketStream, end_of_life: float) -> None:
        """Connected with a writer: wait for what the writer hands back, or for idleness."""
        opts = self.options
        clock = trio.current_time
        writer = self.writer
        assert writer is not None
        self._direct = socket.socket(fileno=os.dup(stream.socket.fileno()))
        self._direct.setblocking(False)
        self._broken = self._end_paced = False
        self._out = None
        self.last_write = clock()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._discard_peer_data, stream, None)
                writer.mark(self)
                while clock() < end_of_life and not self._broken:
                    self._wakeup = trio.Event()
                    with trio.CancelScope(deadline=min(end_of_life,
                                                       self.last_write + opts.syslog_idle_timeout)):
                        await self._wakeup.wait()
                    if self._broken:
                        if not self._end_paced:
                            await self.connect_slot()  # see _discard_peer_data
                        break
                    if self.buffer.needs_fill:  # the writer handed back: lines on disk only
                        await self.buffer.ready()
                        writer.mark(self)
                    if self._out is not None:
                        if not await self._finish_partial(stream):
                            break
                        writer.mark(self)
                    elif clock() - self.last_write >= opts.syslog_idle_timeout and not len(self.buffer):
                        log.info("drain_idle_close", drain_id=self.record.id)
                        await self.connect_slot()  # drains gone quiet together close apart
                        break
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):  # the writer may be sending on it right now
                await writer.settle(self)
            writer.forget(self)
            self._direct.close()
            self._direct = None
            if self._out is not None:  # a partial write that never finished
                out, self._out = self._out, None
                self._write_failed(out, "write cancelled")

    async def _finish_partial(self, stream: trio.SocketStream) -> bool:
        """Send the rest of a write the writer handed back, on the raw socket so that the
        bytes sent are known exactly if it times out or fails."""
        out = self._out
        sock = self._direct
        assert out is not None and sock is not None
        error = ""
        with trio.CancelScope(
                deadline=trio.current_time() + self.options.syslog_send_timeout) as scope:
            try:
                while out.sent < len(out.data):
                    await trio.lowlevel.wait_writable(sock)
                    try:
                        out.sent += sock.send(memoryview(out.data)[out.sent:])
                    except BlockingIOError:
                        pass
            except OSError as exc:
                error = f"write: {type(exc).__name__}"
        if scope.cancelled_caught:
            error = "write: timeout"
        if error:
            self._out = None
            self._write_failed(out, error)
            return False
        self._out = None
        self._write_done(out)
        return True

    async def _write_batch(self, stream: trio.abc.Stream) -> bool:
        """One write on a TLS stream, in pieces so that a write that fails part-way knows
        which lines went out whole (the piece in flight is sent again: possible duplicates,
        never a silent loss)."""
        out = self._next_write()
        if out is None:
            return True
        error = "write cancelled"
        try:
            with trio.CancelScope(deadline=trio.current_time() + self.options.syslog_send_timeout
                                  ) as scope:
                view = memoryview(out.data)
                while out.sent < len(out.data):
                    piece = view[out.sent:out.sent + TLS_PIECE]
                    await stream.send_all(piece)
                    out.sent += len(piece)
            error = "write: timeout" if scope.cancelled_caught else ""
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            error = f"write: {type(exc).__name__}"
        finally:
            if error:  # also when cancelled mid-write: the batch is accounted for
                self._write_failed(out, error)
        if error:
            return False
        self._write_done(out)
        return True

    async def _discard_peer_data(self, stream: trio.abc.Stream,
                                 scope: trio.CancelScope | None) -> None:
        """Receivers should not talk; read and drop whatever they send, notice when they close:
        cancel ``scope`` — or, on a connection the shared writer writes (``scope`` None), mark
        it broken, so that the writer leaves it alone, and let the drain's task end it in its
        turn. A receiver that many drains share closes all their connections at once when it
        restarts; 5,000 drains ending their sessions in one batch of the event loop held it
        for up to half a second (bench/receiver_restart.py), so the ends take the node's
        connection slots (:meth:`connect_slot`), as the reconnects after them do."""
        try:
            while await stream.receive_some(4096):
                pass
            self.last_error, self.last_error_at = "closed by receiver", time.time()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        if scope is not None:
            scope.cancel()
            return
        self._broken = True
        await self.connect_slot()
        self._end_paced = True
        self._wakeup.set()
