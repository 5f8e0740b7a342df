"""A full disk does not stop a node: the config is read as it is, writes wait for room.

Every test here fills a real (tmpfs) filesystem; see the ``small_disk`` fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio

from logrouter.core.sessions import SessionTable
from logrouter.errors import ConfigError, StoreUnavailable
from logrouter.models import ChannelRecord, TokenRecord
from logrouter.node import Node
from logrouter.store.sqlite import SqliteStore
from tests.conftest import Router, make_settings
from tests.helpers import fill_disk, frame, octet


async def _channel(store: SqliteStore, cid: str) -> None:
    await store.put_channel(ChannelRecord(cid, f"app{cid}", 0.0),
                            [TokenRecord(f"t.{cid}", cid, "app")])


async def test_a_config_closed_cleanly_opens_read_only_on_a_full_disk(small_disk: Path) -> None:
    """It said "disk I/O error" and the node did not start: SQLite could not make the WAL's
    shared-memory file. Now the config is read as it is and each write says why it failed,
    until there is room again."""
    path = str(small_disk / "config.sqlite3")
    store = SqliteStore(path)
    await _channel(store, "1")
    await store.aclose()
    fill_disk(small_disk)

    store = SqliteStore(path)
    assert store.read_only is not None and "disk is full" in store.read_only
    assert [c.id for c in (await store.load()).channels] == ["1"]
    with pytest.raises(StoreUnavailable, match="disk is full"):
        await _channel(store, "2")

    (small_disk / "filler").unlink()  # the operator makes room
    await _channel(store, "2")
    assert store.read_only is None
    await store.aclose()
    assert sorted(c.id for c in (await SqliteStore(path).load()).channels) == ["1", "2"]


async def test_a_write_on_a_full_disk_is_unavailable_not_a_crash(small_disk: Path) -> None:
    path = str(small_disk / "config.sqlite3")
    store = SqliteStore(path)
    await _channel(store, "1")
    fill_disk(small_disk)
    with pytest.raises(StoreUnavailable, match="disk is full"):
        for i in range(2, 200):  # the WAL's free pages may take a few
            await _channel(store, str(i))
    (small_disk / "filler").unlink()
    await _channel(store, "x")
    assert "x" in {c.id for c in (await store.load()).channels}


async def test_sessions_outlive_a_full_disk(small_disk: Path) -> None:
    """A session is this node's to serve: its record in the config only carries it across a
    restart. On a full disk one is still created, and the sweep that forgets expired ones
    does not fail (it raised out of the node's sweeper task, which stopped the node)."""
    store = SqliteStore(str(small_disk / "config.sqlite3"))
    await _channel(store, "1")
    sessions = SessionTable(store, expiry=0.2, lifetime=0.2)
    early = await sessions.create("1", 10, False, None, None)
    fill_disk(small_disk)
    late = await sessions.create("1", 10, True, None, None)
    assert sessions.get(late.id) == late
    time.sleep(0.25)
    assert await sessions.sweep() == 2
    assert not sessions.sessions
    (small_disk / "filler").unlink()
    await sessions.sweep()  # deletes what the full disk kept it from deleting
    assert await store.get_session(early.id) is None


async def test_a_config_killed_before_a_checkpoint_is_read_whole_on_a_full_disk(
        small_disk: Path) -> None:
    """A node killed (its latest change only in the write-ahead log) and restarted on a full
    disk reads that change; its writes wait for room. A log without its shared-memory index
    cannot be read without writing: the node refuses to start and says why."""
    path = str(small_disk / "config.sqlite3")
    subprocess.run([sys.executable, "-c", (
        "import os, trio\n"
        "from logrouter.store.sqlite import SqliteStore\n"
        "from logrouter.models import ChannelRecord\n"
        f"store = SqliteStore({path!r})\n"
        "trio.run(store.put_channel, ChannelRecord('1', 'killed', 0.0), [])\n"
        "os._exit(9)\n")], check=False)
    assert os.path.getsize(path + "-wal") > 0
    fill_disk(small_disk)
    store = SqliteStore(path)
    assert [c.name for c in (await store.load()).channels] == ["killed"]
    with pytest.raises(StoreUnavailable, match="disk is full"):
        await _channel(store, "2")
    await store.aclose()

    os.unlink(path + "-shm")
    fill_disk(small_disk)  # again: the index's room went back to the free pool
    with pytest.raises(ConfigError, match=r"disk is full.*free some room.*-wal"):
        SqliteStore(path)


async def test_a_node_starts_on_a_full_disk_and_routes_logs(small_disk: Path) -> None:
    """Restarted on a disk with no room left, a node loads its config, takes and serves logs;
    the control writes that need the disk answer 503 saying why, and work once there is room."""
    settings = make_settings(small_disk / "d")
    node = Node(settings, announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel("full")
        node.request_stop()
    fill_disk(small_disk)

    node = Node(settings, announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        await router.send_tcp(octet(frame(tokens["app"], "on a full disk")))
        await router.wait_received(cid, 1)
        refused = await router.api("POST", "/channels", {"name": "another"})
        assert refused.status == 503 and "disk is full" in refused.body.decode()
        session = await router.api("POST", "/v2/sessions", {"channel_id": cid, "num": 10})
        assert session.status == 201, session.body  # `heroku logs` works on a full disk
        read = await router.api("GET", urlsplit(session.json()["url"]).path)
        assert read.status == 200 and b"on a full disk" in read.body
        (small_disk / "filler").unlink()
        await router.create_channel("another")
        node.request_stop()
