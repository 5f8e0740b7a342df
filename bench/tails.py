"""Benchmark tail clients: ``--count`` SSE tails of one channel, counted in one process.

Opens a tail session per client (``POST /v3/sessions`` with ``tail``), connects them
all, prints ``{"ready": N}`` once every stream answered, then reads with epoll and
counts the ``data:`` lines each tail got. Prints one JSON line when every tail got
``--lines`` lines or, once lines flow, nothing arrived for ``--idle`` seconds (the first line
may take up to ``--first-wait`` seconds: the load generator prepares its frames first):
``{"min": ..., "max": ..., "total": ..., "first": t, "last": t}``.

    python bench/tails.py --api-port P --key K --channel C --count 1000 --lines 1000000
"""

from __future__ import annotations

import argparse
import http.client
import json
import select
import socket
import time

PATTERN = b"\ndata: "  # every event starts a line (chunk sizes end with CRLF)


def open_tails(port: int, key: str, channel: str, count: int
               ) -> tuple[list[socket.socket], list[bytes]]:
    """The connected tails, and what each sent after its response head."""
    api = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    socks = []
    for _ in range(count):
        api.request("POST", "/v3/sessions",
                    body=json.dumps({"channel_id": channel, "num": "0", "tail": True}),
                    headers={"Authorization": f"Bearer {key}"})
        resp = api.getresponse()
        url = json.loads(resp.read())["url"]
        path = url[url.index("/sessions/"):]
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
        socks.append(sock)
    extra = []
    for sock in socks:  # every stream answered: the tail is attached
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise SystemExit(f"tail refused: {head[:100]!r}")
        extra.append(head[head.index(b"\r\n\r\n") + 2:])
        sock.setblocking(False)
    return socks, extra


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--api-port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--channel", required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--lines", type=int, required=True)
    p.add_argument("--idle", type=float, default=2.0)
    p.add_argument("--first-wait", type=float, default=120.0)
    args = p.parse_args()
    socks, extra = open_tails(args.api_port, args.key, args.channel, args.count)
    print(json.dumps({"ready": len(socks)}), flush=True)
    poll = select.epoll()
    counts: dict[int, int] = {}
    carry: dict[int, bytes] = {}  # the last bytes of each stream: a pattern may straddle reads
    by_fd: dict[int, socket.socket] = {}
    for sock, seen in zip(socks, extra, strict=True):
        poll.register(sock.fileno(), select.EPOLLIN)
        counts[sock.fileno()] = seen.count(PATTERN)
        carry[sock.fileno()] = seen[-6:]
        by_fd[sock.fileno()] = sock
    done = 0
    first = last = 0.0
    while done < len(socks):
        events = poll.poll(args.idle if first else args.first_wait)
        if not events:
            break
        now = time.time()
        first = first or now
        for fd, _ in events:
            data = by_fd[fd].recv(1 << 20)
            if not data:
                poll.unregister(fd)
                done += 1
                continue
            before = counts[fd]
            counts[fd] = before + (carry[fd] + data).count(PATTERN)
            carry[fd] = (carry[fd] + data)[-6:]
            if before < args.lines <= counts[fd]:
                done += 1
            last = now
    values = list(counts.values())
    print(json.dumps({"min": min(values), "max": max(values), "total": sum(values),
                      "first": first, "last": last}), flush=True)


if __name__ == "__main__":
    main()
