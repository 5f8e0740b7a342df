"""Fuzz targets: each takes arbitrary bytes and checks what must hold for any input.

Run by :mod:`tests.fuzz.__main__` under atheris (coverage-guided, bounded time; longer on
demand), and replayed from ``corpus/`` by the ordinary test suite. Every C speed-up is
checked against its pure-Python twin; every parser must answer garbage with its documented
error, never another exception.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import Callable

from logrouter.core.token_routing import Routing, _route_frames_py, _route_to_py, route_by_token
from logrouter.errors import PeerError
from logrouter.protocol import chunkfmt, drainfmt, framing, spoolfmt, tailfmt
from logrouter.protocol.http1 import RequestParser
from logrouter.protocol.logplex1 import decode_body, parse_ingest
from logrouter.protocol.speedups import native
from logrouter.protocol.syslog import parse_line

__all__ = ["TARGETS"]

_TOKENS = {b"t.a": ("A", b"app"), b"t.b": ("B", b"heroku")}
_CACHE = native.RouteCache() if native is not None else None  # kept across inputs, as in a node


def _cuts(data: bytes) -> list[bytes]:
    """Split ``data`` into up to four reads at points its first bytes choose."""
    if len(data) < 4:
        return [data]
    points = sorted({b % (len(data) - 3) + 3 for b in data[:3]})
    out, last = [], 3
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


def _split_all(reads: list[bytes], python: bool) -> tuple[list[bytes], dict[str, int]]:
    saved = framing.split_octets
    if python:
        framing.split_octets = framing._split_octets_py
    try:
        splitter = framing.FrameSplitter(max_frame_bytes=64)
        frames: list[bytes] = []
        for chunk in reads:
            frames += splitter.feed(chunk)
        return frames, dict(splitter.take_drops())
    finally:
        framing.split_octets = saved


def framing_target(data: bytes) -> None:
    """The frame splitter: the C fast path and the Python one agree on any stream and any
    read boundaries; frames never exceed the limit; routing the reads as they are split
    (``feed_to``, as a syslog connection does) routes exactly those frames."""
    reads = _cuts(data.replace(b"TOK", b"t.a"))
    frames, drops = _split_all(reads, python=False)
    assert all(len(f) <= 64 for f in frames)
    if native is not None:
        assert (frames, drops) == _split_all(reads, python=True)
    splitter = framing.FrameSplitter(max_frame_bytes=64)
    routing: Routing[str] = Routing(_TOKENS, None, _CACHE)  # the cache kept across inputs
    for chunk in reads:
        splitter.feed_to(chunk, routing.octets, routing.frames)
    expected = route_by_token(frames, _TOKENS)
    assert routing.groups == expected.groups and list(routing.groups) == list(expected.groups)
    assert (routing.routed, routing.not_syslog, routing.no_token, routing.unknown_token) == (
        expected.routed, expected.not_syslog, expected.no_token, expected.unknown_token)
    assert splitter.take_drops() == drops


def lines_target(data: bytes) -> None:
    """RFC 5424 fields, routing, every renderer and history chunk packing: the Python parser
    never raises; the C routers, renderers and packer give exactly what their Python twins
    give."""
    lines = data.split(b"\n")[:64]
    for line in lines:
        parse_line(line)
    frames = [line.replace(b"TOK", b"t.a", 1) for line in lines]
    groups_py: dict[str, list[bytes]] = {}
    counts_py = _route_frames_py(frames, _TOKENS, groups_py)
    routed_py = _route_to_py(frames, b"t.a", b"app")
    syslog_py = drainfmt._render_syslog_py(lines, b"d.tok", drainfmt._syslog_frame)  # type: ignore[arg-type]
    http_py = drainfmt._render_http_py(lines, drainfmt._http_frame)
    for sse in (False, True):
        tailfmt._render_lines_py(lines, tailfmt.TailFilter(), sse, 1 if sse else None, False)
    if native is None:
        return
    groups_c: dict[str, list[bytes]] = {}
    assert native.route_frames(frames, _TOKENS, groups_c) == counts_py and groups_c == groups_py
    groups_c = {}
    assert native.route_frames(frames, _TOKENS, groups_c, _CACHE) == counts_py
    assert groups_c == groups_py
    out, peer = socket.socketpair()
    try:
        sent = native.render_send_syslog([out.fileno()], [b"d.tok"], [b""], [lines])[0]
        if sent is not None:  # else a line is one the C renderer leaves to Python
            assert sent == (len(syslog_py[0]), None)
            got = b""
            while len(got) < sent[0]:
                got += peer.recv(1 << 20)
            assert got == syslog_py[0]
    finally:
        out.close()
        peer.close()
    assert native.route_to(frames, b"t.a", b"app") == routed_py
    chunk_lines = 1 + (data[0] % 16 if data else 0)
    assert native.pack_chunks([lines, frames[:3]], chunk_lines) == \
        chunkfmt._pack_chunks_py([lines, frames[:3]], chunk_lines)
    assert drainfmt.render_syslog(lines, b"d.tok") == syslog_py
    assert drainfmt.render_http(lines) == http_py
    for sse in (False, True):
        first = 1 if sse else None
        assert tailfmt.render_lines(lines, tailfmt.TailFilter(), sse, first) == \
            tailfmt._render_lines_py(lines, tailfmt.TailFilter(), sse, first, False)
        filt = tailfmt.TailFilter(b"web", b"app")
        assert tailfmt.render_lines(lines, filt, sse, first) == \
            tailfmt._render_lines_py(lines, filt, sse, first, False)


def http1_target(data: bytes) -> None:
    """The HTTP/1.1 request parser: any bytes in any reads give requests or a PeerError kept
    on the parser (never another exception); no request exceeds the limits."""
    parser = RequestParser(max_header_bytes=1024, max_body_bytes=2048,
                           inspect=lambda r: "no" if r.path == "/reject" else None)
    for chunk in _cuts(data):
        for request in parser.feed(chunk):
            assert len(request.body) <= 2048
        if parser.stopped:
            assert parser.feed(b"GET / HTTP/1.1\r\n\r\n") == []
            break


def logplex1_target(data: bytes) -> None:
    """``POST /logs`` bodies, plain and gzipped: frames or a PeerError, nothing else."""
    for encoding, body in (("", data), ("gzip", gzip.compress(data)), ("gzip", data)):
        try:
            decoded = decode_body(body, encoding, 1 << 16)
            parse_ingest("application/logplex-1", str(len(data) % 7), decoded, 128)
        except PeerError:
            pass


def spool_target(data: bytes) -> None:
    """Spool segments: any bytes decode to records plus damage reports that cover the file
    exactly; records re-encode to what they were read from."""
    records, damage = spoolfmt.decode_records(data)
    for r in records:
        again, _ = spoolfmt.decode_records(spoolfmt.encode_record(r.first, r.lines))
        assert again == [r]
    covered = sum(d.end - d.start for d in damage)
    assert covered <= len(data)
    try:
        spoolfmt.decode_ledger(data)
    except ValueError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "framing": framing_target, "lines": lines_target, "http1": http1_target,
    "logplex1": logplex1_target, "spool": spool_target,
}
