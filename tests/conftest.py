"""Fixtures: a real node on loopback ports, in the test's own trio run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from logrouter.node import Node
from logrouter.settings import Settings
from tests.helpers import HttpResponse, basic, request
from tests.procs import RouterProcess

AUTH_KEY = "test-key"


class Router:
    """A running node plus conveniences to drive it over its real sockets."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.syslog_port = node.addresses["syslog"][1]
        self.logs_port = node.addresses["logs"][1]
        self.api_port = node.addresses["api"][1]

    async def api(self, method: str, path: str, body: Any = None,
                  auth: str | None = basic("", AUTH_KEY), **kw: Any) -> HttpResponse:
        return await request(self.api_port, method, path, body, auth=auth, **kw)

    async def create_channel(self, name: str = "demo", tokens: tuple[str, ...] = ("app", "heroku"),
                             ) -> tuple[str, dict[str, str]]:
        resp = await self.api("POST", "/channels", {"name": name, "tokens": list(tokens)})
        assert resp.status == 201, resp.body
        data = resp.json()
        return str(data["channel_id"]), data["tokens"]

    async def send_tcp(self, data: bytes) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", self.syslog_port)
        await stream.send_all(data)
        await stream.aclose()

    async def wait_received(self, channel_id: str, count: int, timeout: float = 60.0) -> None:
        """Wait until ingest has posted ``count`` lines to the channel (a big send returns once
        the kernel took its bytes, long before the router read them all)."""
        channel = self.node.table.get(channel_id)
        assert channel is not None
        with trio.fail_after(timeout):
            while channel.received < count:
                await trio.sleep(0.01)

    async def wait_history(self, channel_id: str, count: int, timeout: float = 5.0) -> list[bytes]:
        """Wait until the channel's history holds ``count`` lines (ingest is asynchronous)."""
        channel = self.node.table.get(channel_id)
        assert channel is not None
        with trio.fail_after(timeout):
            while len(channel.history) < count:
                await trio.sleep(0.01)
        return channel.history.snapshot()

    async def session(self, channel_id: str, **body: Any) -> str:
        resp = await self.api("POST", "/v2/sessions", {"channel_id": channel_id, **body})
        assert resp.status == 201, resp.body
        url: str = resp.json()["url"]
        return url[url.index("/sessions/"):]


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(bind="127.0.0.1", syslog_port=0, logs_port=0, api_port=0, auth_key=AUTH_KEY,
                    data_dir=str(data_dir), **overrides)


@pytest.fixture
def router_proc(tmp_path: Path) -> Iterator[RouterProcess]:
    r = RouterProcess(tmp_path / "data")
    r.start()
    yield r
    if r.proc is not None:
        r.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def router(nursery: trio.Nursery, settings: Settings) -> AsyncIterator[Router]:
    node = Node(settings, announce=lambda line: None)
    await nursery.start(node.run)
    yield Router(node)
    node.request_stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB filesystem of its own (tmpfs; mounting needs root): a disk that really fills.
    Where it cannot be mounted the test is skipped, unless ``LOGROUTER_EXPECT_SMALL_DISK=1``
    makes that a failure."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode:
        if os.environ.get("LOGROUTER_EXPECT_SMALL_DISK") == "1":
            raise RuntimeError(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
