"""Reading a whole node's live state without holding up its event loop.

A pass over every channel or drain of a big node (a history save, a metrics scrape, the
stats behind ``logrouter top``) costs tens of milliseconds or more in one go: ingest, drains
and tails would wait that long. :func:`in_turns` reads it a slice at a time and lets the
event loop run between slices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import TypeVar

import trio

__all__ = ["PER_TURN", "in_turns", "runs_in_turns"]

T = TypeVar("T")
R = TypeVar("R")

#: Items read a turn of the event loop (a drain's or a channel's row: about a µs each).
PER_TURN = 1000


async def runs_in_turns(items: Sequence[T], run: Callable[[Sequence[T]], R],
                        per_turn: int = PER_TURN) -> list[R]:
    """``run`` of each run of ``per_turn`` items, in order, one run a turn of the event loop
    (for work done on a run as a whole, e.g. written out as one piece of JSON). ``items`` must
    be the caller's own copy: the live collections change between turns."""
    out: list[R] = []
    for start in range(0, len(items), per_turn):
        if start:
            await trio.lowlevel.checkpoint()
        out.append(run(items[start:start + per_turn]))
    return out


async def in_turns(items: Sequence[T], row: Callable[[T], R], per_turn: int = PER_TURN,
                   ) -> list[R]:
    """``[row(item) for item in items]``, ``per_turn`` items a turn of the event loop (see
    :func:`runs_in_turns`)."""
    runs = await runs_in_turns(items, lambda run: [row(item) for item in run], per_turn)
    return list(chain.from_iterable(runs))
