"""One non-blocking send on each of many sockets: a round of the shared syslog writer.

The C versions (``logrouter.protocol._speedups.send_many`` and ``render_send_syslog``)
release the GIL for the whole round — ``render_send_syslog`` for the rendering of the
syslog frames too — so a worker thread can render and send while the event loop runs
Python; the pure-Python twins below define the behaviour (and hold the GIL throughout).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from logrouter.protocol.drainfmt import fast_fields, render_syslog
from logrouter.protocol.speedups import native

__all__ = ["render_send_syslog", "send_many"]


def _send_one(fd: int, data: bytes) -> int:
    sock = socket.socket(fileno=fd)
    try:
        return sock.send(data, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
    except BlockingIOError:
        return 0
    except OSError as exc:
        return -(exc.errno or 1)
    finally:
        sock.detach()


def _send_many_py(fds: list[int], datas: list[bytes]) -> list[int]:
    """One non-blocking send of ``datas[i]`` on the socket ``fds[i]`` each: the bytes it
    took (0 when it would block), or ``-errno`` when the send failed. The caller keeps the
    sockets open until it returns."""
    if len(fds) != len(datas):
        raise ValueError("fds and datas differ in length")
    return [_send_one(fd, data) for fd, data in zip(fds, datas, strict=True)]


def _render_send_syslog_py(fds: list[int], tokens: list[bytes], prefixes: list[bytes],
                           batches: list[list[bytes]]) -> list[tuple[int, bytes | None] | None]:
    """For each i, ``prefixes[i]`` and ``render_syslog(batches[i], tokens[i])`` in one
    non-blocking send on the socket ``fds[i]``. Per write: None when a line of the batch is
    not of the C renderer's shape (:func:`~logrouter.protocol.drainfmt.fast_fields`; nothing
    sent: the caller renders it in Python); else ``(sent, rest)``: what the send took (or
    ``-errno``), and the whole rendered write when the socket took only part of it (else
    None). The caller keeps the sockets open and the batches unchanged until it returns."""
    if not len(fds) == len(tokens) == len(prefixes) == len(batches):
        raise ValueError("fds, tokens, prefixes and batches differ in length")
    out: list[tuple[int, bytes | None] | None] = []
    for fd, token, prefix, lines in zip(fds, tokens, prefixes, batches, strict=True):
        if not all(isinstance(line, bytes) and fast_fields(line) is not None for line in lines):
            out.append(None)
            continue
        data = prefix + render_syslog(lines, token)[0]
        sent = _send_one(fd, data)
        out.append((sent, data if 0 <= sent < len(data) else None))
    return out


#: See the module docstring.
send_many: Callable[[list[int], list[bytes]], list[int]] = (
    native.send_many if native is not None else _send_many_py)
render_send_syslog: Callable[[list[int], list[bytes], list[bytes], list[list[bytes]]],
                             list[tuple[int, bytes | None] | None]] = (
    native.render_send_syslog if native is not None else _render_send_syslog_py)
