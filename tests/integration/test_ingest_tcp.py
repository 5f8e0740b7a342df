"""Syslog over TCP into a running node: real sockets, real `logger`."""

from __future__ import annotations

import shutil

import pytest
import trio

from tests.conftest import Router
from tests.helpers import eventually, frame, octet

needs_logger = pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger missing")


async def run_logger(router: Router, *args: str) -> None:
    cmd = ["logger", "--tcp", "--rfc5424", "-n", "127.0.0.1", "-P", str(router.syslog_port), *args]
    result = await trio.run_process(cmd, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr


@needs_logger
async def test_logger_octet_counted(router: Router) -> None:
    cid, tokens = await router.create_channel()
    await run_logger(router, "--octet-count", "-t", tokens["app"], "--id=42", "hello octet")
    (line,) = await router.wait_history(cid, 1)
    assert b" app 42 " in line and line.endswith(b"hello octet")
    assert tokens["app"].encode() not in line  # cooked


@needs_logger
async def test_logger_newline_framed(router: Router) -> None:
    cid, tokens = await router.create_channel()
    await run_logger(router, "-t", tokens["heroku"], "hello newline")
    (line,) = await router.wait_history(cid, 1)
    assert b" heroku " in line and line.endswith(b"hello newline")


async def test_batch_routes_many_tokens_and_counts_bad_frames(router: Router) -> None:
    a, ta = await router.create_channel("a")
    b, tb = await router.create_channel("b")
    data = (octet(frame(ta["app"], "a1"), frame(tb["app"], "b1"))
            + b"random garbage line\n"
            + octet(frame("t.00000000-0000-0000-0000-000000000000", "unknown"))
            + octet(b"x" * 20000)
            + octet(frame(ta["heroku"], "a2", procid="router"))
            + b"<13>1 2026-11-26T10:00:00Z h " + tb["app"].encode() + b" 1 - - newline framed\n")
    await router.send_tcp(data)
    a_lines = await router.wait_history(a, 2)
    b_lines = await router.wait_history(b, 2)
    assert [line.rsplit(b" ", 1)[1] for line in a_lines] == [b"a1", b"a2"]
    assert b_lines[1].endswith(b"newline framed")
    metrics = router.node.metrics
    assert metrics.unknown_token._value.get() == 1
    assert metrics.malformed["oversize"]._value.get() == 1
    assert metrics.malformed["not_syslog"]._value.get() == 1
    assert metrics.received_tcp._value.get() == 4


async def test_frames_split_across_writes_and_connection_survives(router: Router) -> None:
    cid, tokens = await router.create_channel()
    frames = [octet(frame(tokens["app"], f"line {i}")) for i in range(200)]
    stream = await trio.open_tcp_stream("127.0.0.1", router.syslog_port)
    for i in range(0, 200, 10):
        data = b"".join(frames[i:i + 10])
        await stream.send_all(data[:33])  # a frame split across writes
        await stream.send_all(data[33:])
        await stream.send_all(b"\x00\xff garbage line between frames\n")
    await stream.aclose()
    lines = await router.wait_history(cid, 200)
    assert [line.rsplit(b" ", 1)[1] for line in lines] == [str(i).encode() for i in range(200)]
    no_token = router.node.metrics.malformed["no_token"]
    with trio.move_on_after(5):  # the last garbage line may be read after the last frame's post
        while no_token._value.get() < 20:
            await trio.sleep(0.01)
    assert no_token._value.get() == 20


async def test_garbage_inside_a_frame_costs_only_bytes_up_to_the_next_newline(router: Router) -> None:
    cid, tokens = await router.create_channel()
    good = octet(frame(tokens["app"], "good\n"))
    cut = good[:40] + b"\x00garbage" + good[40:]
    await router.send_tcp(good + cut + good + good)
    lines = await router.wait_history(cid, 4)
    assert len(lines) == 4
    # the damaged frame arrives cut short (its declared length is honoured), its
    # tail is dropped up to the LF, and the frames after it are intact
    assert lines[0].endswith(b"good\n") and b"garbage" in lines[1]
    assert lines[2:] == [lines[0], lines[0]]
    assert router.node.metrics.malformed["not_syslog"]._value.get() == 1


async def test_history_is_bounded(router: Router) -> None:
    cid, tokens = await router.create_channel()
    history = router.node.table.get(cid).history  # type: ignore[union-attr]
    first = history.seq + 1
    await router.send_tcp(octet(*(frame(tokens["app"], f"n{i}") for i in range(1600))))
    with trio.fail_after(5):
        while history.seq < first + 1599 or not history.snapshot()[-1].endswith(b"n1599"):
            await trio.sleep(0.01)
    lines = router.node.table.get(cid).history.snapshot()  # type: ignore[union-attr]
    assert len(lines) == 1500 and lines[0].endswith(b"n100") and lines[-1].endswith(b"n1599")


async def test_connection_limit_bounds_open_connections(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from logrouter.node import Node
    from tests.conftest import make_settings

    node = Node(make_settings(tmp_path, max_connections=2), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        port = node.addresses["syslog"][1]
        held = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(3)]
        await eventually(lambda: node.metrics.connections.labels("syslog")._value.get() == 2)
        assert node.metrics.connections_total.labels("syslog")._value.get() == 2  # not the third
        await held[0].aclose()
        await eventually(lambda: node.metrics.connections_total.labels("syslog")._value.get() == 3)
        for s in held[1:]:
            await s.aclose()
        node.request_stop()
