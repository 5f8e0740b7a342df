"""Client output: colours on a terminal, plain when piped."""

from __future__ import annotations

import pytest

from logrouter.client.commands import format_line

LINE = "2026-11-26T10:00:00.000000+00:00 app[web.1]: hello"


def test_plain_when_not_a_terminal() -> None:
    assert format_line(LINE, colour=False) == LINE


def test_coloured_source_and_dyno_keep_the_text() -> None:
    out = format_line(LINE, colour=True)
    assert "\x1b[" in out and out.endswith(": hello")
    stripped = out.replace("\x1b[2m", "").replace("\x1b[0m", "")
    for code in ("31", "32", "33", "34", "35", "36", "91", "92", "93", "94", "95", "96"):
        stripped = stripped.replace(f"\x1b[{code}m", "")
    assert stripped == LINE
    # the same process type gets the same colour; lines that are not log lines stay as they are
    import re

    colour = re.compile(r"\x1b\[(\d+)mapp\[")
    first = colour.search(out)
    second = colour.search(format_line(LINE.replace("web.1", "web.2"), True))
    assert first and second and first.group(1) == second.group(1) != "0"
    assert format_line("not a log line", True) == "not a log line"


def test_colour_honours_no_color_term_dumb_and_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    import io

    from logrouter.client.commands import use_colour

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(Tty(), argparse.Namespace(no_color=False))
    assert not use_colour(Tty(), argparse.Namespace(no_color=True))
    assert not use_colour(io.StringIO(), argparse.Namespace(no_color=False))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Tty(), argparse.Namespace(no_color=False))
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not use_colour(Tty(), argparse.Namespace(no_color=False))
