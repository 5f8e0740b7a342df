"""The history file: every channel's history saved on shutdown (and every
``history_save_interval`` while running) and read back on start.

One msgpack map in ``<data_dir>/history.msgpack``: channel id → what
:meth:`~logrouter.core.history.History.saved` returns (compressed chunks kept as they are),
replaced atomically.
"""

from __future__ import annotations

from typing import BinaryIO

import msgpack

from logrouter.core.history import CHUNK_LINES, Chunk, History, Saved
from logrouter.data_dir import replace_file
from logrouter.protocol.chunkfmt import looks_like_chunk

__all__ = ["Saved", "load_histories", "save_histories", "write_histories"]


def save_histories(path: str, histories: dict[str, History]) -> int:
    """Write every history to ``path`` (msgpack, compressed chunks as they are, replaced
    atomically); return the lines saved.

    Raises:
        OSError: it could not be written (the file saved before stays; nothing is left
            half-written beside it).
    """
    write_histories(path, {cid: h.saved() for cid, h in histories.items() if len(h)})
    return sum(len(h) for h in histories.values())


def write_histories(path: str, saved: dict[str, Saved]) -> None:
    """Write ``saved`` (channel id → :meth:`History.saved`) to ``path`` as :func:`save_histories`
    does, a channel at a time (no copy of the whole file in memory). What ``saved`` holds never
    changes (lines and chunks are bytes), so a worker thread may write it while the histories
    take new lines.

    Raises:
        OSError: as for :func:`save_histories`.
    """
    def write(fh: BinaryIO) -> None:
        packer = msgpack.Packer(use_bin_type=True)
        fh.write(packer.pack_map_header(len(saved)))
        for cid, state in saved.items():
            fh.write(packer.pack(cid))
            fh.write(packer.pack(state))

    replace_file(path, write)


def load_histories(path: str) -> dict[str, Saved]:
    """Read what :func:`save_histories` wrote: channel id → the arguments of
    :meth:`History.restore` after the capacity. Missing file → {}. Files from before
    compression (``[seq, lines]``) are read too.

    Raises:
        ValueError: the file is not a history file.
    """
    try:
        with open(path, "rb") as fh:
            data = msgpack.unpack(fh, raw=False, strict_map_key=False)
    except FileNotFoundError:
        return {}
    except (msgpack.UnpackException, ValueError) as exc:
        raise ValueError(f"{path}: not a history file: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a history file")
    out: dict[str, Saved] = {}
    try:
        for cid, v in data.items():
            raw = [bytes(x) for x in v[1]]
            chunks: list[Chunk] = []
            skip = 0
            if len(v) >= 4:
                for count, body in v[2]:
                    if not looks_like_chunk(body) or not 0 < int(count) <= CHUNK_LINES:
                        raise ValueError("bad chunk")
                    chunks.append((int(count), bytes(body)))
                skip = int(v[3])
                if chunks and not 0 <= skip < chunks[0][0]:
                    raise ValueError("bad skip")
            out[str(cid)] = (int(v[0]), raw, chunks, skip)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{path}: not a history file: {exc}") from None
    return out
