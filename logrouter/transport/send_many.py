"""One non-blocking send on each of many sockets: a round of the shared syslog writer.

The C version (``logrouter.protocol._speedups.send_many``) releases the GIL for the whole
round, so a worker thread can send while the event loop runs Python; the pure-Python
twin below defines the behaviour (and holds the GIL between sends).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from logrouter.protocol.speedups import native

__all__ = ["send_many"]


def _send_many_py(fds: list[int], datas: list[bytes]) -> list[int]:
    """One non-blocking send of ``datas[i]`` on the socket ``fds[i]`` each: the bytes it
    took (0 when it would block), or ``-errno`` when the send failed. The caller keeps the
    sockets open until it returns."""
    if len(fds) != len(datas):
        raise ValueError("fds and datas differ in length")
    out = []
    flags = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL
    for fd, data in zip(fds, datas, strict=True):
        sock = socket.socket(fileno=fd)
        try:
            out.append(sock.send(data, flags))
        except BlockingIOError:
            out.append(0)
        except OSError as exc:
            out.append(-(exc.errno or 1))
        finally:
            sock.detach()
    return out


#: See the module docstring.
send_many: Callable[[list[int], list[bytes]], list[int]] = (
    native.send_many if native is not None else _send_many_py)
