"""Syslog stream framing: split a TCP byte stream into whole frames.

Theory of operation
-------------------
A :class:`FrameSplitter` is fed the bytes of one connection, read by read, and
returns the complete frames each read finished. It keeps the unfinished tail of
the stream between reads. Two framings are detected frame by frame (RFC 6587):

* octet counting (§3.4.1): ``LEN SP MSG`` where LEN starts with ``1``-``9``;
* non-transparent framing (§3.4.2): ``MSG LF`` (a CR before the LF is removed),
  what ``logger --tcp`` and rsyslog send by default.

Stray CR/LF between frames are skipped (rsyslog ends octet-counted frames with
LF too). A frame whose declared length exceeds ``max_frame_bytes`` is skipped
exactly (the framing is still valid, so the frames after it survive); a
declared length above ``max_skip_bytes`` is treated as garbage and the stream
resynchronises at the next LF. A newline-framed message longer than
``max_frame_bytes`` is dropped up to its LF. Every drop is counted in
:attr:`FrameSplitter.drops` by reason; nothing here raises on bad input.

Memory: the retained tail never exceeds ``max_frame_bytes`` plus the length
prefix, whatever the peer sends.
"""

from __future__ import annotations

from collections.abc import Callable

from logrouter.protocol.speedups import native

__all__ = ["DROP_REASONS", "FrameSplitter", "FramesTaker", "OctetsTaker", "split_octet_counted"]

#: Reasons a splitter drops bytes, the label values of the malformed counter.
DROP_REASONS = ("oversize", "garbage")

# RFC 6587 gives no maximum; Logplex's parser accepted 10 KiB ("10Kb max in a
# single log message") and dynos split lines at 10,000 bytes.
DEFAULT_MAX_FRAME_BYTES = 10240
# A declared length up to this is skipped precisely; anything larger is taken
# as a corrupt prefix rather than a real (if oversize) frame.
DEFAULT_MAX_SKIP_BYTES = 1 << 20
# Seven digits cover any length up to 9,999,999: the most a valid prefix needs.
_MAX_LEN_DIGITS = 7


def _split_octets_py(buf: bytes, pos: int, max_frame: int, out: list[bytes]) -> int:
    """Append the well-formed octet-counted frames (RFC 6587 §3.4.1) from ``buf[pos:]`` to ``out``.

    The fast path of :meth:`FrameSplitter.feed`: a frame qualifies when its length has no
    leading zero, at most seven digits and is at most ``max_frame``. Returns the position after
    the last frame taken — ``len(buf)``, or the start of the first frame that does not qualify
    — or ``-(pos + 1)`` when the frame at ``pos`` qualifies but has not fully arrived.
    """
    find = buf.find
    append = out.append
    n = len(buf)
    while pos < n:
        sp = find(b" ", pos, pos + _MAX_LEN_DIGITS + 1)
        if sp <= pos:
            return pos
        digits = buf[pos:sp]
        if not digits.isdigit() or buf[pos] == 48:
            return pos
        length = int(digits)
        if length > max_frame:
            return pos
        end = sp + 1 + length
        if end > n:
            return -(pos + 1)
        append(buf[sp + 1:end])
        pos = end
    return pos


split_octets: Callable[[bytes, int, int, list[bytes]], int] = (
    native.split_octets if native is not None else _split_octets_py)

#: What :meth:`FrameSplitter.feed_to` hands a run of octet-counted frames to: ``(buf, pos,
#: max_frame)`` → the position :func:`split_octets` would return.
OctetsTaker = Callable[[bytes, int, int], int]
#: What :meth:`FrameSplitter.feed_to` hands the other frames to.
FramesTaker = Callable[[list[bytes]], object]


