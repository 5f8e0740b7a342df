"""The C speed-ups give exactly what their pure-Python twins give, on generated input.

The pure-Python functions define the behaviour (they are what the rest of the suite tests
when ``LOGROUTER_PURE_PYTHON=1``); here every C function is run beside its twin.
"""

from __future__ import annotations

import os
import tracemalloc
from functools import partial

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logrouter.core.token_routing import _route_frames_py, _route_to_py, _split_route_py
from logrouter.protocol import chunkfmt, drainfmt, framing, tailfmt
from logrouter.protocol.speedups import native
from tests.helpers import needs_native

if os.environ.get("LOGROUTER_EXPECT_SPEEDUPS") == "1" and not os.environ.get("LOGROUTER_PURE_PYTHON"):
    assert native is not None, "the C speed-ups were expected to be built (LOGROUTER_EXPECT_SPEEDUPS=1)"


TOKENS = [b"t.a", b"t.b", b"t.c", b"t.unknown", b"app", b"", b"t."]
KNOWN = {b"t.a": ("ch-a", b"web"), b"t.b": ("ch-b", b"worker-long-name"), b"t.c": ("ch-a", b"")}

field = st.sampled_from([b"-", b"x", b"", b"<13>1", b"2026-11-26T10:00:00Z", b"host", b"web.1",
                         b"[sd x=\"1\"]", b"a b", b"\n", b"\r\n", b"<190>2", b"<>1", b">1"])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        pri = draw(st.sampled_from([b"<190>1", b"<13>1", b"<0>1", b"<190>2", b"190>1", b"<1"]))
        parts = [pri, b"2026-11-26T10:00:00.123+00:00", draw(st.sampled_from([b"host", b"", b"h"])),
                 draw(st.sampled_from(TOKENS)), draw(st.sampled_from([b"web.1", b"-", b""])),
                 draw(st.sampled_from([b"-", b"ID", b""])),
                 draw(st.sampled_from([b"-", b"[a b=\"c\"]", b"", b"--"]))]
        msg = draw(st.binary(max_size=40))
        count = draw(st.integers(min_value=0, max_value=8))
        return b" ".join(parts[:count] + ([msg] if count == 7 else []))
    return b" ".join(draw(st.lists(field, max_size=10))) + draw(st.binary(max_size=12))


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    chunks = []
    for line in draw(st.lists(lines(), max_size=12)):
        kind = draw(st.sampled_from(["octet", "octet", "zero", "newline", "garbage", "huge"]))
        if kind == "octet":
            chunks.append(b"%d %s" % (len(line), line))
        elif kind == "zero":
            chunks.append(b"0%d %s" % (len(line), line))
        elif kind == "newline":
            chunks.append(line + b"\n")
        elif kind == "huge":
            chunks.append(b"%d %s" % (len(line) + 300, line))
        else:
            chunks.append(draw(st.binary(max_size=12)))
    return b"".join(chunks)


@needs_native
@settings(max_examples=400, deadline=None)
@given(streams(), st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=300))
def test_split_octets_matches_python(buf: bytes, pos: int, max_frame: int) -> None:
    assert native is not None
    out_c: list[bytes] = []
    out_py: list[bytes] = []
    assert native.split_octets(buf, pos, max_frame, out_c) == framing._split_octets_py(
        buf, pos, max_frame, out_py)
    assert out_c == out_py


@needs_native
@settings(max_examples=400, deadline=None)
@given(streams(), st.lists(st.integers(min_value=1, max_value=40), max_size=8))
def test_frame_splitter_gives_the_same_frames_either_way(data: bytes, cuts: list[int]) -> None:
    def run(split: object) -> tuple[list[bytes], dict[str, int], int]:
        original = framing.split_octets
        framing.split_octets = split  # type: ignore[assignment]
        try:
            s = framing.FrameSplitter(max_frame_bytes=100, max_skip_bytes=200)
            frames, pos = [], 0
            for cut in [*cuts, len(data)]:
                frames += s.feed(data[pos:pos + cut])
                pos += cut
            frames += s.feed(data[pos:])
            return frames, s.drops, s.pending
        finally:
            framing.split_octets = original

    assert native is not None
    assert run(native.split_octets) == run(framing._split_octets_py)


