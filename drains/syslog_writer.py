"""SyslogWriter: one task that writes for every connected plain-TCP syslog drain of a node.

Theory of operation
-------------------
With many apps, each read of ingest brings a few lines for each of many drains. A
task per drain that wakes, lingers, writes and sleeps again costs several task
switches and timers per write — more than the lines themselves. So while a
plain-TCP syslog drain is connected, its ``push`` only marks it dirty here; this
task waits ``linger`` seconds after the first mark (one timer for all drains),
then takes every dirty drain's batch (:meth:`SyslogDrain.take_write`) and sends
them all in one call of ``send_many``: one non-blocking ``send`` per socket. A
round of ``THREAD_WRITES`` writes or more is sent from a worker thread without
the GIL, so the kernel's share of the relay (on loopback the receiving side's TCP
work is done by the sender's ``send`` too) runs on another core while the event
loop goes on reading and routing; a smaller round is sent in place. Each drain then
gets its result (:meth:`SyslogDrain.write_sent`). A drain with a full write
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
from logrouter.transport.send_many import send_many

__all__ = ["DirectWriter", "SyslogWriter"]

log = get_logger("logrouter.drains")

#: A round of at least this many writes (sockets) is sent from a worker thread, the event loop
#: going on meanwhile: with thousands of drains the sends' fixed kernel cost is a third of the
#: relay (bench/run.py S1 --apps 5000: 497-559 k lines/s in place, 633-653 k threaded). Fewer,
#: bigger writes are sent in place: there the other core is as busy as this one, and sending
#: from it cost S1 (100 drains) 10-15 %.
THREAD_WRITES = 512

#: A round takes writes until they hold this many bytes; the other dirty drains wait for the
#: next round (at once). The rendered bytes of a round live until its sends are done, so this
#: bounds that memory (5,000 drains with a full write each would hold ~380 MB).
ROUND_BYTES = 16 << 20


class DirectWriter(Protocol):
    def take_write(self) -> tuple[int, Any] | None:
        """The next write: a socket's file descriptor and a batch whose ``data`` is the bytes
        to send; None when there is nothing to write now."""

    def write_sent(self, out: Any, sent: int) -> bool:
        """The send of ``out`` took ``sent`` bytes (``-errno`` when it failed); return
        whether a full batch still waits."""


class SyslogWriter:
    """Writes for all directly writable syslog drains; see the module docstring.

    Args:
        linger: seconds to wait after the first mark before a round.
        thread_writes: a round of at least this many writes is sent from a worker thread.
        round_bytes: a round takes writes until they hold this many bytes.
    """

    def __init__(self, linger: float, thread_writes: int = THREAD_WRITES,
                 round_bytes: int = ROUND_BYTES) -> None:
        self.linger = linger
        self.thread_writes = thread_writes
        self.round_bytes = round_bytes
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
        """Take a write from each dirty drain (up to ``round_bytes``), send them all, and give
        each drain its result; returns whether some drain is still to be written at once."""
        drains: list[DirectWriter] = []
        outs: list[Any] = []
        fds: list[int] = []
        datas: list[bytes] = []
        size = 0
        urgent = False
        for drain in dirty:
            if size >= self.round_bytes:  # the rest go in the next round
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
                datas.append(out.data)
                size += len(out.data)
        if not drains:
            return urgent
        self._sending = dict.fromkeys(drains)
        try:
            if len(drains) >= self.thread_writes:
                results = await trio.to_thread.run_sync(send_many, fds, datas)
            else:
                results = send_many(fds, datas)
        finally:
            self._sending = {}
            self._sent.set()
            self._sent = trio.Event()
        for drain, out, sent in zip(drains, outs, results, strict=True):
            try:
                if drain.write_sent(out, sent):
                    self._dirty[drain] = None
                    urgent = True
            except Exception:
                log.exception("syslog_writer_error")
        return urgent
