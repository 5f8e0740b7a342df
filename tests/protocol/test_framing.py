"""FrameSplitter: octet counting, newline framing, resync after bad input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logrouter.protocol.framing import FrameSplitter, split_octet_counted

F1 = b"<190>1 2026-11-26T10:00:00+00:00 host t.abc web.1 - - hello"
F2 = b"<190>1 2026-11-26T10:00:01+00:00 host t.abc web.2 - - world\n"


def oc(*frames: bytes) -> bytes:
    return b"".join(b"%d %s" % (len(f), f) for f in frames)


def test_octet_counted_frames_in_one_read() -> None:
    s = FrameSplitter()
    assert s.feed(oc(F1, F2)) == [F1, F2]
    assert s.pending == 0


def test_frame_split_across_reads_including_the_length_prefix() -> None:
    data = oc(F1, F2)
    s = FrameSplitter()
    out = []
    for i in range(len(data)):
        out += s.feed(data[i:i + 1])
    assert out == [F1, F2]


def test_newline_framing_with_crlf_and_lf() -> None:
    s = FrameSplitter()
    assert s.feed(b"<13>1 a\r\n<13>1 b\n<13>1 c") == [b"<13>1 a", b"<13>1 b"]
    assert s.feed(b"\n") == [b"<13>1 c"]


def test_mixed_framing_and_stray_line_ends_between_frames() -> None:
    s = FrameSplitter()
    data = oc(F1) + b"\n" + b"<13>1 newline framed\n" + oc(F2) + b"\r\n"
    assert s.feed(data) == [F1, b"<13>1 newline framed", F2]


def test_oversize_octet_counted_frame_is_skipped_exactly_and_next_frame_survives() -> None:
    s = FrameSplitter(max_frame_bytes=100)
    big = b"x" * 500
    out = s.feed(oc(big)[:200]) + s.feed(oc(big)[200:] + oc(F1))
    assert out == [F1]
    assert s.drops["oversize"] == 1


def test_absurd_length_is_garbage_and_resyncs_at_newline() -> None:
    s = FrameSplitter(max_frame_bytes=100, max_skip_bytes=1000)
    out = s.feed(b"9999999 junk junk\n" + oc(F1))
    # the junk line itself is newline-framed: the router drops it (no token)
    assert out[-1] == F1
    assert s.drops["oversize"] == 0


def test_overlong_newline_frame_is_dropped_up_to_its_newline() -> None:
    s = FrameSplitter(max_frame_bytes=50)
    out = s.feed(b"<13>1 " + b"y" * 200)
    assert out == [] and s.pending == 0
    out = s.feed(b"yyyy\n<13>1 ok\n")
    assert out == [b"<13>1 ok"]
    assert s.drops["oversize"] == 1


def test_retained_bytes_are_bounded_whatever_the_peer_sends() -> None:
    s = FrameSplitter(max_frame_bytes=1000)
    for _ in range(100):
        s.feed(b"z" * 4096)
        assert s.pending <= 1000 + 8


def test_http_body_strict_mode() -> None:
    frames, ok = split_octet_counted(oc(F1, F2))
    assert ok and frames == [F1, F2]
    assert split_octet_counted(b"<13>1 newline\n")[1] is False
    assert split_octet_counted(oc(F1)[:-3])[1] is False  # truncated
    assert split_octet_counted(oc(b"x" * 20000))[1] is False  # oversize


@given(st.lists(st.binary(min_size=1, max_size=300).filter(lambda b: not b.startswith((b"\n", b"\r"))),
                max_size=20),
       st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30))
@settings(max_examples=300, deadline=None)
def test_any_chunking_gives_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    data = oc(*frames)
    s = FrameSplitter()
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        out += s.feed(data[pos:pos + step])
        pos += step
        i += 1
    assert out == frames


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_crash_and_stay_bounded(data: bytes, step: int) -> None:
    s = FrameSplitter(max_frame_bytes=512, max_skip_bytes=4096)
    for pos in range(0, len(data), step):
        for f in s.feed(data[pos:pos + step]):
            assert len(f) <= 512
        assert s.pending <= 512 + 8


@given(st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_garbage_then_good_frame_recovers(garbage: bytes) -> None:
    s = FrameSplitter(max_frame_bytes=512, max_skip_bytes=4096)
    s.feed(garbage + b"\n")
    s.feed(b"\n" * 8)
    # at most one skip window can still be open; a frame after it is seen
    out = s.feed(b"\n" * 4096 + oc(F1) * 2)
    assert F1 in out
