"""Drain tests run a node with short timeouts and back-offs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from logrouter.node import Node
from tests.conftest import Router, make_settings
from tests.drains.sink_process import SinkProcess

FAST = dict(drain_backoff_initial=0.05, drain_backoff_max=0.2, http_drain_connect_timeout=0.5,
            http_drain_response_timeout=0.5, syslog_drain_send_timeout=0.5)


@pytest.fixture
async def fast_router(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Router]:
    node = Node(make_settings(tmp_path / "data", **FAST), announce=lambda line: None)
    await nursery.start(node.run)
    yield Router(node)
    node.request_stop()


@pytest.fixture
def sinks(nursery: trio.Nursery) -> trio.Nursery:
    """Where receivers run: cancelled after the test, so a test's own node can stop first."""
    return nursery


@pytest.fixture
def sink_process(tmp_path: Path) -> Iterator[SinkProcess]:
    """A healthy syslog and HTTP receiver in a process of their own, stopped after the test."""
    sinks = SinkProcess(tmp_path / "received")
    yield sinks
    sinks.stop()


async def add_drain(router: Router, cid: str, url: str) -> dict[str, object]:
    resp = await router.api("POST", f"/v2/channels/{cid}/drains", {"url": url})
    assert resp.status == 201, resp.body
    data: dict[str, object] = resp.json()
    return data


async def drain_status(router: Router, cid: str, drain_id: object) -> dict[str, object]:
    """The ``status`` object of a drain, from the API."""
    status: dict[str, object] = (await router.api(
        "GET", f"/v3/channels/{cid}/drains/{drain_id}")).json()["status"]
    return status
