"""A connection's waits for drains share one budget, however many drains push back."""

from __future__ import annotations

import trio
import trio.testing

from logrouter.core.channels import ChannelTable
from logrouter.ingest.pipeline import Ingest, WaitBudget
from logrouter.metrics import Metrics


class NeverCatchesUp:
    """A consumer whose receiver never makes room: each wait lasts until its deadline."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    def push(self, lines: list[bytes]) -> bool:
        return True

    async def wait_room(self, deadline: float) -> bool:
        start = trio.current_time()
        await trio.sleep_until(deadline)
        self.waited.append(trio.current_time() - start)
        return True  # the receiver's doing: charged

    def close(self) -> None:
        pass


def test_budget_refills_at_a_tenth_and_caps() -> None:
    async def main() -> None:
        b = WaitBudget(1.0)
        now = trio.current_time()
        assert b.available(now) == 1.0
        b.spend(1.0)
        assert b.available(now) == 0.0
        assert abs(b.available(now + 5.0) - 0.5) < 1e-9
        assert b.available(now + 100.0) == 1.0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


class WaitsItsTurn(NeverCatchesUp):
    """A consumer that keeps up with its receiver but waits 0.5 s for the router's CPU."""

    async def wait_room(self, deadline: float) -> bool:
        await trio.sleep_until(min(deadline, trio.current_time() + 0.5))
        return False


def test_waiting_for_the_router_itself_does_not_spend_the_budget() -> None:
    async def main() -> None:
        ingest = Ingest(ChannelTable(10), Metrics(), backpressure_max=1.0)
        budget = ingest.budget()
        start = trio.current_time()
        for _ in range(10):
            await ingest.wait_for_room([WaitsItsTurn()], budget)
        assert trio.current_time() - start == 5.0  # every wait got its full half second
        assert budget.available(trio.current_time()) == 1.0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_ten_slow_drains_cost_one_budget_not_ten() -> None:
    async def main() -> None:
        ingest = Ingest(ChannelTable(10), Metrics(), backpressure_max=1.0)
        budget = ingest.budget()
        drains = [NeverCatchesUp() for _ in range(10)]
        start = trio.current_time()
        for d in drains:  # each falls behind on its own, one batch after another
            await ingest.wait_for_room([d], budget)
        spent = trio.current_time() - start
        # the first waits its second; the rest only what 10 % refills meanwhile (0.1, 0.01, …)
        assert 1.0 <= spent < 1.0 / 0.9 + 1e-6, spent
        assert drains[0].waited == [1.0] and sum(sum(d.waited) for d in drains[1:]) < 0.112

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
