"""One node per data dir: a second `logrouter serve` on a data dir in use is refused (two nodes
would overwrite each other's saved history and append to the same drain spools), and a node
that died, even by SIGKILL, leaves nothing that stops the next one."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from logrouter.errors import ConfigError
from logrouter.node import Node
from tests.conftest import make_settings
from tests.procs import RouterProcess


async def test_a_second_node_on_a_data_dir_in_use_is_refused(tmp_path: Path) -> None:
    first = Node(make_settings(tmp_path / "data"), announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        second = Node(make_settings(tmp_path / "data"), announce=lambda _: None)
        with trio.fail_after(10), pytest.raises(
                ConfigError, match=rf"data dir {tmp_path / 'data'} is in use by another "
                                   rf"logrouter \(pid {os.getpid()}\)"):
            await second.run()
        first.request_stop()
    again = Node(make_settings(tmp_path / "data"), announce=lambda _: None)  # released on stop
    async with trio.open_nursery() as nursery:
        await nursery.start(again.run)
        again.request_stop()


def _serve(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`logrouter serve` on ``data_dir`` with ports of its own, run to its end."""
    return subprocess.run([sys.executable, "-m", "logrouter", "serve"],
                          env=RouterProcess(data_dir).environment(), text=True,
                          capture_output=True, timeout=30)


def test_the_cli_says_which_process_holds_the_data_dir_and_a_killed_one_holds_nothing(
        tmp_path: Path) -> None:
    router = RouterProcess(tmp_path / "data")
    router.start()
    assert router.proc is not None
    try:
        refused = _serve(tmp_path / "data")
        assert refused.returncode == 2
        assert f"is in use by another logrouter (pid {router.proc.pid})" in refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        router.proc.send_signal(signal.SIGKILL)
        router.proc.wait()
    router.start()  # the lock died with the process
    assert router.stop() == 0


async def test_the_parent_of_workers_holds_the_data_dir_too(tmp_path: Path) -> None:
    from logrouter.data_dir import lock_data_dir
    from logrouter.workers import run_workers

    data = tmp_path / "data"
    data.mkdir()
    held = lock_data_dir(str(data))
    try:
        settings = make_settings(data, workers=2, redis_url="redis://127.0.0.1:1/0")
        with trio.fail_after(10), pytest.raises(ConfigError, match="is in use by another"):
            await run_workers(settings, lambda _: None)
    finally:
        os.close(held)
    os.close(lock_data_dir(str(data)))  # closing released it


@pytest.mark.parametrize("content", [b"\x87\x00\xff garbage", b"two words\n", b"a\x7fb"],
                         ids=["binary", "space", "control"])
async def test_a_key_file_that_holds_no_key_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    """Not a traceback, and not a new key written over it: the operator decides."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "auth_key").write_bytes(content)
    node = Node(dataclasses.replace(make_settings(data), auth_key=""), announce=lambda _: None)
    with trio.fail_after(10), pytest.raises(ConfigError, match=r"auth_key.*LOGROUTER_AUTH_KEY"):
        await node.run()
    assert (data / "auth_key").read_bytes() == content