@needs_native
@settings(max_examples=400, deadline=None)
@given(st.lists(lines(), max_size=30))
def test_route_frames_matches_python(frames: list[bytes]) -> None:
    assert native is not None
    groups_c: dict[str, list[bytes]] = {}
    groups_py: dict[str, list[bytes]] = {}
    counts_c = native.route_frames(frames, KNOWN, groups_c)
    assert counts_c == _route_frames_py(frames, KNOWN, groups_py)
    assert groups_c == groups_py
    assert list(groups_c) == list(groups_py)  # channels in first-seen order


@needs_native
@pytest.mark.parametrize(("apps", "frames"), [(3, 5), (100, 30_000), (20_000, 40_000)])
def test_route_frames_matches_python_for_many_apps(apps: int, frames: int) -> None:
    """Many distinct tokens in one batch: more than the C side's per-call token cache holds
    (it evicts), unknown tokens among them, the same token again after others."""
    import random

    rng = random.Random(apps)
    known = {b"t.%08d" % i: (f"ch-{i % (apps // 2 + 1)}", b"app" if i % 3 else b"heroku")
             for i in range(apps)}
    names = [*known, b"t.unknown-1", b"t.unknown-2", b"app"]
    batch = [b"<190>1 2026-11-26T10:00:00Z host %s web.1 - - line %d" % (rng.choice(names), i)
             for i in range(frames)]
    assert native is not None
    groups_c: dict[str, list[bytes]] = {}
    groups_py: dict[str, list[bytes]] = {}
    assert native.route_frames(batch, known, groups_c) == _route_frames_py(batch, known, groups_py)
    assert groups_c == groups_py and list(groups_c) == list(groups_py)


@needs_native
@settings(max_examples=400, deadline=None)
@given(streams(), st.integers(min_value=-2, max_value=30), st.integers(min_value=0, max_value=300))
def test_split_route_matches_python(buf: bytes, pos: int, max_frame: int) -> None:
    """Split and route in one pass: where it stops, what it counts and the lines it appends
    are those of split_octets followed by route_frames."""
    assert native is not None
    groups_c: dict[str, list[bytes]] = {"ch-b": [b"routed before"]}
    groups_py: dict[str, list[bytes]] = {"ch-b": [b"routed before"]}
    assert native.split_route(buf, pos, max_frame, KNOWN, groups_c) == _split_route_py(
        buf, max(pos, 0), max_frame, KNOWN, groups_py)
    assert groups_c == groups_py and list(groups_c) == list(groups_py)


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.lists(streams(), min_size=1, max_size=4), st.integers(min_value=0, max_value=300))
def test_split_route_with_a_kept_cache_matches_python_read_after_read(
        bufs: list[bytes], max_frame: int) -> None:
    """Reads routed one after another through one RouteCache (split_route prepares the frames
    ahead of the one it routes from the cache's slots): garbage, frames of fewer fields, long
    tokens the cache never keeps and a frame cut off at the end, read after read."""
    assert native is not None
    known = {**KNOWN, b"t." + b"l" * 80: ("ch-long", b"long")}
    cache = native.RouteCache()
    groups_c: dict[str, list[bytes]] = {}
    groups_py: dict[str, list[bytes]] = {}
    for buf in bufs:
        buf = buf.replace(b"t.c", b"t." + b"l" * 80) + b"90 <190>1 - h t.a"  # cut off
        assert native.split_route(buf, 0, max_frame, known, groups_c, cache) == _split_route_py(
            buf, 0, max_frame, known, groups_py)
        assert groups_c == groups_py and list(groups_c) == list(groups_py)


