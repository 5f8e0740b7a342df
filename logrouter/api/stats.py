"""``GET /v3/stats``: the node's counters per app and per drain (``logrouter top``, the console).

Without parameters the answer lists every app and every drain with its status. On a big
node that is megabytes a poll (~20 MB at 50,000 apps with a drain each), made every two
seconds for each open console and ``top``; so a view asks for what it shows:

* ``channel=ID`` (an id or a name): that app and its drains only;
* ``limit=N``: the first ``N`` apps and the first ``N`` drains by ``sort`` — ``busiest``
  (the default: lines/s received, or delivered for drains, highest first) or ``name``
  (apps by name; drains by id) — among the apps whose name or id contains ``q`` (and
  their drains).

Every answer carries ``totals`` (the node's counter families), ``counts`` (apps and drains
in all, and those ``q`` matched) and ``drain_totals`` (delivered, dropped and buffered
summed over every drain running here), so a view of the whole node needs no full list; and
each app and drain its ``rate``, lines/s between the node's last two samples. A sample reads
every channel's and drain's counters, 1,000 a turn of the event loop, at most once a second
(the first answer's rates are 0).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Sequence
from typing import Any

import trio

from logrouter.control import Control
from logrouter.core.channels import Channel
from logrouter.core.turns import PER_TURN, in_turns, runs_in_turns
from logrouter.errors import NotFoundError, ValidationError
from logrouter.metrics import Metrics
from logrouter.models import DrainRecord

__all__ = ["DRAINS_PER_TURN", "StatsQuery", "StatsView"]

#: Drains whose status is written a turn of the event loop (~20 µs each).
DRAINS_PER_TURN = 200
#: Seconds between two samples of the counters behind ``rate``.
SAMPLE_INTERVAL = 1.0
#: The most apps and drains one answer lists when asked for a ``limit``.
MAX_LIMIT = 5000


class StatsQuery:
    """The parameters of one request (see the module docstring).

    Raises:
        ValidationError: a ``limit`` that is not a whole number from 1 to ``MAX_LIMIT``, or an
            unknown ``sort``.
    """

    __slots__ = ("channel", "limit", "q", "sort")

    def __init__(self, get: Callable[[str], str | None]) -> None:
        self.channel = get("channel") or None
        self.q = (get("q") or "").lower()
        self.sort = get("sort") or "busiest"
        if self.sort not in ("busiest", "name"):
            raise ValidationError("sort must be busiest or name")
        limit = get("limit")
        self.limit: int | None = None
        if limit is not None:
            if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_LIMIT:
                raise ValidationError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
            self.limit = int(limit)

    @property
    def everything(self) -> bool:
        """No parameter: every app and drain (the answer shared by all such requests)."""
        return self.channel is None and self.limit is None and not self.q


class StatsView:
    """Makes ``/v3/stats`` answers for one node and keeps the samples behind ``rate``."""

    def __init__(self, control: Control, metrics: Metrics) -> None:
        self.control = control
        self.metrics = metrics
        self._at: float | None = None  # trio time of the last sample
        self._received: dict[str, int] = {}  # channel id → lines received at the last sample
        self._delivered: dict[int, int] = {}  # drain id → lines delivered at the last sample
        self.channel_rates: dict[str, float] = {}
        self.drain_rates: dict[int, float] = {}
        self._drain_totals = {"delivered": 0, "dropped": 0, "buffered": 0}
        self._sampling = trio.Lock()

    async def sample(self) -> None:
        """Take a sample of every counter unless the last one is under ``SAMPLE_INTERVAL``
        old (concurrent callers share one)."""
        async with self._sampling:
            now = trio.current_time()
            if self._at is not None and now - self._at < SAMPLE_INTERVAL:
                return
            channels = list(self.control.table.channels.values())
            received = dict(await in_turns(channels, lambda c: (c.id, c.received)))
            counters = self.control.drain_counters()
            rows = await in_turns(counters, lambda item: (item[0], item[1].metric_row()))
            delivered = {drain_id: row[0] for drain_id, row in rows}
            self._drain_totals = {"delivered": sum(row[0] for _, row in rows),
                                  "dropped": sum(row[1] for _, row in rows),
                                  "buffered": sum(row[2] for _, row in rows)}
            if self._at is not None:
                seconds = now - self._at
                self.channel_rates = _rates(received, self._received, seconds)
                self.drain_rates = _rates(delivered, self._delivered, seconds)
            self._at, self._received, self._delivered = now, received, delivered

    async def page(self, query: StatsQuery) -> bytes:
        """The JSON answer to ``query``.

        Raises:
            NotFoundError: ``channel`` names no app.
        """
        await self.sample()
        table = self.control.table
        channels: Sequence[Channel]
        if query.channel is not None:
            channel = table.find(query.channel)
            if channel is None:
                raise NotFoundError(f"channel {query.channel} not found")
            channels = [channel]
        else:
            channels = list(table.channels.values())
            if query.q:
                q = query.q
                channels = [c for c in channels if q in (c.name or "").lower() or q in c.id]
        matched_channels = len(channels)
        ids = {c.id for c in channels} if len(channels) < len(table.channels) else None
        every_drain = [d for d in table.drains.values() if d.url is not None]
        drains: Sequence[DrainRecord] = every_drain if ids is None else [
            d for d in every_drain if d.channel_id in ids]
        matched_drains = len(drains)
        if query.limit is not None:
            channels, drains = self._first(channels, drains, query)
        channel_rates, drain_rates = self.channel_rates, self.drain_rates
        channel_json = await _json_items(channels, lambda c: {
            "id": c.id, "name": c.name or c.id, "received": c.received,
            "history": len(c.history), "rate": round(channel_rates.get(c.id, 0.0), 1),
            "drains": sum(1 for d in c.drains.values() if d.url is not None)})
        drain_json = await _json_items(drains, lambda d: {
            "id": d.id, "channel_id": d.channel_id, "token": d.token, "url": d.url,
            "rate": round(drain_rates.get(d.id, 0.0), 1),
            **(self.control.drain_status(d.id) or {})}, per_turn=DRAINS_PER_TURN)
        head = {"totals": self.metrics.totals(), "drain_totals": self._drain_totals,
                "counts": {"channels": len(table.channels), "drains": len(every_drain),
                           "matched_channels": matched_channels,
                           "matched_drains": matched_drains}}
        return b'%s, "channels": [%s], "drains": [%s]}' % (
            json.dumps(head)[:-1].encode(), channel_json, drain_json)

    def _first(self, channels: Sequence[Channel], drains: Sequence[DrainRecord],
               query: StatsQuery) -> tuple[list[Channel], list[DrainRecord]]:
        """The first ``query.limit`` apps and drains in ``query.sort`` order."""
        n = query.limit or 0
        if query.sort == "name":
            return (heapq.nsmallest(n, channels, key=lambda c: ((c.name or c.id).lower(), c.id)),
                    heapq.nsmallest(n, drains, key=lambda d: d.id))
        channel_rates, drain_rates = self.channel_rates, self.drain_rates
        return (heapq.nlargest(n, channels, key=lambda c: (channel_rates.get(c.id, 0.0),
                                                           c.received)),
                heapq.nlargest(n, drains, key=lambda d: drain_rates.get(d.id, 0.0)))


def _rates(now: dict[Any, int], before: dict[Any, int], seconds: float) -> dict[Any, float]:
    """Per key, the growth from ``before`` to ``now`` a second (keys new since: 0)."""
    if seconds <= 0:
        return {}
    return {key: max(0, value - before.get(key, value)) / seconds for key, value in now.items()}


async def _json_items(items: Sequence[Any], row: Callable[[Any], Any],
                      per_turn: int = PER_TURN) -> bytes:
    """The items of a JSON array of ``row(item)`` for each of ``items`` (what ``json.dumps``
    writes between the brackets), written ``per_turn`` items a turn of the event loop."""
    pieces = await runs_in_turns(items, lambda run: json.dumps([row(x) for x in run])[1:-1],
                                 per_turn)
    return ", ".join(pieces).encode()

