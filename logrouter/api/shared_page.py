"""Answers that cost the node in proportion to its size, made without holding up the event loop.

``GET /metrics`` (no credentials needed) and ``GET /v3/stats`` (polled every 2 s by
``logrouter top`` and the web console) describe every drain, or every channel and drain:
tens of thousands of them on a big node. Made in one go on the event loop, such an answer
held up ingest, drains and tails for the whole time (2 s for a scrape of 50,000 drains,
bench/RESULTS.md), once per request, so a few clients polling in a loop could stall a node
for good. Here:

* :class:`SharedPage` makes one answer at a time and shares it: a request arriving while
  one is made waits for that one, and a finished answer is served again until as long has
  passed since it was made as making it took — however many clients ask, at most half of
  the node's time goes to making it, and a small node's answer is at most a few
  milliseconds old;
* the pages read live state, and write it out, a run of items a turn of the event loop
  (:mod:`logrouter.core.turns`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

__all__ = ["SharedPage"]


class _Making:
    """One page being made: set ``done`` once it is there (``page``) or failed (None)."""

    __slots__ = ("done", "page")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.page: bytes | None = None


class SharedPage:
    """One answer made by ``make`` at a time, shared (see the module docstring).

    ``make`` runs shielded from the cancellation of the request that started it (its client
    hanging up), so the requests waiting for it are answered; if it raises, the request that
    started it gets the error and the waiting ones try again.
    """

    def __init__(self, make: Callable[[], Awaitable[bytes]]) -> None:
        self._make = make
        self._making: _Making | None = None
        self._page: bytes | None = None
        self._reuse_until = 0.0  # trio time until which the last page is served again

    async def get(self) -> bytes:
        """The last page while it may be reused, else the one being made, else a new one."""
        while True:
            if self._page is not None and trio.current_time() < self._reuse_until:
                return self._page
            making = self._making
            if making is None:
                return await self._new_page()
            await making.done.wait()
            if making.page is not None:
                return making.page

    async def _new_page(self) -> bytes:
        making = self._making = _Making()
        start = trio.current_time()
        try:
            with trio.CancelScope(shield=True):
                page = making.page = await self._make()
        finally:
            self._making = None
            making.done.set()
        end = trio.current_time()
        self._page, self._reuse_until = page, end + (end - start)
        return page
