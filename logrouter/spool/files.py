"""A drain spool's files: blocking operations, run in trio's worker threads.

Directory layout (``<data_dir>/spool/drain-<id>/``): segment files
``<first seq, 20 digits>.seg`` holding records (:mod:`logrouter.protocol.spoolfmt`),
and ``ledger.json``. Every step is ordered so that a crash between any two of
them reopens cleanly: records are appended (a torn last record is cut off on the
next open; a failed append is cut off at once); the ledger is replaced atomically
(write a temporary file, then rename; overwritten in place when a full disk has no
room for the temporary file); a segment is deleted once a ledger saying its lines
were delivered is in place — or, on a full disk, when that ledger could not be
written (its lines were all delivered; a restart starts at the oldest segment
left) — and one found fully delivered on open is deleted then.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from logrouter.data_dir import replace_file
from logrouter.logs import get_logger
from logrouter.protocol.spoolfmt import (
    Damage,
    Ledger,
    Record,
    decode_ledger,
    decode_records,
    encode_ledger,
    encode_record,
)

__all__ = ["LEDGER", "Scan", "Segment", "append", "read_segment", "remove_dir", "scan",
           "segment_path", "write_ledger"]

log = get_logger("logrouter.spool")

LEDGER = "ledger.json"
_SUFFIX = ".seg"


@dataclass(slots=True)
class Segment:
    """One segment file: lines ``first`` ≤ seq < ``end`` (some may be absent), ``size`` bytes."""

    first: int
    end: int
    path: str
    size: int
    records: list[tuple[int, int]] = field(default_factory=list)  # (first seq, line count)

    def pending(self, start: int, end: int) -> int:
        """Lines of this segment numbered ``start`` ≤ seq < ``end``."""
        return sum(max(0, min(f + n, end) - max(f, start)) for f, n in self.records)


@dataclass(slots=True)
class Scan:
    """What a spool directory holds, as found on open."""

    ledger: Ledger
    segments: list[Segment] = field(default_factory=list)
    lost: int = 0  # lines found damaged (counted, to be reported by L10)
    damaged: list[str] = field(default_factory=list)  # what was damaged, for the log


def segment_path(directory: str, first: int) -> str:
    return os.path.join(directory, f"{first:020d}{_SUFFIX}")


def scan(directory: str) -> Scan:
    """Open a spool directory (created 0700 if missing): read the ledger, check every
    segment, cut damaged ones at the damage, delete fully delivered ones.

    A missing or unreadable ledger means nothing is known delivered (lines may be sent
    twice, never lost). Lines in a damaged record are counted lost: the count its header
    gives, or — when a later segment starts — the gap up to it.
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    result = Scan(Ledger())
    try:
        with open(os.path.join(directory, LEDGER), "rb") as fh:
            result.ledger = decode_ledger(fh.read())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        result.damaged.append(f"ledger: {exc}")
    names = sorted(n for n in os.listdir(directory) if n.endswith(_SUFFIX))
    acked = result.ledger.acked
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            result.damaged.append(f"{name}: {exc}")
            continue
        records, damage = decode_records(data)
        if damage:
            result.lost += _damage_lost(records, damage, acked)
            spans = ", ".join(f"{d.start}-{d.end}" for d in damage)
            result.damaged.append(f"{name}: damaged bytes {spans} of {len(data)}")
            _rewrite(path, records)
        records = [r for r in records if r.end > acked]
        if not records:
            os.unlink(path)
            continue
        size = os.path.getsize(path)
        result.segments.append(Segment(records[0].first, records[-1].end, path, size,
                                       [(r.first, len(r.lines)) for r in records]))
    return result


def _damage_lost(records: list[Record], damage: list[Damage], acked: int) -> int:
    """Lines lost to ``damage``: the gap in line numbers between the good records around
    each damaged stretch (lines below ``acked`` were delivered), or — at the end of the
    file — the count the damaged record's header claims (unknown when it is unreadable)."""
    lost = 0
    for d in damage:
        prev_end = records[d.index - 1].end if d.index > 0 else acked
        if d.index < len(records):
            lost += max(0, records[d.index].first - max(prev_end, acked))
        elif d.claimed is not None:
            lost += d.claimed
    return lost


def _rewrite(path: str, records: list[Record]) -> None:
    """Replace a damaged segment by its good records (so the damage is counted once)."""
    replace_file(path, lambda fh: fh.writelines(encode_record(r.first, r.lines) for r in records))


def _first_of(name: str) -> int:
    try:
        return int(name.removesuffix(_SUFFIX))
    except ValueError:
        return 0


def read_segment(path: str) -> list[Record]:
    """The good records of a segment (a missing file reads as empty)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    return decode_records(data)[0]


def append(path: str, data: bytes, sync: bool, size: int = 0) -> None:
    """Append ``data`` to ``path`` (created 0600; ``size``: its length now), fsync'd when
    ``sync``. A write that fails (disk full) is cut back off, so no torn record stays behind
    it, and a segment it created is removed.

    Raises:
        OSError: the write failed.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    except OSError:
        try:
            if size:
                os.ftruncate(fd, size)
            else:
                os.unlink(path)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)


def write_ledger(directory: str, ledger: Ledger, sync: bool) -> None:
    """Replace the ledger atomically (a temporary file, then rename); on a full disk, where
    the temporary file cannot be written, overwrite the ledger in place (its block is
    already the file's; a ledger torn by a crash then reads as none: lines are sent again,
    none lost).

    Raises:
        OSError: it could not be written.
    """
    path = os.path.join(directory, LEDGER)
    data = encode_ledger(ledger)
    try:
        replace_file(path, lambda fh: fh.write(data), sync)
    except OSError as exc:
        if exc.errno != errno.ENOSPC or not os.path.exists(path):
            raise
        fd = os.open(path, os.O_WRONLY)
        try:
            if os.pwrite(fd, data, 0) != len(data):
                raise OSError(errno.ENOSPC, "short write", path) from exc
            os.ftruncate(fd, len(data))
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)


def remove_dir(directory: str) -> None:
    """Delete a spool directory and what is in it (a drain that was removed)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(directory)
    except OSError as exc:
        log.warning("spool_remove_failed", dir=directory, error=str(exc))
