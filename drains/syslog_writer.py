"""SyslogWriter: one task that writes for every connected plain-TCP syslog drain of a node.

Theory of operation
-------------------
With many apps, each read of ingest brings a few lines for each of many drains. A
task per drain that wakes, lingers, writes and sleeps again costs several task
switches and timers per write — more than the lines themselves. So while a
plain-TCP syslog drain is connected, its ``push`` only marks it dirty here; this
task waits ``linger`` seconds after the first mark (one timer for all drains),
then takes every dirty drain's batch (:meth:`SyslogDrain.take_write`), renders
and sends them all in one call of ``render_send_syslog``: one non-blocking ``send``
per socket. A round of ``THREAD_WRITES`` writes or more is rendered and sent from a
worker thread without the GIL, so the rendering (each line read and copied once
more) and the kernel's share of the relay (on loopback the receiving side's TCP
work is done by the sender's ``send`` too) run on another core while the event
loop goes on reading and routing; a smaller round is done in place. A write with a
line the C renderer leaves to Python is rendered here and sent in place. Each drain
then gets its result (:meth:`SyslogDrain.write_sent`). A drain with a full write
still waiting is written again at once. Anything unusual — a partial write, an
error — is handed back to the drain's own task, which finishes it with trio's
``send_all`` or reconnects; the drain is not written here until its task gives
it back, and its socket is not closed while a round is sending on it
(:meth:`SyslogWriter.settle`).
"""

from __future__ import annotations

from typing import Any, Protocol

import trio

from logrouter.logs import get_logger
from logrouter.transport.send_many import render_send_syslog, send_many

__all__ = ["DirectWriter", "SyslogWriter"]

log = get_logger("logrouter.drains")

#: A round of at least this many writes (sockets) is rendered and sent from a worker thread,
#: the event loop going on meanwhile: with thousands of drains the sends' fixed kernel cost is
#: a third of the relay (bench/run.py S1 --apps 5000: 497-559 k lines/s in place, 633-653 k
#: threaded). Fewer, bigger writes are done in place: there the other core is as busy as this
#: one, and sending from it cost S1 (100 drains) 10-15 %.
THREAD_WRITES = 512

#: A round takes writes until they hold this many lines; the other dirty drains wait for the
#: next round (at once). This bounds how long one round keeps its drains (and the thread).
ROUND_LINES = 131072


class DirectWriter(Protocol):
    token: bytes  # the drain token its frames carry

    def take_write(self) -> tuple[int, Any] | None:
        """The next write: a socket's file descriptor and a batch whose ``lines`` are to be
        rendered after its ``data`` (an L10, or nothing); None when there is nothing to write
        now."""

    def render_write(self, out: Any) -> bytes | None:
        """Render ``out`` in Python (a line the C renderer does not take): its bytes, or None
        when nothing is left to send (see ``write_skipped``)."""

    def write_skipped(self) -> bool:
        """``render_write`` found nothing to send; return whether a full batch still waits."""

    def write_sent(self, out: Any, sent: int, rest: bytes | None = None) -> bool:
        """The send of ``out`` took ``sent`` bytes (``-errno`` when it failed); ``rest`` is
        the whole rendered write when only part of it went out. Return whether a full batch
        still waits."""


class SyslogWriter:
    """Writes for all directly writable syslog drains; see the module docstring.

    Args:
        linger: seconds to wait after the first mark before a round.
        thread_writes: a round of at least this many writes is done in a worker thread.
        round_lines: a round takes writes until they hold this many lines.
    """

    def __init__(self, linger: float, thread_writes: int = THREAD_WRITES,
                 round_lines: int = ROUND_LINES) -> None:
        self.linger = linger
        self.thread_writes = thread_writes
        self.round_lines = round_lines
        self._dirty: dict[DirectWriter, None] = {}
        self._wakeup = trio.Event()
        self._sending: dict[DirectWriter, None] = {}  # drains of the round being sent
        self._sent = trio.Event()  # set when that round's sends are done

    def mark(self, drain: DirectWriter) -> None:
        """``drain`` has lines to write (synchronous, on the ingest path)."""
        dirty = self._dirty
        if not dirty:  # the task waits for the first mark only (see run)
            self._wakeup.set()
        dirty[drain] = None

    def forget(self, drain: DirectWriter) -> None:
        self._dirty.pop(drain, None)

    async def settle(self, drain: DirectWriter) -> None:
        """Return once no send of ``drain`` is in flight (before its socket may close)."""
        while drain in self._sending:
            await self._sent.wait()

    async def run(self) -> None:
        urgent = False
        while True:
            if not self._dirty:
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            if self.linger > 0 and not urgent:
                await trio.sleep(self.linger)
            dirty, self._dirty = self._dirty, {}
            urgent = await self._round(dirty)
            await trio.lowlevel.checkpoint()

    async def _round(self, dirty: dict[DirectWriter, None]) -> bool:
        """Take a write from each dirty drain (up to ``round_lines``), render and send them
        all, and give each drain its result; returns whether some drain is still to be
        written at once."""
        drains: list[DirectWriter] = []
        outs: list[Any] = []
        fds: list[int] = []
        lines = 0
        urgent = False
        for drain in dirty:
            if lines >= self.round_lines:  # the rest go in the next round
                self._dirty[drain] = None
                urgent = True
                continue
            try:
                taken = drain.take_write()
            except Exception:
                log.exception("syslog_writer_error")
                continue
            if taken is not None:
                fd, out = taken
                drains.append(drain)
                outs.append(out)
                fds.append(fd)
                lines += len(out.lines)
        if not drains:
            return urgent
        tokens = [drain.token for drain in drains]
        prefixes = [out.data for out in outs]
        batches = [out.lines for out in outs]
        self._sending = dict.fromkeys(drains)
        try:
            if len(drains) >= self.thread_writes:
                results = await trio.to_thread.run_sync(render_send_syslog, fds, tokens, prefixes,
                                                        batches)
            else:
                results = render_send_syslog(fds, tokens, prefixes, batches)
            for i, result in enumerate(results):
                if result is None:  # a line the C renderer left to Python
                    results[i] = self._send_rendered(drains[i], fds[i], outs[i])
        finally:
            self._sending = {}
            self._sent.set()
            self._sent = trio.Event()
        for drain, out, result in zip(drains, outs, results, strict=True):
            try:
                again = drain.write_skipped() if result is None else drain.write_sent(out, *result)
                if again:
                    self._dirty[drain] = None
                    urgent = True
            except Exception:
                log.exception("syslog_writer_error")
        return urgent

    @staticmethod
    def _send_rendered(drain: DirectWriter, fd: int, out: Any) -> tuple[int, bytes | None] | None:
        """Render ``out`` in Python and send it in place: what ``render_send_syslog`` gives for
        a write, or None when nothing was left to send."""
        data = drain.render_write(out)
        if data is None:
            return None
        sent = send_many([fd], [data])[0]
        return sent, data if 0 <= sent < len(data) else None
