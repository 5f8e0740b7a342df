"""SharedPage: one answer made at a time, shared by the requests that ask meanwhile, reused for
as long as it took to make; and the per-drain exposition written without prometheus-client."""

from __future__ import annotations

import trio
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from logrouter.api.shared_page import SharedPage
from logrouter.core.turns import in_turns
from logrouter.metrics import DRAIN_FAMILIES, DrainRow, drain_exposition, drain_series


class Maker:
    """A page maker that takes ``seconds`` and counts its calls; ``fail`` makes the next raise."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.calls = 0
        self.fail = False

    async def __call__(self) -> bytes:
        self.calls += 1
        call = self.calls
        await trio.sleep(self.seconds)
        if self.fail:
            self.fail = False
            raise RuntimeError("make failed")
        return b"page %d" % call


async def test_requests_while_a_page_is_made_share_it() -> None:
    maker = Maker()
    page = SharedPage(maker)
    got: list[bytes] = []

    async def ask() -> None:
        got.append(await page.get())

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(ask)
    assert got == [b"page 1"] * 10 and maker.calls == 1


async def test_a_page_is_reused_for_as_long_as_it_took_to_make() -> None:
    maker = Maker(0.2)
    page = SharedPage(maker)
    assert await page.get() == b"page 1"
    await trio.sleep(0.05)
    assert await page.get() == b"page 1"  # 0.05 s after a make of 0.2 s: the same page
    await trio.sleep(0.2)
    assert await page.get() == b"page 2" and maker.calls == 2


async def test_a_failed_make_raises_for_its_request_and_the_waiting_ones_make_their_own() -> None:
    maker = Maker()
    maker.fail = True
    page = SharedPage(maker)
    results: list[object] = []

    async def ask() -> None:
        try:
            results.append(await page.get())
        except RuntimeError as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.sleep(0.01)
        nursery.start_soon(ask)
        nursery.start_soon(ask)
    assert isinstance(results[0], RuntimeError)
    assert results[1:] == [b"page 2", b"page 2"] and maker.calls == 2


async def test_a_request_that_goes_away_does_not_cancel_the_page_others_wait_for() -> None:
    maker = Maker(0.1)
    page = SharedPage(maker)
    got: list[bytes] = []

    async def wait_for_it() -> None:
        got.append(await page.get())

    async with trio.open_nursery() as nursery:
        with trio.move_on_after(0.02) as gone:  # the request that began the page: client gone
            nursery.start_soon(wait_for_it)
            await page.get()
            await trio.sleep(1)
    assert gone.cancelled_caught
    assert got == [b"page 1"] and maker.calls == 1


async def test_in_turns_lets_the_event_loop_run_between_slices() -> None:
    turns = 0
    done = False
    seen: set[int] = set()

    async def count_turns() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(count_turns)
        await trio.sleep(0)
        rows = await in_turns(list(range(10_000)), lambda i: (seen.add(turns), i * 2)[1],
                              per_turn=1000)
        done = True
    assert rows == [i * 2 for i in range(10_000)]
    assert len(seen) >= 5  # the other task ran between the slices (in one go: 1 value)


class _Reference(Collector):
    """The per-drain families as prometheus-client writes them (what the router did before)."""

    def __init__(self, rows: list[DrainRow]) -> None:
        self.rows = rows

    def collect(self):  # type: ignore[no-untyped-def]
        for col, (name, kind, doc) in enumerate(DRAIN_FAMILIES):
            family = (CounterMetricFamily(name.removesuffix("_total"), doc, labels=["drain_id"])
                      if kind == "counter" else GaugeMetricFamily(name, doc, labels=["drain_id"]))
            for drain_id, row in self.rows:
                family.add_metric([str(drain_id)], row[col])
            yield family


counts = st.one_of(st.integers(0, 2_000_000), st.integers(0, 2**53))


@given(st.lists(st.tuples(st.integers(1, 10**9), st.tuples(counts, counts, counts, counts,
                                                            counts)), max_size=20))
def test_the_drain_exposition_is_what_prometheus_client_writes(rows: list[DrainRow]) -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_Reference(rows))
    expected = generate_latest(registry)
    assert drain_exposition([drain_series(rows)]) == expected
    half = len(rows) // 2  # written a run of drains at a time, as /metrics does
    assert drain_exposition([drain_series(rows[:half]), drain_series(rows[half:])]) == expected
