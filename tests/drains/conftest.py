"""Drain tests run a node with short timeouts and back-offs."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from logrouter.node import Node
from tests.conftest import Router, make_settings

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


class SinkThread:
    """Receivers on a trio loop of their own, in a thread: a node under test that keeps its
    loop busy (a burst in pure Python) cannot starve them as it starves receivers on its own
    loop, so they answer as a healthy receiver on another machine would."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        self._ready.wait()

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self._token, self._nursery = trio.lowlevel.current_trio_token(), nursery
            self._ready.set()
            await trio.sleep_forever()

    async def start(self, run: Callable[..., Awaitable[Any]]) -> int:
        """Start ``run`` (a sink's ``run``) on the thread's loop; return the port it reports."""
        assert self._nursery is not None
        port: int = await trio.to_thread.run_sync(
            lambda: trio.from_thread.run(self._nursery.start, run,  # type: ignore[union-attr]
                                         trio_token=self._token))
        return port

    def stop(self) -> None:
        assert self._nursery is not None
        trio.from_thread.run_sync(self._nursery.cancel_scope.cancel, trio_token=self._token)
        self._thread.join(10)


@pytest.fixture
def sink_thread() -> Iterator[SinkThread]:
    """Receivers on their own loop in a thread, stopped after the test."""
    thread = SinkThread()
    yield thread
    thread.stop()


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
