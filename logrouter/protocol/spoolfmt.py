"""The drain spool's bytes on disk: records of numbered lines, and the ledger. Sans-IO.

A spool segment file is a sequence of records, each one flush's worth of lines::

    "LS" | version (1) | flags (1) | payload length (u32) | crc32 (u32) | first seq (u64) |
    line count (u32) | payload (msgpack array of the lines)

little-endian, 24 bytes of header; the CRC covers the first seq, the count and the
payload. Line numbers (seqs) increase within a drain's spool; records may skip
numbers (lines delivered before they were written need no record).

:func:`decode_records` reads every valid record and reports the damaged
stretches between them (bad magic, bad CRC, cut short by a crash), so a spool
damaged by a crash or a stray edit loses only what the damage covers.

The ledger (``ledger.json``) says which lines were delivered (every seq below
``acked``), the HTTP batch in flight (so a restart resends it with the same
``Logplex-Frame-Id``) and the loss not yet reported by an L10.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

import msgpack

__all__ = ["HEADER", "Damage", "Ledger", "Record", "decode_ledger", "decode_records", "encode_ledger",
           "encode_record"]

_MAGIC = b"LS"
_VERSION = 1
HEADER = struct.Struct("<2sBBIIQI")  # magic, version, flags, length, crc, first seq, count
_CRC_PART = struct.Struct("<QI")


@dataclass(frozen=True, slots=True)
class Record:
    """Lines numbered ``first``, ``first + 1``, …"""

    first: int
    lines: list[bytes]

    @property
    def end(self) -> int:
        return self.first + len(self.lines)


def encode_record(first: int, lines: list[bytes]) -> bytes:
    """One record of ``lines``, the first numbered ``first``."""
    payload: bytes = msgpack.packb(lines, use_bin_type=True)
    crc = zlib.crc32(payload, zlib.crc32(_CRC_PART.pack(first, len(lines))))
    return HEADER.pack(_MAGIC, _VERSION, 0, len(payload), crc, first, len(lines)) + payload


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes ``start`` to ``end`` of a segment hold no valid record. ``index`` is the number of
    good records before them; ``claimed`` the line count the first damaged record's header
    gives, when its header is intact."""

    start: int
    end: int
    index: int
    claimed: int | None


def _record_at(data: bytes, pos: int) -> tuple[Record | None, int, int | None]:
    """The record at ``pos``: ``(record, its end, None)``, or ``(None, pos, claimed count)``."""
    if len(data) - pos < HEADER.size:
        return None, pos, None
    magic, version, _flags, length, crc, first, count = HEADER.unpack_from(data, pos)
    if magic != _MAGIC or version != _VERSION:
        return None, pos, None
    start = pos + HEADER.size
    if len(data) - start < length:
        return None, pos, count
    payload = memoryview(data)[start:start + length]
    if zlib.crc32(payload, zlib.crc32(_CRC_PART.pack(first, count))) != crc:
        return None, pos, count
    try:
        lines = msgpack.unpackb(payload, raw=True, use_list=True)
    except (ValueError, msgpack.UnpackException):
        return None, pos, count
    if not isinstance(lines, list) or len(lines) != count or not all(
            isinstance(x, bytes) for x in lines):
        return None, pos, count
    return Record(first, lines), start + length, None


def decode_records(data: bytes) -> tuple[list[Record], list[Damage]]:
    """Every valid record in ``data``, and the damaged stretches between them.

    A damaged record (bad magic, bad CRC, torn by a crash) does not hide the records
    after it: the reader looks for the next valid record header and goes on from there.
    """
    records: list[Record] = []
    damage: list[Damage] = []
    pos = 0
    size = len(data)
    while pos < size:
        record, end, claimed = _record_at(data, pos)
        if record is not None:
            records.append(record)
            pos = end
            continue
        resume = pos + 1
        while True:
            resume = data.find(_MAGIC + bytes((_VERSION,)), resume)
            if resume < 0:
                resume = size
                break
            if _record_at(data, resume)[0] is not None:
                break
            resume += 1
        damage.append(Damage(pos, resume, len(records), claimed))
        pos = resume
    return records, damage


@dataclass(frozen=True, slots=True)
class Ledger:
    """What a drain's spool knows besides its lines.

    Attributes:
        acked: every line numbered below this was delivered.
        batch: the HTTP batch in flight ``(first seq, line count, frame id)``, if any.
        loss: lines lost and not yet reported ``(count, since)``, if any.
    """

    acked: int = 0
    batch: tuple[int, int, str] | None = None
    loss: tuple[int, float] | None = None


def encode_ledger(ledger: Ledger) -> bytes:
    return json.dumps({"acked": ledger.acked,
                       "batch": list(ledger.batch) if ledger.batch else None,
                       "loss": list(ledger.loss) if ledger.loss else None}).encode()


def decode_ledger(data: bytes) -> Ledger:
    """Parse a ledger.

    Raises:
        ValueError: not a ledger.
    """
    try:
        obj = json.loads(data)
        acked = int(obj["acked"])
        batch = obj.get("batch")
        loss = obj.get("loss")
        return Ledger(acked,
                      (int(batch[0]), int(batch[1]), str(batch[2])) if batch else None,
                      (int(loss[0]), float(loss[1])) if loss else None)
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a spool ledger: {exc}") from None
