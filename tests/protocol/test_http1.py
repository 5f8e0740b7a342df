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
    assert p.feed(raw) == []
    assert isinstance(p.error, PeerError) and p.error.status == status and p.stopped
    assert p.feed(b"GET / HTTP/1.1\r\n\r\n") == []  # nothing more is parsed


def test_unfinished_header_counts_against_the_limit() -> None:
    """httptools holds an unfinished header without calling back: the bytes count anyway."""
    p = RequestParser(max_header_bytes=1000)
    assert p.feed(b"GET / HTTP/1.1\r\nX: ") == []
    for _ in range(20):
        p.feed(b"a" * 100)
        if p.error is not None:
            break
    assert p.error is not None and p.error.status == 431


def test_requests_before_an_error_are_returned() -> None:
    p = RequestParser()
    reqs = p.feed(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nBROKEN\x00\r\n\r\n")
    assert [r.path for r in reqs] == ["/a", "/b"]
    assert p.error is not None and p.error.status == 400


def test_inspect_rejects_before_the_body() -> None:
    seen = []

    def inspect(req: object) -> object:
        seen.append(req)
        return "nope" if getattr(req, "path", "") == "/secret" else None

    p = RequestParser(inspect=inspect)
    reqs = p.feed(b"POST /ok HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
                  b"POST /secret HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n" + b"z" * 1000)
    assert [r.body for r in reqs] == [b"hi"]
    assert p.rejected is not None
    request, verdict = p.rejected
    assert request.path == "/secret" and request.body == b"" and verdict == "nope"
    assert len(seen) == 2 and p.stopped


def test_state_tracks_head_and_body() -> None:
    p = RequestParser()
    assert p.state == "idle"
    p.feed(b"POST / HTTP/1.1\r\nContent-")
    assert p.state == "head"
    p.feed(b"Length: 4\r\n\r\nab")
    assert p.state == "body"
    assert len(p.feed(b"cd")) == 1 and p.state == "idle" and p.begun == 1


def test_response_helpers() -> None:
    assert chunk(b"abc") == b"3\r\nabc\r\n" and chunk(b"") == b"0\r\n\r\n"
    r = simple_response(400, b"Bad", reason="Message count mismatch")
    assert r.startswith(b"HTTP/1.1 400 Message count mismatch\r\n") and r.endswith(b"\r\n\r\nBad")