class FrameSplitter:
    """Incremental RFC 6587 splitter for one byte stream.

    Args:
        max_frame_bytes: largest frame delivered; longer ones are dropped and
            counted as ``oversize``.
        max_skip_bytes: largest declared octet count that is skipped exactly;
            above it the prefix counts as ``garbage`` and framing resyncs at LF.
        allow_newline: accept newline-framed messages. With ``False`` (HTTP
            bodies) any byte that does not start an octet-counted frame is
            ``garbage`` and the rest of the input is discarded.
    """

    __slots__ = (
        "_buf",
        "_discard_line",
        "_skip",
        "allow_newline",
        "drops",
        "max_frame_bytes",
        "max_skip_bytes",
    )

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 max_skip_bytes: int = DEFAULT_MAX_SKIP_BYTES,
                 allow_newline: bool = True) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.max_skip_bytes = max(max_skip_bytes, max_frame_bytes)
        self.allow_newline = allow_newline
        self.drops: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._buf = b""
        self._skip = 0  # bytes of an oversize octet-counted frame still to skip
        self._discard_line = False  # dropping an overlong line up to its LF

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` to the stream and return the frames it completed, in order."""
        frames: list[bytes] = []

        def octets(buf: bytes, pos: int, max_frame: int) -> int:
            return split_octets(buf, pos, max_frame, frames)

        self.feed_to(data, octets, frames.extend)
        return frames

    def feed_to(self, data: bytes, octets: OctetsTaker, others: FramesTaker) -> None:
        """Add ``data`` to the stream and hand over the frames it completed, in stream order,
        without returning them: each run of well-formed octet-counted frames (the fast path)
        as ``octets(buf, pos, max_frame)``, which must take the frames of ``buf[pos:]`` and
        return what :func:`split_octets` returns for them; the frames framed otherwise
        (newline framing) as lists given to ``others``. This lets a caller route a read
        straight from its bytes (``token_routing.Routing.octets``)."""
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip:]
            self._skip = 0
        if self._discard_line:
            nl = data.find(b"\n")
            if nl < 0:
                return
            data = data[nl + 1:]
            self._discard_line = False
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        max_frame = self.max_frame_bytes
        framed: list[bytes] = []  # frames framed otherwise, not yet handed over
        while pos < n:
            if 49 <= buf[pos] <= 57:  # may start an octet-counted frame
                if framed:
                    others(framed)
                    framed = []
                pos = octets(buf, pos, max_frame)
                if pos < 0:  # an octet-counted frame still arriving
                    pos = -pos - 1
                    break
                if pos >= n:
                    break
            pos = self._other(buf, pos, framed)
            if pos < 0:
                pos = -pos - 1
                break
        if framed:
            others(framed)
        self._buf = buf[pos:] if pos < n else b""

    def _other(self, buf: bytes, pos: int, frames: list[bytes]) -> int:
        """Handle what the fast path did not: an oversize or split length prefix, stray line
        ends, newline framing (RFC 6587 §3.4.2). Returns the next position, or ``-(pos + 1)``
        to stop and keep ``buf[pos:]`` for the next read."""
        n = len(buf)
        c = buf[pos]
        if 49 <= c <= 57:
            sp = buf.find(b" ", pos + 1, pos + _MAX_LEN_DIGITS + 1)
            if sp > 0:
                digits = buf[pos:sp]
                if digits.isdigit():
                    length = int(digits)  # above max_frame_bytes, or the fast path took it
                    end = sp + 1 + length
                    if length <= self.max_skip_bytes:
                        self.drops["oversize"] += 1
                        if end > n:
                            self._skip = end - n
                            return -(n + 1)
                        return end
            elif n - pos <= _MAX_LEN_DIGITS and buf[pos:n].isdigit():
                return -(pos + 1)  # a length prefix split across reads
        elif c == 10 or c == 13:  # stray line ends between frames
            return pos + 1
        if not self.allow_newline:
            self.drops["garbage"] += 1
            return -(n + 1)
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if n - pos > self.max_frame_bytes:
                self.drops["oversize"] += 1
                self._discard_line = True
                return -(n + 1)
            return -(pos + 1)
        end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
        if end - pos > self.max_frame_bytes:
            self.drops["oversize"] += 1
        elif end > pos:
            frames.append(buf[pos:end])
        return nl + 1

    def take_drops(self) -> dict[str, int]:
        """Return the drop counts since the last call and reset them."""
        drops = self.drops
        self.drops = dict.fromkeys(DROP_REASONS, 0)
        return drops


def split_octet_counted(body: bytes, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                        ) -> tuple[list[bytes], bool]:
    """Split a complete ``application/logplex-1`` body.

    Returns:
        ``(frames, ok)``: ``ok`` is false when the body holds anything but
        octet-counted frames of at most ``max_frame_bytes`` (a newline-framed or
        oversize frame, or a truncated last frame), which Logplex answers with
        ``400 Malformed log messages``.
    """
    splitter = FrameSplitter(max_frame_bytes, max_frame_bytes, allow_newline=False)
    frames = splitter.feed(body)
    ok = not splitter.pending and not splitter._skip and not any(splitter.drops.values())
    return frames, ok