@needs_native
def test_split_route_matches_python_for_many_apps() -> None:
    """A 4 MiB read for 20,000 apps: more tokens than the per-call token cache holds."""
    import random

    rng = random.Random(7)
    known = {b"t.%08d" % i: (f"ch-{i % 9000}", b"app") for i in range(20_000)}
    names = [*known, b"t.unknown", b"app"]
    frames = [b"<190>1 2026-11-26T10:00:00Z host %s web.1 - - %s" % (rng.choice(names), b"x" * 100)
              for _ in range(28_000)]
    buf = b"".join(b"%d %s" % (len(f), f) for f in frames) + b"50 <190>1 cut off"
    assert native is not None
    groups_c: dict[str, list[bytes]] = {}
    groups_py: dict[str, list[bytes]] = {}
    result = native.split_route(buf, 0, 10240, known, groups_c)
    assert result == _split_route_py(buf, 0, 10240, known, groups_py)
    assert result[0] == -(len(buf) - len(b"50 <190>1 cut off") + 1)  # stopped at the cut frame
    assert groups_c == groups_py and list(groups_c) == list(groups_py)


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.lists(lines(), max_size=30), st.sampled_from(TOKENS), st.sampled_from([b"web", b"", b"x" * 50]))
def test_route_to_matches_python(frames: list[bytes], token: bytes, name: bytes) -> None:
    assert native is not None
    assert native.route_to(frames, token, name) == _route_to_py(frames, token, name)


@needs_native
@settings(max_examples=400, deadline=None)
@given(st.lists(lines(), max_size=30), st.sampled_from([b"d.1234", b"", b"d." + b"x" * 60]))
def test_render_syslog_matches_python(lines_: list[bytes], token: bytes) -> None:
    assert native is not None
    slow = partial(drainfmt._syslog_frame, drain_token=token)
    got = native.render_syslog(lines_, token, slow)
    assert got == drainfmt._render_syslog_py(lines_, token, slow)
    frames, skipped = drainfmt.syslog_frames(lines_, token)
    assert got == (b"".join(frames), len(frames), skipped)


@needs_native
def test_space_finding_is_exact_for_every_byte_at_every_alignment() -> None:
    """The C side finds spaces eight bytes at a time; a byte next to a space (every value,
    at every offset in the word) must never be taken for one, nor a space missed."""
    assert native is not None
    lines_ = []
    for pad in range(16):
        for value in range(256):
            near = bytes([value])
            lines_.append(b"<190>1 " + b"2" * pad + near + b" h" + near + b" t.a w" + near
                          + b" - - m" + near + b" x")
            lines_.append(near * pad + b" " + near + b"  " + b"t.b " + near * 3 + b" - - end")
    slow = partial(drainfmt._syslog_frame, drain_token=b"d.1")
    assert native.render_syslog(lines_, b"d.1", slow) == drainfmt._render_syslog_py(
        lines_, b"d.1", slow)
    assert native.render_http(lines_, drainfmt._http_frame) == drainfmt._render_http_py(
        lines_, drainfmt._http_frame)
    groups_c: dict[str, list[bytes]] = {}
    groups_py: dict[str, list[bytes]] = {}
    assert native.route_frames(lines_, KNOWN, groups_c) == _route_frames_py(lines_, KNOWN, groups_py)
    assert groups_c == groups_py
    assert native.route_to(lines_, b"t.b", b"web") == _route_to_py(lines_, b"t.b", b"web")


@needs_native
@settings(max_examples=400, deadline=None)
@given(st.lists(lines(), max_size=30))
def test_render_http_matches_python(lines_: list[bytes]) -> None:
    assert native is not None
    got = native.render_http(lines_, drainfmt._http_frame)
    assert got == drainfmt._render_http_py(lines_, drainfmt._http_frame)
    frames, skipped = drainfmt.http_body(lines_)
    assert got == (b"".join(frames), len(frames), skipped)


