"""Retry timing for drains. Pure: no clock, no I/O; randomness is injected."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["reconnect_delay"]


def reconnect_delay(failures: int, initial: float, cap: float,
                    rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` consecutive failures (1, 2, …).

    Exponential from ``initial``, never above ``cap`` (Logplex let one step reach
    512 s past its 300 s cap; this does not), with up to 10 % of jitter below the
    value so that many drains of one dead receiver do not reconnect in lock step.
    """
    if failures <= 0:
        return 0.0
    base = min(cap, initial * 2.0 ** min(failures - 1, 62))
    return base * (0.9 + 0.1 * rand())
