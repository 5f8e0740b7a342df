"""A node raises its open-file limit (drains and tails are sockets); cluster nodes keep no ring."""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import socket
from pathlib import Path

import pytest
import trio

from logrouter.node import Node
from tests.conftest import Router, make_settings
from tests.helpers import eventually


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


async def test_out_of_file_descriptors_is_logged_once_a_while_not_ten_times_a_second(
        router: Router, caplog: pytest.LogCaptureFixture) -> None:
    """A listener that cannot accept for want of descriptors retries every 0.1 s; it says so
    once per ``ACCEPT_ERROR_LOG_INTERVAL`` with how many times, and serves again once there is
    room (it logged every retry before: 36,000 lines an hour per listener)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    gc.collect()  # sockets earlier tests left to the collector are closed now, not meanwhile
    client = socket.socket()
    client.setblocking(False)
    fillers: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
    try:
        with contextlib.suppress(OSError):
            while True:  # take every descriptor left
                fillers.append(os.open(os.devnull, os.O_RDONLY))
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", router.syslog_port))  # done by the kernel: backlog
        await trio.sleep(1.05)  # the listener tries ~10 times
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    errors = [r for r in caplog.records if "accept_error" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "Too many open files" in errors[0].getMessage()
    client.sendall(b"<13>1 - - t.nope - - - after\n")  # accepted now: the line is read and dropped
    await eventually(lambda: router.node.metrics.unknown_token._value.get() == 1)
    client.close()
