"""Spacing a node's drain connection attempts.

Thousands of drains connect at once when a node starts, when a receiver many drains share
comes back from an outage, or when the first line arrives for drains whose first connect
failed. Each attempt costs the event loop about 0.2 ms (a socket, a connect, and for a refused
one an exception), and trio runs every task that became runnable in one batch before it looks
at its sockets again: 5,000 drains woken together held ingest, tails and the API for up to a
second at a time (bench/RESULTS.md). :class:`ConnectPacer` gives each attempt the next free
slot, ``1 / rate`` seconds after the one before, so a storm of reconnects is spread over
seconds and the event loop serves everything else between them. A slot is a start time, not a
connection held: a receiver that never answers delays no other drain.
"""

from __future__ import annotations

import math

import trio

__all__ = ["ConnectPacer"]


class ConnectPacer:
    """Hands out connection-attempt slots at most ``rate`` a second (``rate`` ≤ 0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = -math.inf  # trio time of the next free slot

    async def wait(self) -> None:
        """Return at this attempt's slot: at once when no attempt is waiting, else
        ``1 / rate`` seconds after the slot before it."""
        now = trio.current_time()
        at = max(now, self._next)
        self._next = at + self.interval
        if at > now:
            await trio.sleep_until(at)
        else:
            await trio.lowlevel.checkpoint()
