"""The same code on a real three-primary Redis Cluster (keys hash-tagged by channel)."""

from __future__ import annotations

from pathlib import Path

import trio

from logrouter.node import Node
from tests.cluster.conftest import RedisClusterServers
from tests.conftest import Router, make_settings
from tests.helpers import eventually, frame, octet, open_request


async def test_two_nodes_on_redis_cluster(redis_cluster: RedisClusterServers, tmp_path: Path) -> None:
    nodes = [Node(make_settings(tmp_path / f"n{i}", redis_url=redis_cluster.url),
                  announce=lambda line: None) for i in range(2)]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        a, b = Router(nodes[0]), Router(nodes[1])
        channels = [await a.create_channel(f"app{i}") for i in range(6)]  # spread over slots
        await eventually(lambda: all(b.node.table.get(cid) is not None for cid, _ in channels), 2)
        cid = channels[3][0]
        tail = await open_request(b.api_port, "GET", await b.session(cid, num="0", tail=True),
                                  headers={"Accept": "text/event-stream"})
        await eventually(lambda: cid in nodes[0].cluster.relay.remote_tailed)  # type: ignore[union-attr]
        await a.send_tcp(octet(*(frame(t["app"], f"to {c}") for c, t in channels)))
        await tail.read_until(f"to {cid}".encode(), timeout=2)
        await tail.aclose()
        for c, _ in channels:  # every channel's history landed in the cluster
            path = await b.session(c, num="5")
            with trio.fail_after(2):
                while True:
                    resp = await open_request(b.api_port, "GET", path)
                    body = await resp.read_to_end()
                    await resp.aclose()
                    if f"to {c}".encode() in body:
                        break
                    await trio.sleep(0.05)
        for node in nodes:
            node.request_stop()
