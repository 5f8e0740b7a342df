"""The disk spool end to end: receivers down, `kill -9`, restarts, the bound, damage."""

from __future__ import annotations

import os
import random
import re
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import NamedTuple

import trio

from logrouter.node import Node
from logrouter.settings import Settings
from tests.conftest import Router, make_settings
from tests.drains.conftest import FAST, add_drain
from tests.drains.sinks import HttpSink, SyslogSink
from tests.drains.test_delivery import SYSLOG_L10, syslog_lines
from tests.drains.test_http_drain import split_body
from tests.helpers import eventually
from tests.procs import RouterProcess, free_port

SPOOL_ENV = {"LOGROUTER_DRAIN_SPOOL_BYTES": str(200 * 1024 * 1024),
             "LOGROUTER_DRAIN_BACKOFF_INITIAL": "0.05", "LOGROUTER_DRAIN_BACKOFF_MAX": "0.2",
             "LOGROUTER_HTTP_DRAIN_CONNECT_TIMEOUT": "0.5",
             "LOGROUTER_HTTP_DRAIN_RESPONSE_TIMEOUT": "0.5",
             "LOGROUTER_SYSLOG_DRAIN_SEND_TIMEOUT": "0.5"}
NUM = re.compile(rb" b (\d{6}) ")


def numbers(frames: list[bytes]) -> list[int]:
    return [int(m.group(1)) for f in frames if (m := NUM.search(f))]


def numbered(token: str, seqs: range, pad: str = "x") -> bytes:
    """Octet-counted frames for ``token``, the n-th saying ``b <n, 6 digits> <pad>``."""
    return b"".join(b"%d %s" % (len(f), f) for f in
                    (f"<190>1 2026-11-26T10:00:00.000000+00:00 host {token} web.1 - - "
                     f"b {n:06d} {pad}".encode() for n in seqs))


def reported(sink: SyslogSink) -> int:
    """Lines the L10s ``sink`` received say were lost."""
    return sum(int(m.group(1)) for f in sink.frames if (m := SYSLOG_L10.search(f)))


async def accounted(sink: SyslogSink, total: int, timeout: float) -> list[int]:
    """Wait until ``sink`` received or was told of the loss of ``total`` numbered lines; the
    numbers it received."""
    await eventually(lambda: len(numbers(syslog_lines(sink))) + reported(sink) >= total,
                     timeout=timeout)
    return numbers(syslog_lines(sink))


class Spooling(NamedTuple):
    node: Node
    router: Router
    cid: str
    token: str  # the channel's "app" token
    drain_id: int


