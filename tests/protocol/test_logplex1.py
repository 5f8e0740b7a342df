"""HTTP ingest body validation: auth parsing, gzip, count check, framing."""

from __future__ import annotations

import base64
import gzip

import pytest

from logrouter.errors import PeerError
from logrouter.protocol.logplex1 import decode_body, parse_auth, parse_ingest

F = b"<190>1 T host t.x web.1 - - hi\n"
BODY = b"%d %s" % (len(F), F)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_parse_auth_variants() -> None:
    a = parse_auth("Basic " + b64("token:t.abc"))
    assert a is not None and (a.kind, a.secret) == ("token", "t.abc")
    b = parse_auth("Bearer t.abc")
    assert b is not None and (b.kind, b.secret) == ("token", "t.abc")
    c = parse_auth("Basic " + b64("user:pass"))
    assert c is not None and c.kind == "credential"
    assert parse_auth("") is None
    assert parse_auth("Basic !!!notbase64") is None
    assert parse_auth("Basic " + b64("nocolon")) is None


def test_gzip_and_bombs() -> None:
    assert decode_body(gzip.compress(BODY), "gzip", 1000) == BODY
    with pytest.raises(PeerError) as e:
        decode_body(b"not gzip", "gzip", 1000)
    assert (e.value.status, e.value.text) == (400, "Bad request")
    with pytest.raises(PeerError) as e:
        decode_body(gzip.compress(b"a" * 100_000), "gzip", 1000)
    assert e.value.status == 413


def test_parse_ingest_statuses() -> None:
    assert parse_ingest("application/logplex-1", "1", BODY, 10240) == [F]
    assert parse_ingest("application/x-logplex-1", None, BODY * 3, 10240) == [F, F, F]
    cases = [
        ("text/plain", None, BODY, 415, "Unsupported Media Type"),
        ("application/logplex-1", "2", BODY, 400, "Message count mismatch"),
        ("application/logplex-1", "x", BODY, 400, "Message count mismatch"),
        ("application/logplex-1", None, F, 400, "Malformed log messages"),
        ("application/logplex-1", None, BODY[:-2], 400, "Malformed log messages"),
    ]
    for ctype, count, body, status, text in cases:
        with pytest.raises(PeerError) as e:
            parse_ingest(ctype, count, body, 10240)
        assert (e.value.status, e.value.text) == (status, text)


def test_drain_request_bytes() -> None:
    from logrouter.protocol.logplex1 import drain_request, drain_request_head

    head = drain_request_head("https://us%3Aer:p%40ss@h.example:8443/logs?x=1", "h.example",
                              "d.tok", "logrouter/1")
    assert head.split(b"\r\n")[:2] == [b"POST /logs?x=1 HTTP/1.1", b"Host: h.example:8443"]
    assert b"Authorization: Basic " + base64.b64encode(b"us:er:p@ss") in head
    assert drain_request_head("http://[::1]/", "::1", "d", "ua").split(b"\r\n")[1] == b"Host: [::1]"
    req = drain_request(head, b"5 hello", 1, "ABC")
    assert req.endswith(b"Logplex-Msg-Count: 1\r\nLogplex-Frame-Id: ABC\r\n"
                        b"Content-Length: 7\r\n\r\n5 hello")


def test_channel_log_frames() -> None:
    from logrouter.protocol.logplex1 import channel_log_frames

    frames = channel_log_frames([b"<190>1 2026-11-26T10:00:00Z h app web.1 - - hi", b"junk"])
    assert frames == [b"48 <190>1 2026-11-26T10:00:00Z host app web.1 - hi\n"]
