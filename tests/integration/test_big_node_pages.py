"""A big node's /metrics and /v3/stats: tens of thousands of drains or channels described while
ingest, drains and tails go on — the event loop is never held for the whole answer, and
clients asking at once share one answer."""

from __future__ import annotations

import gc
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable

import trio
from prometheus_client.parser import text_string_to_metric_families

from logrouter.models import ChannelRecord
from tests.conftest import AUTH_KEY, Router

#: The longest the event loop may be held while such pages are made. Made in one go, 30,000
#: drains held it ~1.2 s, 100,000 channels ~0.35 s; now 15-30 ms (on the development machine).
MAX_HOLD = 0.1


class _Counters:
    """A running drain as /metrics reads it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def metric_row(self) -> tuple[int, int, int, int, int]:
        return self.n * 1000, self.n % 7, 3, 1, 0


def fetch(port: int, path: str) -> bytes:
    """GET ``path`` from a thread of its own (a client in the event loop would hold it while
    it parses megabytes)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": "Bearer " + AUTH_KEY})
    with urllib.request.urlopen(request, timeout=60) as resp:
        assert resp.status == 200
        body: bytes = resp.read()
        return body


async def longest_hold(work: Callable[[], Awaitable[None]]) -> float:
    """Run ``work`` while a task notes how long each of its turns waited for the event loop;
    the longest wait (monotonic wall time: trio's clock cannot see a held loop any better).
    The objects made so far are frozen out of the garbage collector meanwhile, as
    ``logrouter serve`` does at start: a full collection of this test process's heap (every
    earlier test's leftovers) would otherwise land in the measurement."""
    gc.collect()
    gc.freeze()
    try:
        return await _longest_hold(work)
    finally:
        gc.unfreeze()


async def _longest_hold(work: Callable[[], Awaitable[None]]) -> float:
    longest = 0.0
    done = False

    async def probe() -> None:
        nonlocal longest
        last = time.monotonic()
        while not done:
            await trio.sleep(0)
            now = time.monotonic()
            longest = max(longest, now - last)
            last = now

    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe)
        await trio.sleep(0)
        try:
            await work()
        finally:
            done = True
    return longest


async def test_a_scrape_of_30000_drains_leaves_the_event_loop_free(router: Router) -> None:
    drains = [(i, _Counters(i)) for i in range(1, 30_001)]
    router.node.metrics.export_drains(lambda: list(drains))
    pages: list[bytes] = []

    async def scrape() -> None:
        pages.append(await trio.to_thread.run_sync(fetch, router.api_port, "/metrics"))

    async def scrapes() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(4):  # four scrapers at once share a page
                nursery.start_soon(scrape)

    hold = await longest_hold(scrapes)
    assert len(pages) == 4 and len(set(pages)) == 1
    families = {f.name: f for f in text_string_to_metric_families(pages[0].decode())}
    delivered = {s.labels["drain_id"]: s.value
                 for s in families["logrouter_drain_delivered"].samples}
    assert len(delivered) == 30_000 and delivered["12345"] == 12_345_000
    assert len(families["logrouter_drain_buffered"].samples) == 30_000
    assert "logrouter_messages_received" in families  # the registry's own series are there too
    assert hold < MAX_HOLD, f"the event loop was held {hold:.3f} s"


async def test_stats_of_100000_apps_leave_the_event_loop_free(router: Router) -> None:
    channel_id, _ = await router.create_channel("real")
    for i in range(100_000):
        router.node.table.put_channel(ChannelRecord(f"app-{i}", f"app{i}", 0.0))
    resp = await router.api("POST", f"/v2/channels/{channel_id}/drains",
                            {"url": "syslog://192.0.2.1:601"})
    assert resp.status == 201, resp.body
    pages: list[bytes] = []

    views = ["/v3/stats", "/v3/stats", "/v3/stats?limit=15",  # everything; logrouter top
             "/v3/stats?sort=name&limit=500&q=app9", "/v3/stats?channel=app-99999"]  # console

    async def poll() -> None:
        for path in views:
            pages.append(await trio.to_thread.run_sync(fetch, router.api_port, path))

    hold = await longest_hold(poll)
    stats = json.loads(pages[1])
    assert len(stats["channels"]) == 100_001
    assert {"id": "app-99999", "name": "app99999", "received": 0, "history": 0, "rate": 0.0,
            "drains": 0} in stats["channels"]
    top, listed, one = (json.loads(page) for page in pages[2:])
    assert len(top["channels"]) == 15 and top["counts"]["channels"] == 100_001
    assert len(listed["channels"]) == 500 and listed["counts"]["matched_channels"] == 11_111
    assert listed["channels"][0]["name"] == "app9"
    assert [c["name"] for c in one["channels"]] == ["app99999"]
    (drain,) = stats["drains"]
    assert drain["channel_id"] == channel_id and drain["url"] == "syslog://192.0.2.1:601"
    assert "delivered" in drain and "connected" in drain  # its live status
    assert hold < MAX_HOLD, f"the event loop was held {hold:.3f} s"
