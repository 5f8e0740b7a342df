"""``GET /v3/stats``: every app and drain, or what a view asks for (busiest, by name, one app)."""

from __future__ import annotations

from typing import Any

import trio

from tests.conftest import Router
from tests.drains.conftest import add_drain
from tests.drains.sinks import SyslogSink
from tests.helpers import eventually, frame, octet


async def stats(router: Router, query: str = "") -> dict[str, Any]:
    resp = await router.api("GET", f"/v3/stats{query}")
    assert resp.status == 200, resp.body
    data: dict[str, Any] = resp.json()
    return data


async def test_the_busiest_apps_and_drains_first_with_their_rates(
        router: Router, nursery: trio.Nursery) -> None:
    sink = SyslogSink()
    port = await nursery.start(sink.run)
    apps = {}
    for name in ("cold", "warm", "hot"):
        cid, tokens = await router.create_channel(name)
        await add_drain(router, cid, f"syslog://127.0.0.1:{port}")
        apps[name] = (cid, tokens["app"])
    await stats(router)  # the first sample
    for name, n in (("hot", 300), ("warm", 30)):
        await router.send_tcp(octet(*[frame(apps[name][1], f"{name} {i}") for i in range(n)]))
    await sink.wait_frames(330)
    await trio.sleep(1.1)  # a sample is at most one a second

    top = await stats(router, "?limit=2")
    assert [c["name"] for c in top["channels"]] == ["hot", "warm"]
    hot, warm = top["channels"]
    assert hot["rate"] > warm["rate"] > 0 and hot["received"] == 300
    assert [d["channel_id"] for d in top["drains"]] == [apps["hot"][0], apps["warm"][0]]
    assert top["drains"][0]["rate"] > top["drains"][1]["rate"] > 0
    assert top["drains"][0]["delivered"] == 300
    counts = top["counts"]
    assert counts["channels"] == counts["matched_channels"] == 3
    assert counts["drains"] == counts["matched_drains"] == 3

    async def totals_caught_up() -> bool:  # sampled at most once a second
        return (await stats(router, "?limit=1"))["drain_totals"]["delivered"] == 330

    await eventually(totals_caught_up)
    everything = await stats(router)
    assert len(everything["channels"]) == 3 and len(everything["drains"]) == 3
    assert sum(d["delivered"] for d in everything["drains"]) == 330


async def test_apps_by_name_filtered_and_one_app_with_its_drains(router: Router) -> None:
    ids = {}
    for name in ("beta", "alpha-worker", "alpha-web"):
        ids[name], _ = await router.create_channel(name)
    await add_drain(router, ids["alpha-web"], "syslog://192.0.2.1:514")
    await add_drain(router, ids["beta"], "syslog://192.0.2.2:514")

    page = await stats(router, "?q=ALPHA&sort=name&limit=1")
    assert [(c["name"], c["drains"]) for c in page["channels"]] == [("alpha-web", 1)]
    assert page["counts"]["matched_channels"] == 2 and page["counts"]["channels"] == 3
    assert [d["url"] for d in page["drains"]] == ["syslog://192.0.2.1:514"]
    assert page["counts"]["matched_drains"] == 1

    for ref in (ids["beta"], "beta"):
        one = await stats(router, f"?channel={ref}")
        assert [c["name"] for c in one["channels"]] == ["beta"]
        assert [d["url"] for d in one["drains"]] == ["syslog://192.0.2.2:514"]
    assert (await router.api("GET", "/v3/stats?channel=nope")).status == 404


async def test_bad_parameters_are_refused_with_a_reason(router: Router) -> None:
    for query, says in (("?limit=0", "limit"), ("?limit=many", "limit"),
                        ("?limit=5001", "limit"), ("?limit=%C2%B2", "limit"),  # '²' is a digit
                        ("?sort=loudest", "sort")):
        resp = await router.api("GET", f"/v3/stats{query}")
        assert resp.status == 422 and says in resp.body.decode(), (query, resp.body)
