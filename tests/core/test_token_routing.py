"""Token routing and cooking, C and Python alike (the speed-ups' twins are also compared on
generated input in tests/protocol/test_speedups.py)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from logrouter.core.token_routing import Routing, _route_frames_py, route_by_token, route_to
from logrouter.protocol.framing import FrameSplitter


def frame(app: str, msg: str = "hello", procid: str = "web.1") -> bytes:
    return f"<190>1 2026-11-27T10:00:00+00:00 host {app} {procid} - - {msg}".encode()


def test_frames_go_to_their_token_s_channel_cooked_and_in_order() -> None:
    tokens = {b"t.a": ("A", b"app"), b"t.b": ("B", b"heroku")}
    frames = [frame("t.a", "1"), frame("t.b", "2"), frame("t.a", "3"), frame("t.zz"),
              frame("myapp"), b"not syslog"]
    result = route_by_token(frames, tokens)
    assert result.groups == {"A": [frame("app", "1"), frame("app", "3")], "B": [frame("heroku", "2")]}
    assert (result.not_syslog, result.no_token, result.unknown_token) == (1, 1, 1)
    assert result.routed == 3
    groups: dict[str, list[bytes]] = {}
    assert _route_frames_py(frames, tokens, groups) == (1, 1, 1) and groups == result.groups


def test_frames_posted_with_a_token_are_cooked_only_where_they_carry_it() -> None:
    assert route_to([frame("t.a", "x"), frame("other", "y")], b"t.a", b"app") == \
        [frame("app", "x"), frame("other", "y")]


@pytest.mark.parametrize("read", [37, 1 << 20])
@pytest.mark.parametrize("native", [True, False], ids=["dict", "mapping (pure Python)"])
def test_a_read_routed_as_it_is_split_keeps_each_channel_s_order(native: bool, read: int) -> None:
    """Octet-counted and newline-framed frames mixed in one stream and cut across reads:
    routed straight from the reads (``feed_to``), each channel gets them in stream order."""
    known = {b"t.a": ("A", b"app"), b"t.b": ("B", b"heroku")}
    tokens = known if native else MappingProxyType(known)

    def octets(line: bytes) -> bytes:
        return b"%d %s" % (len(line), line)

    stream = b"".join([octets(frame("t.a", "1")), frame("t.a", "2") + b"\n", octets(frame("t.b", "3")),
                       octets(frame("t.a", "4")), b"\r\n", frame("t.zz", "5") + b"\n",
                       b"garbage\n", octets(frame("t.a", "6"))])
    routing: Routing[str] = Routing(tokens)
    splitter = FrameSplitter()
    for at in range(0, len(stream), read):
        splitter.feed_to(stream[at:at + read], routing.octets, routing.frames)
    assert routing.groups == {"A": [frame("app", n) for n in "1246"], "B": [frame("heroku", "3")]}
    assert (routing.routed, routing.not_syslog, routing.unknown_token) == (5, 1, 1)
    assert splitter.pending == 0