chunk_line = st.binary(max_size=300) | st.sampled_from([b"y" * 255, b"y" * 256, b"z" * 65535,
                                                      b"z" * 65536, b""])


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(chunk_line, max_size=40), max_size=6), st.integers(min_value=1, max_value=20))
def test_pack_chunks_matches_python(groups: list[list[bytes]], chunk_lines: int) -> None:
    assert native is not None
    packed = native.pack_chunks(groups, chunk_lines)
    assert packed == chunkfmt._pack_chunks_py(groups, chunk_lines)
    unpacked = [msgpack.unpackb(body, raw=True) for body in packed]
    assert [line for chunk in unpacked for line in chunk] == [line for g in groups for line in g]
    assert all(0 < len(chunk) <= chunk_lines for chunk in unpacked)


@needs_native
def test_wrong_types_raise_instead_of_crashing() -> None:
    assert native is not None
    with pytest.raises(TypeError):
        native.route_frames([b"a b c d e", "text"], KNOWN, {})
    with pytest.raises(TypeError):
        native.route_frames([b"<1>1 t h t.a x"], {b"t.a": "not a tuple"}, {})
    with pytest.raises(TypeError):
        native.route_to([None], b"t.a", b"x")
    with pytest.raises(TypeError):
        native.render_syslog([b"x"], b"d.1", lambda line: "not bytes")
    with pytest.raises(ZeroDivisionError):
        native.render_syslog([b"x"], b"d.1", lambda line: 1 // 0)
    with pytest.raises(TypeError):
        native.render_http([b"x", 3], lambda line: None)

    class Bytes(bytes):
        pass

    for bad_groups in ([[b"x", "text"]], [[b"x"], [Bytes(b"y")]], [(b"x",)], [b"x"]):
        with pytest.raises(TypeError):
            native.pack_chunks(bad_groups, 4)
        with pytest.raises(TypeError):
            chunkfmt._pack_chunks_py(bad_groups, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        native.pack_chunks([[b"x"]], 0)


@needs_native
def test_no_memory_is_leaked() -> None:
    assert native is not None
    frames = [b"<190>1 2026-11-26T10:00:00Z host t.a web.1 - - hello %d" % i for i in range(100)]
    frames += [b"<190>1 2026-11-26T10:00:00Z host t.zzz web.1 - - lost", b"short"]
    buf = b"".join(b"%d %s" % (len(f), f) for f in frames) + b"9 <1>"
    slow = partial(drainfmt._syslog_frame, drain_token=b"d.1")

    def work() -> None:
        native.split_octets(buf, 0, 10240, [])
        groups: dict[str, list[bytes]] = {}
        native.route_frames(frames, KNOWN, groups)
        native.route_to(frames, b"t.a", b"web")
        native.render_syslog([*frames, b"<13>1 - h a p m [sd] with sd"], b"d.1", slow)
        native.render_http([*frames, b"<13>1 - h a p m [sd] with sd"], drainfmt._http_frame)
        native.render_tail([*frames, b"<13>1 - h a p m [sd] x"], True, 5, tailfmt.line_id, b"web",
                           None, lambda raw, k: b"x")
        native.render_tail(frames, False, None, None, None, b"app", lambda raw, k: b"")
        native.pack_chunks([frames, [], frames[:3]], 7)
        for bad in (lambda: native.pack_chunks([frames, [b"x", 1]], 7),
                    lambda: native.route_to([1], b"t", b"x"),
                    lambda: native.route_frames([b"<1>1 t h t.a x"], {b"t.a": "bad"}, {}),
                    lambda: native.render_syslog([b"x"], b"d", lambda line: 1 // 0)):
            try:
                bad()
            except (TypeError, ZeroDivisionError):
                pass

    for _ in range(200):
        work()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            work()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024  # 2,000 rounds of ~400 objects each: any per-call leak shows


@needs_native
def test_equal_channels_share_one_group_as_in_python() -> None:
    assert native is not None
    a1, a2 = "".join(["ch", "-a"]), "".join(["ch-", "a"])  # equal, not the same object
    assert a1 == a2 and a1 is not a2
    tokens = {b"t.1": (a1, b"web"), b"t.2": (a2, b"worker"), b"t.3": ("ch-b", b"x")}
    frames = [b"<1>1 - h t.%d p - - m%d" % (t, i) for i, t in enumerate([1, 2, 3, 2, 1])]
    groups_c: dict[str, list[bytes]] = {}
    groups_py: dict[str, list[bytes]] = {}
    assert native.route_frames(frames, tokens, groups_c) == _route_frames_py(frames, tokens, groups_py)
    assert groups_c == groups_py
    assert len(groups_c["ch-a"]) == 4


def test_pure_python_switch_selects_the_python_twins() -> None:
    import subprocess
    import sys

    code = (
        "from logrouter.protocol import drainfmt, framing, speedups\n"
        "from logrouter.core import token_routing as router\n"
        "assert speedups.native is None\n"
        "assert framing.split_octets is framing._split_octets_py\n"
        "assert router._route_frames is router._route_frames_py\n"
        "assert router._route_to is router._route_to_py\n"
        "assert drainfmt._render_syslog is drainfmt._render_syslog_py\n"
        "assert drainfmt._render_http is drainfmt._render_http_py\n"
        "f = b'<13>1 - h t.a p - - hi'\n"
        "frames = framing.FrameSplitter().feed(b'%d %s' % (len(f), f))\n"
        "r = router.route_by_token(frames, {b't.a': ('c', b'app')})\n"
        "assert r.groups == {'c': [b'<13>1 - h app p - - hi']}, r.groups\n"
        "assert drainfmt.render_syslog(r.groups['c'], b'd.1')[0] == b'25 <13>1 - d.1 app p - - hi\\n'\n"
    )
    env = {**os.environ, "LOGROUTER_PURE_PYTHON": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@needs_native
def test_python_callbacks_that_change_the_input_do_not_crash() -> None:
    assert native is not None
    lines = [b"not syslog %d" % i for i in range(50)]

    def slow(line: bytes) -> bytes | None:
        lines.clear()  # the list shrinks under the renderer
        return b"5 " + line[:3]

    data, rendered, skipped = native.render_http(lines, slow)
    assert (data, rendered, skipped) == (b"5 not", 1, 0)

    lines = [b"not syslog %d" % i for i in range(50)]

    def slow_tail(line: bytes, index: int) -> bytes:
        lines.clear()
        return line[:3]

    assert native.render_tail(lines, True, 1, None, None, None, slow_tail) == b"not"

    class Sly:
        def __init__(self, frames: list[bytes]) -> None:
            self.frames = frames

        def __hash__(self) -> int:
            return 1

        def __eq__(self, other: object) -> bool:
            self.frames.clear()
            return False

    frames = [b"<1>1 - h t.%d p - - m" % (i % 2) for i in range(40)]
    groups: dict[object, list[bytes]] = {}
    tokens = {b"t.0": (Sly(frames), b"a"), b"t.1": (Sly(frames), b"b")}
    native.route_frames(frames, tokens, groups)  # must simply stop where the list ends
    assert sum(len(g) for g in groups.values()) <= 40


tail_lines = st.one_of(lines(), st.builds(
    lambda pri, ver, sdsep, msg: b"<%s>%s 2026-11-26T10:00:00Z h app web.1 - %s%s" % (pri, ver, sdsep, msg),
    st.sampled_from([b"190", b"1", b"", b"x", b"19>0"]), st.sampled_from([b"1", b"12", b"", b"1a"]),
    st.sampled_from([b"- ", b"-", b"[a b=\"c\"] ", b"-x"]),
    st.binary(max_size=30) | st.sampled_from([b"a\r\nb\rc\nd", b"\r\n", b"x\n\n", b"\n", b""]),
))


@needs_native
@settings(max_examples=500, deadline=None)
@given(st.lists(tail_lines, max_size=20), st.booleans(), st.none() | st.integers(0, 2**40),
       st.booleans(), st.none() | st.sampled_from([b"web", b"web.1", b"", b"w"]),
       st.none() | st.sampled_from([b"app", b"", b"t.a", b"x"]))
def test_render_tail_matches_python(lines_: list[bytes], sse: bool, first_id: int | None,
                                    content_ids: bool, ps: bytes | None, source: bytes | None) -> None:
    filt = tailfmt.TailFilter(ps, source)
    assert tailfmt.render_lines(lines_, filt, sse, first_id, content_ids) == tailfmt._render_lines_py(
        lines_, filt, sse, first_id, content_ids)


@needs_native
def test_kept_memory_spares_the_page_faults_of_the_next_batch() -> None:
    """A batch of short-lived lines and a large read freed and made again: with freed memory
    kept, the later batches reuse mapped memory instead of faulting fresh pages in (a
    subprocess: the setting is process-wide)."""
    import subprocess
    import sys

    script = """if True:
        import resource, sys
        from logrouter.protocol.speedups import keep_freed_memory
        if sys.argv[1] == "keep":
            keep_freed_memory(64 << 20)
        def batch():
            lines = [b"x" * 200 + b"%d" % i for i in range(30000)]
            read = bytearray(4 << 20)  # a large block too (a 4 MiB socket read)
            read[::4096] = b"y" * len(read[::4096])
            del lines, read
        for _ in range(3):
            batch()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            batch()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
    faults = {mode: int(subprocess.run([sys.executable, "-c", script, mode], check=True,
                                       capture_output=True, text=True).stdout)
              for mode in ("default", "keep")}
    assert faults["default"] > 20000  # ~2,500 pages per batch come back from the kernel
    assert faults["keep"] < faults["default"] // 10


@needs_native
def test_empty_pools_held_by_a_few_survivors_go_back_to_the_kernel() -> None:
    """A burst of lines with a few long-lived objects allocated among them: once the lines
    are gone the arenas stay mapped (each holds a survivor) until release_freed_memory gives
    their empty pools back; the survivors and everything allocated later stay intact, burst
    after burst (a subprocess: the allocator's state is process-wide)."""
    import subprocess
    import sys

    script = """if True:
        import gc
        from logrouter.protocol.speedups import keep_freed_memory, release_freed_memory
        def rss():
            with open("/proc/self/status") as fh:
                return int(next(l for l in fh if l.startswith("VmRSS")).split()[1]) * 1024
        keep_freed_memory(64 << 20)
        survivors = []
        for burst in range(3):
            lines = []
            for i in range(1_000_000):
                lines.append(b"line %d " % i + b"x" * (i % 150))
                if i % 1000 == 0:
                    survivors.append((burst, i, float(i)))
            peak = rss()
            del lines
            gc.collect()
            held = rss()
            released = release_freed_memory()
            after = rss()
            print(burst, peak, held, released, after)
            assert all(s == (s[0], s[1], float(s[1])) for s in survivors)
            again = [b"%d" % i * 3 for i in range(300_000)]
            assert all(a == b"%d" % i * 3 for i, a in enumerate(again))
            del again
    """
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        _burst, peak, held, released, after = map(int, line.split())
        assert held > peak * 0.7  # the survivors keep the burst's arenas mapped
        assert released > 64 << 20
        assert after < held - released * 0.8  # what it says it released left the process


def _reads(known: dict[bytes, tuple[str, bytes]], reads: int, frames: int, seed: int) -> list[bytes]:
    import random

    rng = random.Random(seed)
    names = [*known, b"t.unknown", b"app", b"t." + b"x" * 100]
    out = []
    for _ in range(reads):
        lines_ = [b"<190>1 2026-11-26T10:00:00Z host %s web.1 - - %d" % (rng.choice(names), i)
                  for i in range(frames)]
        out.append(b"".join(b"%d %s" % (len(f), f) for f in lines_))
    return out


@needs_native
@pytest.mark.parametrize("apps", [3, 20_000])
def test_a_route_cache_routes_read_after_read_as_python_does(apps: int) -> None:
    """With a RouteCache kept across calls (more tokens than it holds: it evicts) and a new
    groups dict every other read, each call appends exactly what the twin appends, to the
    dict it is given: a group fetched for one call never takes lines of the next."""
    assert native is not None
    known = {b"t.%08d" % i: (f"ch-{i % (apps // 2 + 1)}", b"app%d" % (i % 7)) for i in range(apps)}
    cache = native.RouteCache()
    groups_c: dict[str, list[bytes]] = {}
    groups_py: dict[str, list[bytes]] = {}
    for k, buf in enumerate(_reads(known, 6, 8_000, apps)):
        if k % 2 == 0:
            groups_c, groups_py = {}, {}
        assert native.split_route(buf, 0, 10240, known, groups_c, cache) == _split_route_py(
            buf, 0, 10240, known, groups_py)
        assert groups_c == groups_py and list(groups_c) == list(groups_py)
        frames = framing.FrameSplitter().feed(buf)[:500]
        assert native.route_frames(frames, known, groups_c, cache) == _route_frames_py(
            frames, known, groups_py)
        assert groups_c == groups_py
    assert 0 < len(cache) <= 16_384


@needs_native
def test_a_route_cache_answers_for_the_dict_it_is_given_and_forgets_when_cleared() -> None:
    assert native is not None
    cache = native.RouteCache()
    line = b"<1>1 - h t.a p - - m"
    buf = b"%d %s" % (len(line), line)
    tokens: dict[bytes, tuple[str, bytes]] = {}
    assert native.split_route(buf, 0, 100, tokens, {}, cache)[1:] == (0, 0, 0, 1)  # unknown
    tokens[b"t.a"] = ("A", b"app")
    cache.clear()  # the dict changed: its owner clears the cache
    groups: dict[str, list[bytes]] = {}
    assert native.split_route(buf, 0, 100, tokens, groups, cache)[1] == 1
    assert groups == {"A": [b"<1>1 - h app p - - m"]}
    other = {b"t.a": ("B", b"web")}  # another dict: the cache starts afresh by itself
    groups = {}
    assert native.split_route(buf, 0, 100, other, groups, cache)[1] == 1 and list(groups) == ["B"]
    with pytest.raises(TypeError):
        native.split_route(buf, 0, 100, tokens, {}, "not a cache")
    with pytest.raises(TypeError):
        native.RouteCache(1)


@needs_native
def test_a_route_cache_keeps_no_made_up_long_app_names_and_stays_bounded() -> None:
    """A stream of distinct APP-NAMEs (unknown tokens, long or short) cannot grow the cache
    past its slots, and names longer than a token are never kept."""
    assert native is not None
    cache = native.RouteCache()
    long_names = [b"<1>1 - h t.%s p - - m" % (b"%06d" % i * 20) for i in range(2_000)]
    assert native.route_frames(long_names, KNOWN, {}, cache) == (0, 0, 2_000)
    assert len(cache) == 0
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(10):
            short = [b"<1>1 - h t.%d p - - m" % (k * 10_000 + i) for i in range(10_000)]
            native.route_frames(short, KNOWN, {}, cache)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) <= 16_384
    assert grown < 16_384 * 80 + 1024 * 1024  # the slots' token bytes, nothing per call


@needs_native
def test_a_route_cache_survives_python_code_that_clears_or_reuses_it_mid_call() -> None:
    """A channel's __eq__ runs Python in the middle of a call: clearing the cache there takes
    effect when the call ends, and a call made there with the same cache uses a table of its
    own; every frame is still routed once."""
    assert native is not None
    cache = native.RouteCache()
    inner: dict[object, list[bytes]] = {}

    class Meddler:
        def __init__(self, name: str) -> None:
            self.name = name

        def __hash__(self) -> int:
            return 1

        def __eq__(self, other: object) -> bool:
            cache.clear()
            native.route_frames([b"<1>1 - h t.0 p - - nested"], tokens, inner, cache)
            return False

    tokens = {b"t.0": (Meddler("a"), b"a"), b"t.1": (Meddler("b"), b"b")}
    frames = [b"<1>1 - h t.%d p - - m%d" % (i % 2, i) for i in range(40)]
    groups: dict[object, list[bytes]] = {}
    assert native.route_frames(frames, tokens, groups, cache) == (0, 0, 0)
    assert sorted(len(g) for g in groups.values()) == [20, 20]
    assert sum(len(g) for g in inner.values()) >= 1
    assert len(cache) == 0  # cleared once the call was over


@needs_native
def test_a_route_cache_in_a_reference_cycle_is_collected() -> None:
    import gc
    import weakref

    assert native is not None

    class Channel:
        pass

    channel = Channel()
    cache = native.RouteCache()
    tokens = {b"t.a": (channel, b"app")}
    channel.cache = cache  # type: ignore[attr-defined]  # channel → cache → tokens → channel
    native.route_frames([b"<1>1 - h t.a p - - m"], tokens, {}, cache)
    gone = weakref.ref(channel)
    del channel, cache, tokens
    gc.collect()
    assert gone() is None


@needs_native
def test_a_route_cache_notices_a_groups_dict_that_lost_a_key() -> None:
    """Calls given the same groups dict share the lists fetched from it; a dict that lost a
    key since (its owner took that channel's lines away) gets a new list, not lines appended
    to the list it no longer holds."""
    assert native is not None
    cache = native.RouteCache()
    tokens = {b"t.a": ("A", b"app"), b"t.b": ("B", b"web")}
    groups: dict[str, list[bytes]] = {}
    native.route_frames([b"<1>1 - h t.a p - - 1", b"<1>1 - h t.b p - - 2"], tokens, groups, cache)
    first = groups["A"]
    native.route_frames([b"<1>1 - h t.a p - - 3"], tokens, groups, cache)
    assert groups["A"] is first and len(first) == 2
    del groups["A"]
    native.route_frames([b"<1>1 - h t.a p - - 4"], tokens, groups, cache)
    assert groups["A"] == [b"<1>1 - h app p - - 4"] and len(first) == 2


@needs_native
def test_a_route_cache_full_of_evictions_still_forgets_everything_when_cleared() -> None:
    """More tokens than the cache holds (it evicts as it goes); clear() then empties it
    whole, and a token moved to another channel meanwhile is routed to the new one."""
    assert native is not None
    cache = native.RouteCache()
    tokens = {b"t.%06d" % i: (f"ch-{i}", b"app") for i in range(20_000)}
    frames = [b"<1>1 - h t.%06d p - - m" % i for i in range(20_000)]
    for _ in range(2):
        native.route_frames(frames, tokens, {}, cache)
    assert 0 < len(cache) <= 16_384
    tokens[b"t.000005"] = ("moved", b"web")
    cache.clear()
    assert len(cache) == 0
    groups: dict[str, list[bytes]] = {}
    native.route_frames(frames[:10], tokens, groups, cache)
    assert groups["moved"] == [b"<1>1 - h web p - - m"] and "ch-5" not in groups
    assert len(cache) == 10
    cache.clear()
    cache.clear()  # an empty cache clears at once
    assert len(cache) == 0
