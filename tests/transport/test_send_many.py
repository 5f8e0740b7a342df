"""send_many: one non-blocking send per socket; the C version and its pure-Python twin agree."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

import pytest

from logrouter.protocol.speedups import native
from logrouter.transport.send_many import _send_many_py

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
