"""SyslogWriter: one task that writes for every connected plain-TCP syslog drain of a node.

Theory of operation
-------------------
With many apps, each read of ingest brings a few lines for each of many drains. A
task per drain that wakes, lingers, writes and sleeps again costs several task
switches and timers per write — more than the lines themselves. So while a
plain-TCP syslog drain is connected, its ``push`` only marks it dirty here; this
task waits ``linger`` seconds after the first mark (one timer for all drains),
then writes every dirty drain's batch with a direct non-blocking ``send``
(:meth:`SyslogDrain.write_direct`). A drain with a full write still waiting is
written again at once. Anything unusual — a partial write, an error — is handed
back to the drain's own task, which finishes it with trio's ``send_all`` or
reconnects; the drain is not written here until its task gives it back.
"""

from __future__ import annotations

from typing import Protocol

import trio

from logrouter.logs import get_logger

__all__ = ["DirectWriter", "SyslogWriter"]

log = get_logger("logrouter.drains")


class DirectWriter(Protocol):
    def write_direct(self) -> bool:
        """Write one batch without blocking; return whether a full batch still waits."""


class SyslogWriter:
    """Writes for all directly writable syslog drains; see the module docstring."""

    def __init__(self, linger: float) -> None:
        self.linger = linger
        self._dirty: dict[DirectWriter, None] = {}
        self._wakeup = trio.Event()

    def mark(self, drain: DirectWriter) -> None:
        """``drain`` has lines to write (synchronous, on the ingest path)."""
        dirty = self._dirty
        if not dirty:  # the task waits for the first mark only (see run)
            self._wakeup.set()
        dirty[drain] = None

    def forget(self, drain: DirectWriter) -> None:
        self._dirty.pop(drain, None)

    async def run(self) -> None:
        urgent = False
        while True:
            if not self._dirty:
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            if self.linger > 0 and not urgent:
                await trio.sleep(self.linger)
            dirty, self._dirty = self._dirty, {}
            urgent = False
            for drain in dirty:
                try:
                    if drain.write_direct():
                        self._dirty[drain] = None
                        urgent = True
                except Exception:
                    log.exception("syslog_writer_error")
            await trio.lowlevel.checkpoint()
