"""send_many and render_send_syslog: one non-blocking send per socket; the C versions and their
pure-Python twins agree."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logrouter.protocol.drainfmt import render_syslog
from logrouter.protocol.speedups import native
from logrouter.transport.send_many import _render_send_syslog_py, _send_many_py
from tests.helpers import needs_native

Sender = Callable[[list[int], list[bytes]], list[int]]
SENDERS: list[Sender] = [_send_many_py] + ([native.send_many] if native is not None else [])


@pytest.mark.parametrize("send_many", SENDERS)
def test_each_socket_gets_its_bytes_and_its_own_result(send_many: Sender) -> None:
    ok_a, ok_b = socket.socketpair()
    full_a, full_b = socket.socketpair()
    dead_a, dead_b = socket.socketpair()
    full_a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = b"x" * (8 << 20)
    dead_b.close()
    try:
        results = send_many([ok_a.fileno(), full_a.fileno(), dead_a.fileno()],
                            [b"hello", big, b"lost"])
        assert results[0] == 5 and ok_b.recv(10) == b"hello"
        assert 0 < results[1] < len(big)  # what the socket took at once: never blocks
        assert send_many([full_a.fileno()], [big]) == [0]  # now full: would block
        assert results[2] == -errno.EPIPE  # the peer is gone: an error, no SIGPIPE
        assert send_many([], []) == []
        with pytest.raises(ValueError):
            send_many([ok_a.fileno()], [])
    finally:
        for s in (ok_a, ok_b, full_a, full_b, dead_a):
            s.close()


Renderer = Callable[[list[int], list[bytes], list[bytes], list[list[bytes]]],
                    list[tuple[int, bytes | None] | None]]
RENDERERS: list[Renderer] = [_render_send_syslog_py] + (
    [native.render_send_syslog] if native is not None else [])

FAST = b"<190>1 2026-11-26T10:00:00.000001+00:00 host app web.1 - - hello %d"
SD = b'<190>1 2026-11-26T10:00:00+00:00 host app web.1 - [x a="1"] with structured data'


def _received(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    got = b""
    try:
        while chunk := sock.recv(1 << 20):
            got += chunk
    except BlockingIOError:
        pass
    return got


@pytest.mark.parametrize("render_send", RENDERERS)
def test_each_write_is_rendered_as_render_syslog_renders_it_and_sent_once(
        render_send: Renderer) -> None:
    """Each socket gets its prefix and its lines' frames (render_syslog's bytes); a batch
    with a line the fast path does not take is left whole to the caller (None, nothing
    sent); a socket that takes part gives back the whole write; a dead one -errno."""
    ok_a, ok_b = socket.socketpair()
    slow_a, slow_b = socket.socketpair()
    full_a, full_b = socket.socketpair()
    dead_a, dead_b = socket.socketpair()
    full_a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    dead_b.close()
    lines = [FAST % i for i in range(50)] + [FAST % 50 + b"\n"]
    big = [FAST % i + b"x" * 4000 for i in range(3000)]
    try:
        results = render_send(
            [ok_a.fileno(), slow_a.fileno(), full_a.fileno(), dead_a.fileno(), ok_a.fileno()],
            [b"d.1", b"d.2", b"d.3", b"d.4", b"d.5"],
            [b"12 L10 prefix", b"", b"", b"", b""],
            [lines, [FAST % 1, SD], big, [FAST % 2], []])
        expected = b"12 L10 prefix" + render_syslog(lines, b"d.1")[0]
        assert results[0] == (len(expected), None) and results[4] == (0, None)
        assert _received(ok_b) == expected
        assert results[1] is None and _received(slow_b) == b""
        whole = render_syslog(big, b"d.3")[0]
        assert results[2] is not None and results[2][1] == whole and 0 < results[2][0] < len(whole)
        assert results[3] == (-errno.EPIPE, None)
        assert render_send([], [], [], []) == []
        with pytest.raises(ValueError):
            render_send([ok_a.fileno()], [], [], [])
    finally:
        for s in (ok_a, ok_b, slow_a, slow_b, full_a, full_b, dead_a):
            s.close()


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from([FAST % 7, FAST % 8 + b"\n", SD, b"<1>1 - h a p m - x",
                                           b"<13>1 2026-11-26T10:00:00Z h app p - - ", b"short",
                                           b"<190>2 t h app web.1 - - v2"]), max_size=6),
                max_size=4))
def test_the_c_renderer_takes_the_lines_its_twin_takes(batches: list[list[bytes]]) -> None:
    """Which writes C renders and sends itself, and the bytes it sends, are the twin's."""
    assert native is not None
    pairs = [socket.socketpair() for _ in batches]
    try:
        got = []
        for render_send in (native.render_send_syslog, _render_send_syslog_py):
            results = render_send([a.fileno() for a, _ in pairs], [b"d.x"] * len(batches),
                                  [b""] * len(batches), batches)
            got.append((results, [_received(b) for _, b in pairs]))
        assert got[0] == got[1]
    finally:
        for a, b in pairs:
            a.close()
            b.close()
