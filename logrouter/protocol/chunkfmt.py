"""History chunks: a channel's older lines kept compressed (see ``core.history``).

A chunk is a zstd frame of a msgpack array of bin, one per line, oldest first. This
module packs and unpacks that format; which lines go into which chunk, and when, is the
history's business.

:func:`pack_chunks` is the step that reads every line: with the C module it reads and
copies them with the GIL released, so compressing a busy node's history (a worker thread)
no longer holds the event loop up for the time it takes to touch each of its scattered
line objects (bench/RESULTS.md). :func:`_pack_chunks_py` is its twin and defines it.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import zstandard

from logrouter.protocol.speedups import native

__all__ = ["looks_like_chunk", "make_chunks", "pack_chunks", "unpack_chunk", "unpack_chunks"]

#: zstd level of a chunk: 4-5x smaller for typical router and app lines, 10x and more for
#: repetitive ones.
LEVEL = 1


def _pack_chunks_py(groups: list[list[bytes]], chunk_lines: int) -> list[bytes]:
    """Each group's lines, in turn, in consecutive slices of ``chunk_lines`` (the last may
    hold fewer; an empty group gives none), each packed as a msgpack array of bin.

    The C version reads the lines without the GIL: the caller keeps ``groups`` and its
    lists alive and unchanged until it returns."""
    if chunk_lines < 1:
        raise ValueError("chunk_lines must be at least 1")
    out: list[bytes] = []
    for group in groups:
        if not isinstance(group, list):
            raise TypeError("groups must be lists of bytes")
        for i in range(0, len(group), chunk_lines):
            part = group[i:i + chunk_lines]
            if any(type(line) is not bytes for line in part):
                raise TypeError("lines must be bytes (of at most 4 GiB)")
            out.append(msgpack.packb(part, use_bin_type=True))
    return out


pack_chunks: Callable[[list[list[bytes]], int], list[bytes]] = (
    native.pack_chunks if native is not None else _pack_chunks_py)


def make_chunks(groups: list[list[bytes]], chunk_lines: int) -> list[bytes]:
    """The compressed chunks of :func:`pack_chunks`, in its order: both steps release the
    GIL for the whole batch (the caller keeps ``groups`` unchanged until it returns)."""
    bodies: list[bytes | bytearray | memoryview] = list(pack_chunks(groups, chunk_lines))
    if not bodies:
        return []
    frames = zstandard.ZstdCompressor(level=LEVEL).multi_compress_to_buffer(bodies)
    return [frames[i].tobytes() for i in range(len(frames))]


def looks_like_chunk(data: bytes) -> bool:
    """Whether ``data`` begins as a chunk does: a zstd frame that states a content size of
    at least one byte (what :func:`make_chunks` writes). A cheap check of a saved chunk at
    load; reading it can still fail."""
    try:
        return zstandard.frame_content_size(data) > 0
    except zstandard.ZstdError:
        return False


def _unpack_body(body: bytes) -> list[bytes]:
    lines: list[bytes] = msgpack.unpackb(body, raw=True)
    return lines


def unpack_chunk(data: bytes) -> list[bytes]:
    """The lines of one compressed chunk, oldest first."""
    return _unpack_body(zstandard.ZstdDecompressor().decompress(data))


def unpack_chunks(datas: list[bytes]) -> list[list[bytes]]:
    """The lines of each compressed chunk, decompressed in one call without the GIL."""
    if not datas:
        return []
    olds: list[bytes | bytearray | memoryview] = list(datas)
    frames = zstandard.ZstdDecompressor().multi_decompress_to_buffer(olds)
    return [_unpack_body(frames[i].tobytes()) for i in range(len(frames))]
