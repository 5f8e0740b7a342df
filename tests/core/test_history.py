"""History: the same lines, numbers and answers whether its lines are raw or compressed."""

from __future__ import annotations

import gc
import random
from collections import deque
from pathlib import Path

import msgpack
import pytest
import trio
import trio.testing
import zstandard

from logrouter.core.history import CHUNK_LINES, History, HistoryCompactor
from logrouter.core.history_file import load_histories, save_histories
from tests.helpers import needs_native

LINE = b"<190>1 2026-11-26T10:00:00.000000+00:00 host app web.1 - - " + b"x" * 90


def check(h: History, ref: deque[bytes], seq: int) -> None:
    assert len(h) == len(ref) and h.seq == seq
    assert h.snapshot() == list(ref)
    for n in (0, 1, 7, len(ref) // 2, len(ref), len(ref) + 5):
        first, lines = h.last(n)
        want = list(ref)[len(ref) - min(n, len(ref)):]
        assert lines == want and first == seq - len(want) + 1
    if len(ref) >= 3:
        after = h.after(seq - 3)
        assert after is not None and after[1] == list(ref)[-3:]


def test_random_extends_and_compactions_match_a_plain_ring() -> None:
    """Compression may run while lines keep arriving (taken, extended, then put back):
    whether or not the swap is accepted, the history answers exactly as a plain ring."""
    rng = random.Random(7)
    swapped = refused = 0
    for _ in range(400):
        capacity = rng.randint(1, 700)
        h = History(capacity, seq=0)
        ref: deque[bytes] = deque(maxlen=capacity)
        seq = 0
        pending = []
        for _ in range(rng.randint(1, 30)):
            batch = [b"line %d" % (seq + i) for i in range(rng.randint(0, 300))]
            h.extend(batch)
            ref.extend(batch)
            seq += len(batch)
            if rng.random() < 0.5 and (h.hot or h.ragged):
                job = h.take_raw(merge=rng.random() < 0.5)
                job.compress()
                pending.append(job)
            if pending and rng.random() < 0.6:
                if h.put_compressed(pending.pop(rng.randrange(len(pending)))):
                    swapped += 1
                else:
                    refused += 1
            check(h, ref, seq)
    assert swapped > 1000 and refused > 100  # both paths were exercised


def test_lines_arriving_during_compression_stay_raw() -> None:
    h = History(1500, seq=0)
    h.extend([b"a", b"b"])
    job = h.take_raw()
    job.compress()
    h.extend([b"c"])
    assert h.put_compressed(job)
    assert h.hot == 1 and h.snapshot() == [b"a", b"b", b"c"]


def test_compression_is_refused_when_the_window_moved_past_the_lines() -> None:
    h = History(3, seq=0)
    h.extend([b"a", b"b"])
    job = h.take_raw()
    job.compress()
    h.extend([b"c", b"d"])  # "a" fell out of the window
    assert not h.put_compressed(job)
    assert h.snapshot() == [b"b", b"c", b"d"] and h.hot == 3


def test_busy_channels_get_partial_chunks_merged_once_quiet() -> None:
    h = History(1500, seq=0)
    ref = []
    for i in range(5):  # compressed while busy: no recompression, chunks of 100
        lines = [b"line %d" % (i * 100 + k) for k in range(100)]
        h.extend(lines)
        ref += lines
        job = h.take_raw(merge=False)
        job.compress()
        assert h.put_compressed(job)
    assert [count for count, _ in h._cold] == [100] * 5 and h.ragged
    job = h.take_raw()  # gone quiet: merged into full chunks
    assert len(job.tail) == 5
    job.compress()
    assert h.put_compressed(job)
    assert [count for count, _ in h._cold] == [CHUNK_LINES, 500 - CHUNK_LINES] and not h.ragged
    assert h.snapshot() == ref


def test_the_compactor_merges_chunks_only_once_a_channel_is_quiet() -> None:
    async def main() -> None:
        h = History(1500, seq=0)
        compactor = HistoryCompactor(lambda: [h], idle=5.0, raw_bytes=1)
        for _ in range(3):
            h.extend([LINE] * 10)  # over the (tiny) budget: compressed as it is, not merged
            await compactor.pass_once()
            await trio.sleep(1)
        assert [count for count, _ in h._cold] == [10, 10, 10] and h.ragged
        await trio.sleep(5)
        await compactor.pass_once()  # quiet now: its chunks are merged
        assert [count for count, _ in h._cold] == [30] and not h.ragged
        assert h.snapshot() == [LINE] * 30

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_partly_filled_chunk_is_merged_not_multiplied() -> None:
    h = History(1500, seq=0)
    for _ in range(20):
        h.extend([LINE] * 10)
        job = h.take_raw()
        job.compress()
        assert h.put_compressed(job)
    assert len(h._cold) == 1 and h._cold[0][0] == 200  # one chunk of 200, not 20 of 10
    h.extend([LINE] * 100)
    job = h.take_raw()
    job.compress()
    assert h.put_compressed(job)
    assert [count for count, _ in h._cold] == [CHUNK_LINES, 300 - CHUNK_LINES]


def test_compactor_compresses_quiet_channels_only_while_under_budget() -> None:
    async def main() -> None:
        quiet, busy = History(1500, seq=0), History(1500, seq=0)
        quiet.extend([LINE] * 1500)
        busy.extend([LINE] * 1500)
        compactor = HistoryCompactor(lambda: [quiet, busy], idle=5.0, raw_bytes=64 << 20)
        await compactor.pass_once()  # first sight of both
        for _ in range(6):
            await trio.sleep(1)
            busy.extend([LINE])
            await compactor.pass_once()
        assert quiet.hot == 0 and busy.hot == 1500
        assert quiet.snapshot() == [LINE] * 1500 and compactor.compacted_lines == 1500
        assert quiet.compressed_bytes * 10 < 1500 * len(LINE)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_compactor_holds_raw_lines_under_the_budget_while_every_channel_is_busy() -> None:
    async def main() -> None:
        rng = random.Random(3)
        histories = {f"c{i}": History(1500, seq=0) for i in range(200)}
        refs = {cid: deque[bytes](maxlen=1500) for cid in histories}
        budget = 2_000_000
        compactor = HistoryCompactor(lambda: histories.values(), idle=0, raw_bytes=budget)
        for _ in range(20):
            for cid, h in histories.items():
                lines = [b"%s %d %s" % (cid.encode(), h.seq, rng.randbytes(40).hex().encode())
                         for _ in range(rng.randint(50, 150))]
                h.extend(lines)
                refs[cid].extend(lines)
            await compactor.pass_once()
            assert compactor.raw_estimate() <= budget
        for cid, h in histories.items():
            assert h.snapshot() == list(refs[cid])
        raw = sum(h.hot for h in histories.values())
        assert 0 < raw * 200 < budget  # busy channels keep their newest lines raw

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def _busy_channels(n: int, lines: int, text: bytes = LINE,
                   ) -> tuple[list[History], list[list[bytes]]]:
    """``n`` histories of ``lines`` numbered lines each (ending in ``text``), and those lines."""
    histories = [History(1500, seq=0) for _ in range(n)]
    refs = [[b"%d %d " % (i, k) + text for k in range(lines)] for i in range(n)]
    for h, ref in zip(histories, refs, strict=True):
        h.extend(ref)
    return histories, refs


def test_a_pass_starts_no_trip_after_pass_seconds() -> None:
    """Channels keep taking lines while a pass goes on: one that ran until it had been through
    every channel it chose would carry on in the mode it began in (a fast fill then outran
    the small trips: 9.5 GB at 50,000 apps)."""
    async def main() -> None:
        histories, refs = _busy_channels(200, 150)
        compactor = HistoryCompactor(lambda: histories, idle=0, raw_bytes=1_000_000)
        compactor.BATCH_BYTES = 20_000  # a trip per channel, each over a (mock) tenth of a second
        assert compactor.raw_estimate() < compactor.CATCH_UP * compactor.raw_bytes  # not catching up
        assert await compactor.pass_once()
        assert sum(h.hot == 0 for h in histories) < 100  # stopped after PASS_SECONDS
        for _ in range(1000):  # a pass makes one trip at least
            if not await compactor.pass_once():
                break
        assert compactor.raw_estimate() <= compactor.raw_bytes
        assert [h.snapshot() for h in histories] == refs

    trio.run(main, clock=trio.testing.MockClock(rate=1000))


@pytest.mark.parametrize("budget", [1_000_000, 100_000])
def test_far_over_the_budget_a_pass_catches_up_in_big_trips(budget: int) -> None:
    async def main() -> None:
        histories, refs = _busy_channels(200, 150)
        compactor = HistoryCompactor(lambda: histories, idle=0, raw_bytes=budget)
        compactor.BATCH_BYTES = 20_000  # a trip per channel
        far = compactor.raw_estimate() > compactor.CATCH_UP * budget
        assert far == (budget == 100_000)
        assert await compactor.pass_once()
        assert compactor.raw_estimate() <= budget / 2
        if far:
            assert compactor.trips == 1  # 30,000 lines, ~6 MB: under CATCH_UP_BATCH_BYTES
        else:
            assert compactor.trips > 100  # a trip per channel until half the budget is left
        assert [h.snapshot() for h in histories] == refs

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # no pass deadline


@pytest.mark.parametrize("size", [150, 5000])
def test_a_trip_carries_about_its_bytes_whatever_the_lines_size(size: int) -> None:
    """A trip's raw lines are copied once more while they are packed: trips are sized in
    bytes, so that long lines (up to ``max_frame_bytes``) make shorter trips."""
    async def main() -> None:
        histories, refs = _busy_channels(20, 150, b"x" * size)
        compactor = HistoryCompactor(lambda: histories, idle=0, raw_bytes=10_000)
        compactor.CATCH_UP_BATCH_BYTES = 4_000_000
        assert compactor.raw_estimate() > compactor.CATCH_UP * compactor.raw_bytes
        assert await compactor.pass_once()
        # 20 x 150 lines: ~0.6 MB of short lines, one trip; ~15 MB of long ones, 4 MB a trip
        assert compactor.trips == (1 if size == 150 else 4)
        assert [h.snapshot() for h in histories] == refs

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_save_and_restore_keep_lines_numbers_and_compression(tmp_path: Path) -> None:
    h = History(1500, seq=1000)
    h.extend([b"old %d" % i for i in range(1400)])
    job = h.take_raw()
    job.compress()
    assert h.put_compressed(job)
    h.extend([b"new %d" % i for i in range(300)])  # 200 old lines leave the window
    path = str(tmp_path / "history.msgpack")
    assert save_histories(path, {"c": h}) == 1500
    saved = load_histories(path)
    back = History.restore(1500, *saved["c"])
    assert back.seq == h.seq and back.snapshot() == h.snapshot()
    assert back.hot == 300 and back.compressed_bytes == h.compressed_bytes
    smaller = History.restore(1000, *saved["c"])  # history_lines lowered meanwhile
    assert smaller.snapshot() == h.snapshot()[-1000:] and smaller.seq == h.seq
    tiny = History.restore(100, *saved["c"])
    assert tiny.snapshot() == h.snapshot()[-100:]


def test_a_save_the_disk_cannot_take_leaves_the_last_one_and_no_partial_file(
        small_disk: Path) -> None:
    """A save that fills the disk fails (OSError, for the node to log), the file saved before
    stays whole, and the part written is removed rather than left taking the disk."""
    path = str(small_disk / "history.msgpack")
    assert save_histories(path, {"c": History(1500, [b"kept %d" % i for i in range(10)])}) == 10
    rng = random.Random(3)
    big = {f"c{i}": History(1500, [rng.randbytes(150) for _ in range(1500)]) for i in range(30)}
    with pytest.raises(OSError):
        save_histories(path, big)  # ~7 MB of lines that do not compress, on 4 MiB
    assert not Path(path + ".tmp").exists()
    assert History.restore(1500, *load_histories(path)["c"]).snapshot() == [
        b"kept %d" % i for i in range(10)]


def test_histories_saved_before_compression_still_load(tmp_path: Path) -> None:
    path = tmp_path / "history.msgpack"
    path.write_bytes(msgpack.packb({"c": [42, [b"a", b"b"]]}, use_bin_type=True))
    back = History.restore(1500, *load_histories(str(path))["c"])
    assert back.seq == 42 and back.snapshot() == [b"a", b"b"]


@pytest.mark.parametrize("payload", [
    [1, [], [[3, b"not zstd"]], 0],
    [1, [], [[0, b""]], 0],
    [1, [], [[3, zstandard.ZstdCompressor(write_content_size=False).compress(b"\x93")]], 0],
    [1, [], [[3, zstandard.ZstdCompressor().compress(b"")]], 0],
    [1, [], [[3, "a str"]], 0],
    [1, [], "x", 0],
    "x",
])
def test_a_damaged_history_file_is_refused_with_its_path(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "history.msgpack"
    path.write_bytes(msgpack.packb({"c": payload}, use_bin_type=True))
    with pytest.raises(ValueError, match="not a history file"):
        load_histories(str(path))


@needs_native
def test_raw_lines_are_out_of_the_cyclic_collector() -> None:
    h = History(100, [b"a"], seq=0)
    h.extend([b"b"] * 20)
    job = h.take_raw()
    job.compress()
    h.extend([b"c"])
    assert h.put_compressed(job)  # the lists left after it keep out too
    assert not gc.is_tracked(h._lines._parts)
    assert not any(gc.is_tracked(part) for part in h._lines._parts)
    assert h.snapshot()[-1] == b"c"


def test_memory_is_given_back_once_a_burst_is_compressed_and_not_while_busy() -> None:
    """Quiet channels holding RELEASE_LINES compressed since the last release, in a pass under
    the budget: release; not in a pass over the budget, nor twice within RELEASE_INTERVAL."""
    async def main() -> None:
        calls: list[int] = []

        def release() -> int:  # called in a worker thread
            calls.append(len(calls))
            return 0

        quiet = [History(1500, seq=0) for _ in range(4)]
        busy = History(100_000, seq=0)
        compactor = HistoryCompactor(lambda: [*quiet, busy], idle=5.0, raw_bytes=1_000_000,
                                     release_memory=release)
        compactor.RELEASE_LINES = 2000
        for h in quiet:
            h.extend([LINE] * 1000)
        assert not await compactor.pass_once()  # first sight: busy, under the budget
        await trio.sleep(6)
        busy.extend([LINE] * 5000)
        assert await compactor.pass_once()  # quiet ones compressed, but a burst goes on
        assert calls == [] and compactor.quiet_since_release == 4000 and busy.hot == 0
        await trio.sleep(6)
        assert not await compactor.pass_once()  # the burst is over
        assert calls == [0] and compactor.quiet_since_release == 0
        first = compactor.released_at
        assert first == trio.current_time()
        for h in quiet:
            h.extend([LINE] * 1000)
        await compactor.pass_once()
        await trio.sleep(6)
        await compactor.pass_once()
        assert len(calls) == 1  # enough quiet lines again, but within RELEASE_INTERVAL
        assert compactor.quiet_since_release == 4000
        await trio.sleep(compactor.RELEASE_INTERVAL)
        await compactor.pass_once()
        assert len(calls) == 2 and compactor.released_at - first >= compactor.RELEASE_INTERVAL
        assert all(h.snapshot() == [LINE] * 1500 for h in quiet)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
