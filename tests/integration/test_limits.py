"""A node raises its open-file limit (drains and tails are sockets); cluster nodes keep no ring."""

from __future__ import annotations

import resource
from pathlib import Path

import trio

from logrouter.node import Node
from tests.conftest import make_settings


async def test_open_file_limit_raised_to_the_hard_limit(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        lower = max(256, hard // 2) if hard != resource.RLIM_INFINITY else 1024
        resource.setrlimit(resource.RLIMIT_NOFILE, (lower, hard))
    node = Node(make_settings(tmp_path / "d"), announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        now, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert now == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
        node.request_stop()
