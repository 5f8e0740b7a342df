"""Drain renderings and retry timing (pure)."""

from __future__ import annotations

from drains.backoff import reconnect_delay
from logrouter.protocol.drainfmt import http_body, http_l10, syslog_frames, syslog_l10

LINE = b'<190>1 2026-11-26T10:00:00.000001+00:00 host app web.1 - [a@1 b="c d"] hi there'


def test_syslog_frame_counts_the_added_newline() -> None:
    frames, skipped = syslog_frames([LINE, b"not syslog"], b"d.tok")
    body = b"<190>1 2026-11-26T10:00:00.000001+00:00 d.tok app web.1 - - hi there\n"
    assert frames == [b"%d %s" % (len(body), body)] and skipped == 1


def test_http_frame_has_no_sd_and_no_nilvalue() -> None:
    frames, _ = http_body([LINE])
    body = b"<190>1 2026-11-26T10:00:00.000001+00:00 host app web.1 - hi there"
    assert frames == [b"%d %s" % (len(body), body)]


def test_l10_lines_end_with_newline_and_count_it() -> None:
    for framed in (http_l10(3, 0, now=0), syslog_l10(b"d.t", 3, 0, now=0)):
        n, _, line = framed.partition(b" ")
        assert int(n) == len(line) and line.endswith(b"since 1970-01-01T00:00:00+00:00.\n")
    assert http_l10(3, 0, now=0).split(b" ", 1)[1] == (
        b"<172>1 1970-01-01T00:00:00+00:00 host heroku logplex - Error L10 (output buffer overflow): "
        b"3 messages dropped since 1970-01-01T00:00:00+00:00.\n")


def test_backoff_doubles_and_is_capped_without_overshoot() -> None:
    delays = [reconnect_delay(f, 1.0, 300.0, rand=lambda: 1.0) for f in range(1, 13)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == 300.0 and delays[9] == 300.0
    assert reconnect_delay(0, 1.0, 300.0) == 0.0
    assert 0.9 <= reconnect_delay(1, 1.0, 300.0, rand=lambda: 0.0) <= 1.0