@asynccontextmanager
async def spooling_node(settings: Settings, sink_port: int) -> AsyncIterator[Spooling]:
    """A node on ``settings`` with one channel whose syslog drain goes to ``sink_port``;
    asked to stop when the block ends (the node's own nursery waits for it)."""
    node = Node(settings, announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        cid, tokens = await router.create_channel()
        drain = await add_drain(router, cid, f"syslog://127.0.0.1:{sink_port}")
        yield Spooling(node, router, cid, tokens["app"], drain["id"])
        node.request_stop()


async def spooled_http_drain(tmp_path: Path, sinks: trio.Nursery, script: list[int | str],
                             ) -> tuple[HttpSink, RouterProcess, str]:
    """A spooling router process with one channel draining to a scripted HTTP receiver:
    the receiver, the router and the channel's token."""
    sink = HttpSink(script=script)
    port = await sinks.start(sink.run)
    proc = RouterProcess(tmp_path / "data", env=SPOOL_ENV)
    await trio.to_thread.run_sync(proc.start)
    channel = proc.api("POST", "/channels", {"name": "spooled", "tokens": ["app"]})
    cid, token = str(channel["channel_id"]), channel["tokens"]["app"]
    proc.api("POST", f"/v2/channels/{cid}/drains", {"url": f"http://127.0.0.1:{port}/"})
    return sink, proc, token


async def test_kill_9_with_the_receiver_down_loses_nothing(tmp_path: Path, sinks: trio.Nursery,
                                                           ) -> None:
    sink_port = free_port()
    proc = RouterProcess(tmp_path / "data", env=SPOOL_ENV)
    await trio.to_thread.run_sync(proc.start)
    channel = proc.api("POST", "/channels", {"name": "spooled", "tokens": ["app"]})
    cid, token = str(channel["channel_id"]), channel["tokens"]["app"]
    proc.api("POST", f"/v2/channels/{cid}/drains", {"url": f"syslog://127.0.0.1:{sink_port}"})
    total = 30_000
    stream = await trio.open_tcp_stream("127.0.0.1", proc.ports["syslog"])
    start = trio.current_time()
    for i in range(30):  # 30,000 lines over 3 s, the receiver down throughout
        await stream.send_all(numbered(token, range(i * 1000, (i + 1) * 1000)))
        await trio.sleep_until(start + (i + 1) * 0.1)
    await stream.aclose()
    await trio.sleep(0.3)  # more than the spool's flush interval (50 ms) after the last line
    proc.kill()
    sink = SyslogSink()
    await sinks.start(partial(sink.run, port=sink_port))
    await trio.to_thread.run_sync(proc.start)

    async def all_delivered() -> bool:
        return len(set(numbers(sink.frames))) >= total

    try:
        await eventually(all_delivered, timeout=30)
    finally:
        proc.stop()
    got = numbers(syslog_lines(sink))
    assert set(got) == set(range(total))
    first_seen = list(dict.fromkeys(got))
    assert first_seen == sorted(first_seen)  # in order of first arrival
    assert len(got) - total <= total // 100  # duplicates at most 1 %
    assert not any(b"Error L10" in f for f in sink.frames)


async def test_http_batch_cut_by_a_crash_is_resent_with_its_frame_id(
        tmp_path: Path, sinks: trio.Nursery) -> None:
    sink, proc, token = await spooled_http_drain(tmp_path, sinks, [500])
    proc.post_lines(token, [("web.1", "2026-11-26T10:00:00.000000+00:00", f"b {n:06d} x")
                            for n in range(200)])
    await sink.wait_requests(3)  # failing, retried with the same Frame-Id
    ids = {r.headers["Logplex-Frame-Id"] for r in sink.requests}
    assert len(ids) == 1
    proc.kill()
    seen = len(sink.requests)
    sink.script = [*([500] * seen), 200]
    await trio.to_thread.run_sync(proc.start)
    try:
        reqs = await sink.wait_requests(seen + 1, timeout=15)
    finally:
        proc.stop()
    after = reqs[seen]
    assert after.headers["Logplex-Frame-Id"] in ids
    assert numbers(split_body(after.body)) == list(range(200))


async def test_spool_bound_drops_the_oldest_and_says_so(tmp_path: Path, sinks: trio.Nursery,
                                                        ) -> None:
    sink_port = free_port()
    sink = SyslogSink()
    total = 20_000
    settings = make_settings(tmp_path / "d", drain_spool_bytes=300_000, **FAST)
    async with spooling_node(settings, sink_port) as (_node, router, _cid, token, _drain_id):
        for i in range(0, total, 1000):
            await router.send_tcp(numbered(token, range(i, i + 1000), "x" * 100))
            await trio.sleep(0.06)  # let the spool write
        spool = tmp_path / "d" / "spool"
        size = sum(f.stat().st_size for f in spool.rglob("*.seg"))
        assert 0 < size <= 300_000 + 128 * 1024
        await sinks.start(partial(sink.run, port=sink_port))
        got = await accounted(sink, total, timeout=20)
        assert reported(sink) > 0 and len(got) + reported(sink) == total
        # the newest survive, in order connection by connection (of each connection the
        # oldest lines went first); connections may interleave (see the outage test below)
        assert max(got) == total - 1
        for first in range(0, total, 1000):
            mine = [n for n in got if first <= n < first + 1000]
            assert mine == list(range(first + 1000 - len(mine), first + 1000))


async def test_a_damaged_spool_file_does_not_stop_the_router(tmp_path: Path, sinks: trio.Nursery,
                                                             ) -> None:
    sink_port = free_port()
    settings = make_settings(tmp_path / "d", drain_spool_bytes=10_000_000, **FAST)
    async with spooling_node(settings, sink_port) as (_node, router, _cid, token, drain_id):
        for i in range(0, 3000, 1000):
            await router.send_tcp(numbered(token, range(i, i + 1000)))
            await trio.sleep(0.1)
    (seg,) = (tmp_path / "d" / "spool" / f"drain-{drain_id}").glob("*.seg")
    data = bytearray(seg.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = os.urandom(64)  # a stray edit in the middle
    seg.write_bytes(bytes(data))
    sink = SyslogSink()
    await sinks.start(partial(sink.run, port=sink_port))
    node = Node(settings, announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        got = await accounted(sink, 3000, timeout=20)
        assert 0 < reported(sink) < 3000 and len(got) + reported(sink) == 3000
        assert got == sorted(got)
        node.request_stop()


async def test_outage_backlog_read_back_from_disk_in_order(tmp_path: Path, sinks: trio.Nursery,
                                                          ) -> None:
    sink_port = free_port()
    total = 20_000
    settings = make_settings(tmp_path / "d", drain_spool_bytes=50_000_000, **FAST)
    async with spooling_node(settings, sink_port) as (node, router, _cid, token, _drain_id):
        for i in range(0, total, 1000):
            await router.send_tcp(numbered(token, range(i, i + 1000)))
            await trio.sleep(0.06)
        queue = node.drains.running[1].drain.buffer  # type: ignore[union-attr]
        assert len(queue._mem) <= 4 * 1024 and queue.disk_bytes > 0  # type: ignore[attr-defined]
        sink = SyslogSink()
        await sinks.start(partial(sink.run, port=sink_port))
        await sink.wait_frames(total, timeout=20)
        got = numbers(syslog_lines(sink))
        assert sorted(got) == list(range(total))
        # in order connection by connection; connections may interleave: a connection waits
        # for the disk after a read (the drain is down and its memory small) while the next
        # one's first read is posted
        for first in range(0, total, 1000):
            assert [n for n in got if first <= n < first + 1000] == list(range(first, first + 1000))


async def test_repeated_kill_9_under_load_loses_only_the_last_moments(
        tmp_path: Path, sinks: trio.Nursery) -> None:
    """Lines POSTed while a flaky receiver (four requests in five refused) lags behind, and the
    router killed at four random moments and restarted: every line accepted more than half a
    second before a kill reaches the receiver (the spool promises two flush intervals, 0.1 s;
    the margin is for a loaded machine), and every line after the last restart."""
    rng = random.Random(7)
    script: list[int | str] = [rng.choice([200, 503, 503, 503, 503]) for _ in range(20_000)]
    sink, proc, token = await spooled_http_drain(tmp_path, sinks, [*script, 200])
    must: set[int] = set()
    n = 0

    async def post_for(seconds: float) -> list[tuple[float, range]]:
        nonlocal n
        accepted = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            k = rng.randint(1, 300)
            lines = [("web.1", "2026-11-28T10:00:00.000000+00:00", f"b {i:06d} {'x' * (i % 90)}")
                     for i in range(n, n + k)]
            await trio.to_thread.run_sync(proc.post_lines, token, lines)
            accepted.append((time.monotonic(), range(n, n + k)))
            n += k
        return accepted

    try:
        for _ in range(4):
            accepted = await post_for(rng.uniform(0.3, 1.0))
            proc.kill()
            killed_at = time.monotonic()
            must.update(i for at, lines in accepted if at < killed_at - 0.5 for i in lines)
            await trio.to_thread.run_sync(proc.start)
        must.update(i for _, lines in await post_for(0.5) for i in lines)

        delivered: set[int] = set()
        read = 0

        async def all_there() -> bool:
            nonlocal read
            for k in range(read, len(sink.requests)):  # the requests answered 200
                if sink.script[min(k, len(sink.script) - 1)] == 200:
                    delivered.update(numbers(split_body(sink.requests[k].body)))
            read = len(sink.requests)
            return must <= delivered

        await eventually(all_there, timeout=30)
    finally:
        if proc.proc is not None:
            proc.stop()
    assert len(must) > 1000


async def test_a_burst_into_a_down_drain_is_spooled_whole(tmp_path: Path, sinks: trio.Nursery,
                                                          ) -> None:
    """A burst far larger than a drain's memory, in one send while its receiver is down, with
    room on disk: the spool takes every line (ingest waits for the disk, not for the
    receiver), and the receiver gets them all, in order, with no L10, once it is up."""
    sink_port = free_port()
    total = 300_000
    settings = make_settings(tmp_path / "d", drain_spool_bytes=200_000_000, **FAST)
    async with spooling_node(settings, sink_port) as (_node, router, cid, token, _drain_id):
        await router.send_tcp(numbered(token, range(total), "x" * 60))
        await router.wait_received(cid, total)
        sink = SyslogSink()
        await sinks.start(partial(sink.run, port=sink_port))
        await accounted(sink, total, timeout=60)
        assert reported(sink) == 0
        assert [n for frames in sink.by_connection for n in numbers(frames)] == list(range(total))


async def test_a_full_disk_loses_only_what_did_not_fit_and_makes_room_again(
        small_disk: Path, sinks: trio.Nursery) -> None:
    """The spool's disk fills while the receiver is down: the lines that did not fit are
    counted once (delivered + reported by L10 = sent, exactly), and once the receiver has
    taken what was spooled the segments are deleted although the disk was full when their
    lines were delivered."""
    sink_port = free_port()
    data = small_disk / "d"
    total = 700_000  # the disk takes ~40,000, memory 557,056 more (burst + a round's worth)
    settings = make_settings(data, drain_spool_bytes=200_000_000, **FAST)
    async with spooling_node(settings, sink_port) as (_node, router, cid, token, drain_id):
        spool = data / "spool" / f"drain-{drain_id}"
        # one connection: its lines keep their order
        await router.send_tcp(numbered(token, range(total), "x" * 60))
        await router.wait_received(cid, total)
        assert shutil.disk_usage(small_disk).free < 1_100_000  # no room for another record
        sink = SyslogSink()
        await sinks.start(partial(sink.run, port=sink_port))
        got = await accounted(sink, total, timeout=120)  # ~10 s with the C speed-ups, ~40 without
        assert reported(sink) > 0 and len(got) + reported(sink) == total and len(got) > 10_000
        # in order, connection after connection (a write that timed out on a busy loop may
        # have made the drain reconnect: the sink reads both connections at once)
        in_order = [n for frames in sink.by_connection for n in numbers(frames)]
        assert in_order == sorted(in_order)

        async def room_again() -> bool:  # the newest segment stays while it can grow
            return len(list(spool.glob("*.seg"))) <= 1

        await eventually(room_again, timeout=10)
        assert not list(spool.glob("*.tmp"))
        assert shutil.disk_usage(small_disk).free > 1_500_000


async def test_lines_a_full_disk_did_not_take_are_reported_after_a_restart(
        small_disk: Path, sinks: trio.Nursery) -> None:
    """Stopped while its disk is full and its receiver down, a node counts the lines neither
    delivered nor on disk as lost (in the ledger, written in place if need be); the next run
    delivers what is on disk and reports the rest by L10: delivered + reported = sent."""
    sink_port = free_port()
    settings = make_settings(small_disk / "d", drain_spool_bytes=200_000_000, **FAST)
    total = 300_000
    reserve = small_disk / "reserve"
    reserve.write_bytes(bytes(256 * 1024))
    async with spooling_node(settings, sink_port) as (_node, router, cid, token, _drain_id):
        await router.send_tcp(numbered(token, range(total), "x" * 60))
        await router.wait_received(cid, total)
        assert shutil.disk_usage(small_disk).free < 1_100_000
    reserve.unlink()  # the operator makes room to restart (config.sqlite3 needs some)
    sink = SyslogSink()
    await sinks.start(partial(sink.run, port=sink_port))
    node = Node(settings, announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        got = await accounted(sink, total, timeout=60)
        assert 10_000 < len(got) < total and len(got) + reported(sink) == total
        assert [n for frames in sink.by_connection for n in numbers(frames)] == got == sorted(got)
        node.request_stop()
