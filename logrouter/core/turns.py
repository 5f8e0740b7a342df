"""Reading a whole node's live state without holding up its event loop.

A pass over every channel or drain of a big node (a history save, a metrics scrape, the
stats behind ``logrouter top``) costs tens of milliseconds or more in one go: ingest, drains
and tails would wait that long. :func:`in_turns` reads it a slice at a time and lets the
event loop run between slices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

__all__ = ["PER_TURN", "in_turns", "slices"]

T = TypeVar("T")
R = TypeVar("R")

#: Items read a turn of the event loop (a drain's or a channel's row: about a µs each).
PER_TURN = 1000


async def in_turns(items: Sequence[T], row: Callable[[T], R], per_turn: int = PER_TURN,
                   ) -> list[R]:
    """``[row(item) for item in items]``, ``per_turn`` items a turn of the event loop.
    ``items`` must be the caller's own copy: the live collections change between turns."""
    out: list[R] = []
    for start in range(0, len(items), per_turn):
        if start:
            await trio.lowlevel.checkpoint()
        out += [row(item) for item in items[start:start + per_turn]]
    return out


def slices(items: Sequence[T], size: int = PER_TURN) -> list[Sequence[T]]:
    """``items`` cut into runs of ``size``: for :func:`in_turns` with ``per_turn=1`` when a
    turn's work is done on a slice as a whole (e.g. written out as one piece of JSON)."""
    return [items[start:start + size] for start in range(0, len(items), size)]
