"""Token routing and cooking, C and Python alike (the speed-ups' twins are also compared on
generated input in tests/protocol/test_speedups.py)."""

from __future__ import annotations

from logrouter.core.token_routing import _route_frames_py, route_by_token, route_to


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
