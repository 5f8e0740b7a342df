"""Routing: frames → token → channel, cooked, grouped per channel. Synchronous and pure.

Called once per read (TCP: straight from the read's bytes, see
:meth:`Routing.octets`) or per request (HTTP) with all the frames it completed;
appends to one list per channel, so the caller posts each channel once and
counts once — no per-message await, metric call or log line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from logrouter.protocol.framing import split_octets
from logrouter.protocol.speedups import native

__all__ = ["Routing", "route_by_token", "route_cache", "route_to"]

C = TypeVar("C")


def _route_frames_py(frames: list[bytes], tokens: Mapping[bytes, tuple[C, bytes]],
                     groups: dict[C, list[bytes]], cache: object = None) -> tuple[int, int, int]:
    """Append each routable frame, cooked, to ``groups[channel]``; return the counts of frames
    dropped as (not syslog, no token, unknown token). See :func:`route_by_token`. (``cache``
    is the C twin's token table: no use here.)"""
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


def _split_route_py(buf: bytes, pos: int, max_frame: int, tokens: Mapping[bytes, tuple[C, bytes]],
                    groups: dict[C, list[bytes]], cache: object = None,
                    ) -> tuple[int, int, int, int, int]:
    """:func:`~logrouter.protocol.framing.split_octets` and :func:`_route_frames_py` in one
    call: route the well-formed octet-counted frames of ``buf[pos:]``. Returns the position
    ``split_octets`` returns, then the counts of frames routed, not syslog, with no token and
    with an unknown token."""
    frames: list[bytes] = []
    pos = split_octets(buf, pos, max_frame, frames)
    not_syslog, no_token, unknown_token = _route_frames_py(frames, tokens, groups)
    routed = len(frames) - not_syslog - no_token - unknown_token
    return pos, routed, not_syslog, no_token, unknown_token


_route_frames: Callable[[list[bytes], Any, Any, Any], tuple[int, int, int]] = (
    native.route_frames if native is not None else _route_frames_py)
_split_route: Callable[[bytes, int, int, Any, Any, Any], tuple[int, int, int, int, int]] = (
    native.split_route if native is not None else _split_route_py)
_route_to: Callable[[list[bytes], bytes, bytes], list[bytes]] = (
    native.route_to if native is not None else _route_to_py)


def route_cache() -> Any:
    """A token cache for :class:`Routing` (the C module's ``RouteCache``), or None without
    the C module: the C loops then look each token up in ``tokens`` once while the cache
    keeps it, instead of once per read, and a channel's list in ``groups`` once while the
    same groups dict is passed (a round). Its owner must ``clear()`` it whenever the tokens
    mapping changes. It holds the last groups dict it was given until it is given another
    (or cleared): at most one round's lists."""
    return native.RouteCache() if native is not None else None


class Routing(Generic[C]):
    """One routing pass: frames → token → channel, cooked, appended to ``groups`` (one list
    per channel, lines routed earlier staying first), and the counts of what was dropped.

    Frames come as lists (:meth:`frames`) or straight from the bytes of a read
    (:meth:`octets`, the taker of ``FrameSplitter.feed_to``: no bytes object per frame).
    ``cache`` (see :func:`route_cache`) keeps what the lookups found across passes; it must
    have been cleared since ``tokens`` last changed, and a ``groups`` dict passed again with
    it may only have gained keys meanwhile (its lists are reused; a dict that shrank is
    noticed, a list replaced under a key is not).
    """

    __slots__ = ("_cache", "_native", "groups", "no_token", "not_syslog", "routed", "tokens",
                 "unknown_token")

    def __init__(self, tokens: Mapping[bytes, tuple[C, bytes]],
                 groups: dict[C, list[bytes]] | None = None, cache: Any = None) -> None:
        self.tokens = tokens
        self.groups: dict[C, list[bytes]] = {} if groups is None else groups
        self._native = type(tokens) is dict  # the C loops take a dict only
        self._cache = cache
        self.routed = 0  # frames appended to groups
        self.no_token = 0  # APP-NAME is not a t. token
        self.not_syslog = 0  # fewer than five fields: no APP-NAME at all
        self.unknown_token = 0

    def frames(self, frames: list[bytes]) -> None:
        """Route ``frames`` by the token in each APP-NAME (Logplex §2.1)."""
        route = _route_frames if self._native else _route_frames_py
        not_syslog, no_token, unknown_token = route(frames, self.tokens, self.groups, self._cache)
        self._count(len(frames) - not_syslog - no_token - unknown_token, not_syslog, no_token,
                    unknown_token)

    def octets(self, buf: bytes, pos: int, max_frame: int) -> int:
        """Route the well-formed octet-counted frames of ``buf[pos:]``; returns what
        ``split_octets`` returns for them (where they end)."""
        route = _split_route if self._native else _split_route_py
        pos, *counts = route(buf, pos, max_frame, self.tokens, self.groups, self._cache)
        self._count(*counts)
        return pos

    def _count(self, routed: int, not_syslog: int, no_token: int, unknown_token: int) -> None:
        self.routed += routed
        self.not_syslog += not_syslog
        self.no_token += no_token
        self.unknown_token += unknown_token

    @property
    def dropped(self) -> int:
        """Frames not routed."""
        return self.not_syslog + self.no_token + self.unknown_token


def route_by_token(frames: list[bytes], tokens: Mapping[bytes, tuple[C, bytes]],
                   groups: dict[C, list[bytes]] | None = None, cache: Any = None) -> Routing[C]:
    """Route each frame by the token in its APP-NAME field (Logplex §2.1).

    ``tokens`` maps ``t.…`` to ``(channel, token name)``; the token is replaced
    by its name ("cooking"). Frames keep their order within each channel. The lines are
    appended to ``groups`` when given (it becomes the result's ``groups``: lines routed
    earlier stay first). ``cache``: see :class:`Routing`.
    """
    routing = Routing(tokens, groups, cache)
    routing.frames(frames)
    return routing


def route_to(frames: list[bytes], token: bytes, name: bytes) -> list[bytes]:
    """Cook frames posted with one token's auth: APP-NAME equal to the token becomes its name.

    Frames carrying anything else in APP-NAME are kept as sent (they still
    belong to the token's channel, as in Logplex).
    """
    return _route_to(frames, token, name)
