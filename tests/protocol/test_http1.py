"""HTTP/1.1 request assembly and its limits."""

from __future__ import annotations

import pytest

from logrouter.errors import PeerError
from logrouter.protocol.http1 import RequestParser, chunk, simple_response


def test_pipelined_requests_and_raw_path() -> None:
    p = RequestParser()
    reqs = p.feed(b"POST /logs HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                  b"DELETE /apps/a/log-drains/syslog%2Btls%3A%2F%2Fh HTTP/1.1\r\n\r\n")
    assert [(r.method, r.path, r.body) for r in reqs] == [
        ("POST", "/logs", b"abc"), ("DELETE", "/apps/a/log-drains/syslog%2Btls%3A%2F%2Fh", b"")]


def test_request_split_byte_by_byte() -> None:
    raw = b"GET /x?num=5 HTTP/1.1\r\nHost: a\r\n\r\n"
    p = RequestParser()
    out = []
    for i in range(len(raw)):
        out += p.feed(raw[i:i + 1])
    assert len(out) == 1 and out[0].query == "num=5" and out[0].headers["host"] == "a"


def test_chunked_body_is_decoded() -> None:
    p = RequestParser()
    (r,) = p.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert r.body == b"abcde"


@pytest.mark.parametrize("raw,status", [
    (b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + b"x" * 64 + b"\r\n", 413),
    (b"GET / HTTP/1.1\r\nX: " + b"y" * 20000 + b"\r\n\r\n", 431),
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
])
def test_limits_and_garbage(raw: bytes, status: int) -> None:
    p = RequestParser(max_body_bytes=10)
    with pytest.raises(PeerError) as e:
        p.feed(raw)
    assert e.value.status == status


def test_response_helpers() -> None:
    assert chunk(b"abc") == b"3\r\nabc\r\n" and chunk(b"") == b"0\r\n\r\n"
    r = simple_response(400, b"Bad", reason="Message count mismatch")
    assert r.startswith(b"HTTP/1.1 400 Message count mismatch\r\n") and r.endswith(b"\r\n\r\nBad")
