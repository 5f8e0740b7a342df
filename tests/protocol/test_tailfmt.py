"""Session renderings: Logplex text lines and SSE events."""

from __future__ import annotations

from logrouter.protocol.syslog import parse_line
from logrouter.protocol.tailfmt import TailFilter, render_lines, render_text, sse_event, sse_preamble

L1 = b"<190>1 2026-11-26T10:00:00.000001+00:00 host app web.1 - - hello\n"
L2 = b"<158>1 2026-11-26T10:00:00.000002+00:00 host heroku router - - at=info status=200"
L3 = b"<190>1 2026-11-26T10:00:00.000003+00:00 host app web.12 - - twelve"
L4 = b"<190>1 2026-11-26T10:00:00.000004+00:00 host app webx.1 - - not web"


def test_render_text_adds_newline_only_when_missing() -> None:
    a, b = parse_line(L1), parse_line(L2)
    assert a is not None and b is not None
    assert render_text(a) == b"2026-11-26T10:00:00.000001+00:00 app[web.1]: hello\n"
    assert render_text(b) == b"2026-11-26T10:00:00.000002+00:00 heroku[router]: at=info status=200\n"


def test_filters_ps_prefix_and_source() -> None:
    ps = TailFilter(ps=b"web")
    assert render_lines([L1, L2, L3, L4], ps, sse=False).count(b"\n") == 2
    assert b"webx" not in render_lines([L1, L2, L3, L4], ps, sse=False)
    src = TailFilter(source=b"heroku")
    assert render_lines([L1, L2, L3], src, sse=False).startswith(b"2026-11-26T10:00:00.000002")
    exact = TailFilter(ps=b"web.1")
    assert render_lines([L1, L3], exact, sse=False).count(b"\n") == 1


def test_sse_event_strips_cr_and_splits_lf() -> None:
    assert sse_event(b"a\r\n") == b"data: a\n\n"
    assert sse_event(b"one\rtwo\nthree\r\n", 7) == b"data: one\ndata: two\ndata: three\nid: 7\n\n"
    assert sse_preamble(100) == b"retry: 100\n\n"


def test_render_lines_sse_ids_follow_sequence_numbers() -> None:
    out = render_lines([L1, b"garbage", L3], TailFilter(), sse=True, first_id=10)
    assert b"id: 10\n" in out and b"id: 12\n" in out and b"id: 11\n" not in out


def test_content_ids_depend_only_on_the_line() -> None:
    from logrouter.protocol.tailfmt import TailFilter, line_id, render_lines

    a = b"<190>1 2026-11-26T10:00:00.000001+00:00 host app web.1 - - one"
    b = b"<190>1 2026-11-26T10:00:00.000002+00:00 host app web.1 - - one"
    out = render_lines([a, b, a], TailFilter(), True, first_id=7, content_ids=True)
    ids = [line.split(b": ")[1] for line in out.split(b"\n") if line.startswith(b"id: ")]
    assert ids == [line_id(a), line_id(b), line_id(a)]
    assert ids[0] != ids[1] and len(ids[0]) == 17 and ids[0].startswith(b"c")
    int(ids[0][1:], 16)
