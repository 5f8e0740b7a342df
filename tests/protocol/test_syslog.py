"""RFC 5424 field parsing, cooking and L-line texts."""

from __future__ import annotations

from logrouter.core.token_routing import route_to
from logrouter.protocol.syslog import format_time, l10_text, l11_text, l14_text, parse_line


def test_parse_line_with_nil_sd() -> None:
    line = parse_line(b"<190>1 2026-11-26T10:00:00.123456+00:00 host app web.1 - - hello world\n")
    assert line is not None
    assert (line.pri, line.time, line.host, line.app, line.procid, line.msg) == (
        b"190", b"2026-11-26T10:00:00.123456+00:00", b"host", b"app", b"web.1", b"hello world\n")


def test_parse_line_with_structured_data_containing_spaces_and_escapes() -> None:
    raw = (b'<13>1 2026-11-26T10:00:00Z h app 123 - [timeQuality tzKnown="1" isSynced="0"]'
           b'[x@1 a="b \\] c"] the msg')
    line = parse_line(raw)
    assert line is not None and line.msg == b"the msg" and line.procid == b"123"


def test_parse_line_without_msg() -> None:
    line = parse_line(b"<13>1 T h app p - -")
    assert line is not None and line.msg == b""


def test_parse_line_rejects_non_5424() -> None:
    assert parse_line(b"hello") is None
    assert parse_line(b"<13>Nov 26 10:00:00 host tag: msg") is None
    assert parse_line(b"<13>1 T h app p - bad-sd msg") is None
    assert parse_line(b"<x>1 T h app p - - msg") is None


def test_token_and_cook() -> None:
    f = b"<190>1 T host t.abc web.1 - - t.abc appears in msg too"
    assert route_to([f], b"t.abc", b"app") == [b"<190>1 T host app web.1 - - t.abc appears in msg too"]
    assert route_to([f], b"t.other", b"app") == [f]


def test_l_lines() -> None:
    assert format_time(0) == b"1970-01-01T00:00:00+00:00"
    assert l10_text(5, 0) == (b"Error L10 (output buffer overflow): 5 messages dropped since "
                              b"1970-01-01T00:00:00+00:00.")
    assert l11_text(1101, 0) == (b"Error L11 (Tail buffer overflow) -> This tail session dropped "
                                 b"1101 messages since 1970-01-01T00:00:00+00:00.")
    assert l14_text("bad certificate", "syslog+tls://h:6514/") == (
        b'Error L14 (certificate validation): error="bad certificate" uri="syslog+tls://h:6514/"')


def test_l11_and_l14_lines() -> None:
    from logrouter.protocol.syslog import l11_line, l14_line

    assert l11_line(3, 0.0, now=0.0) == (
        b"1970-01-01T00:00:00+00:00 logplex[1]: Error L11 (Tail buffer overflow) -> "
        b"This tail session dropped 3 messages since 1970-01-01T00:00:00+00:00.\n")
    line = l14_line(b"d.tok", 'bad "cert"', "syslog+tls://h:6514/", now=0.0)
    assert line.startswith(b"<188>1 1970-01-01T00:00:00+00:00 d.tok heroku logplex - - ")
    assert line.endswith(b"error=\"bad 'cert'\" uri=\"syslog+tls://h:6514/\"")
