"""Routing: frames → token → channel, cooked, grouped per channel. Synchronous and pure.

Called once per read (TCP) or per request (HTTP) with all the frames it
completed; returns one list per channel, so the caller posts each channel once
and counts once — no per-message await, metric call or log line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from logrouter.protocol.speedups import native

__all__ = ["RouteResult", "route_by_token", "route_to"]

C = TypeVar("C")


class RouteResult(Generic[C]):
    """Per-channel cooked lines plus the counts of what was dropped."""

    __slots__ = ("groups", "no_token", "not_syslog", "routed", "unknown_token")

    def __init__(self) -> None:
        self.groups: dict[C, list[bytes]] = {}
        self.routed = 0  # frames of this call appended to groups
        self.no_token = 0  # APP-NAME is not a t. token
        self.not_syslog = 0  # fewer than five fields: no APP-NAME at all
        self.unknown_token = 0


def _route_frames_py(frames: list[bytes], tokens: Mapping[bytes, tuple[C, bytes]],
                     groups: dict[C, list[bytes]]) -> tuple[int, int, int]:
    """Append each routable frame, cooked, to ``groups[channel]``; return the counts of frames
    dropped as (not syslog, no token, unknown token). See :func:`route_by_token`."""
    not_syslog = no_token = unknown_token = 0
    get = tokens.get
    for frame in frames:
        parts = frame.split(b" ", 4)
        if len(parts) != 5:
            not_syslog += 1
            continue
        entry = get(parts[3])
        if entry is None:
            if parts[3].startswith(b"t."):
                unknown_token += 1
            else:
                no_token += 1
            continue
        channel, parts[3] = entry
        group = groups.get(channel)
        if group is None:
            groups[channel] = group = []
        group.append(b" ".join(parts))
    return not_syslog, no_token, unknown_token


def _route_to_py(frames: list[bytes], token: bytes, name: bytes) -> list[bytes]:
    out = []
    for frame in frames:
        parts = frame.split(b" ", 4)
        if len(parts) == 5 and parts[3] == token:
            parts[3] = name
            out.append(b" ".join(parts))
        else:
            out.append(frame)
    return out


_route_frames: Callable[[list[bytes], Any, Any], tuple[int, int, int]] = (
    native.route_frames if native is not None else _route_frames_py)
_route_to: Callable[[list[bytes], bytes, bytes], list[bytes]] = (
    native.route_to if native is not None else _route_to_py)


def route_by_token(frames: list[bytes], tokens: Mapping[bytes, tuple[C, bytes]],
                   groups: dict[C, list[bytes]] | None = None) -> RouteResult[C]:
    """Route each frame by the token in its APP-NAME field (Logplex §2.1).

    ``tokens`` maps ``t.…`` to ``(channel, token name)``; the token is replaced
    by its name ("cooking"). Frames keep their order within each channel. The lines are
    appended to ``groups`` when given (it becomes the result's ``groups``: lines routed
    earlier stay first).
    """
    result: RouteResult[C] = RouteResult()
    if groups is not None:
        result.groups = groups
    route = _route_frames if type(tokens) is dict else _route_frames_py
    result.not_syslog, result.no_token, result.unknown_token = route(frames, tokens, result.groups)
    result.routed = len(frames) - result.not_syslog - result.no_token - result.unknown_token
    return result


def route_to(frames: list[bytes], token: bytes, name: bytes) -> list[bytes]:
    """Cook frames posted with one token's auth: APP-NAME equal to the token becomes its name.

    Frames carrying anything else in APP-NAME are kept as sent (they still
    belong to the token's channel, as in Logplex).
    """
    return _route_to(frames, token, name)
