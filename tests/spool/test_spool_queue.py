"""SpoolQueue and Spooler on real files: order, eviction to disk, restarts, damage, the bound."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
import trio.testing

from logrouter.protocol.spoolfmt import Ledger, decode_records, encode_record
from logrouter.spool import Spooler, SpoolQueue, files
from tests.helpers import fill_disk, needs_native


def lines(start: int, n: int) -> list[bytes]:
    return [b"<190>1 2026-11-26T10:00:00+00:00 host app web.1 - - line %06d" % i
            for i in range(start, start + n)]


async def open_queue(path: Path, max_bytes: int = 1 << 30, memory_lines: int = 100,
                     ) -> tuple[SpoolQueue, Spooler]:
    q = SpoolQueue(str(path), max_bytes, memory_lines)
    await q.recover()
    spooler = Spooler()
    spooler.register(q)
    return q, spooler


async def drain_all(q: SpoolQueue, batch: int = 37) -> list[bytes]:
    out: list[bytes] = []
    while len(q):
        await q.ready()
        _, got = q.pop_batch(max_lines=batch)
        q.ack()
        out += got
    return out


def test_records_roundtrip_and_stop_at_damage() -> None:
    one, two, three = (encode_record(5, lines(0, 3)), encode_record(9, lines(3, 2)),
                       encode_record(20, lines(5, 4)))
    records, damage = decode_records(one + two + three)
    assert [(r.first, len(r.lines)) for r in records] == [(5, 3), (9, 2), (20, 4)] and not damage
    broken = bytearray(one + two + three)
    broken[len(one) + len(two) - 3] ^= 0xFF  # inside the second record's payload
    records, damage = decode_records(bytes(broken))
    assert [r.first for r in records] == [5, 20]  # the reader finds the record after it
    assert [(d.start, d.end, d.index, d.claimed) for d in damage] == [
        (len(one), len(one) + len(two), 1, 2)]
    records, damage = decode_records(one + two[:-1])  # torn last record
    assert len(records) == 1 and damage[0].claimed == 2 and damage[0].end == len(one + two) - 1


async def test_lines_survive_a_restart_in_order(tmp_path: Path) -> None:
    q, spooler = await open_queue(tmp_path)
    q.push_many(lines(0, 50))
    _, first = q.pop_batch(max_lines=10)
    q.ack()  # 10 delivered
    _, inflight = q.pop_batch(max_lines=5)  # in flight at the "crash": sent again
    await spooler.flush(everything=True)
    q2, _ = await open_queue(tmp_path)
    assert await drain_all(q2) == lines(10, 40)
    assert first == lines(0, 10) and inflight == lines(10, 5)


async def test_memory_stays_bounded_and_disk_lines_come_back(tmp_path: Path) -> None:
    q, spooler = await open_queue(tmp_path, memory_lines=20)
    for i in range(0, 1000, 50):
        q.push_many(lines(i, 50))
        await spooler.flush(everything=True)
        assert len(q._mem) <= 20 + 50
    assert q.disk_bytes > 0
    assert await drain_all(q) == lines(0, 1000)
    await spooler.flush(everything=True)
    assert q.disk_bytes == 0 and not [n for n in os.listdir(tmp_path) if n.endswith(".seg")]


async def test_unpop_after_a_partial_write_sends_the_rest_again(tmp_path: Path) -> None:
    q, spooler = await open_queue(tmp_path, memory_lines=10)
    q.push_many(lines(0, 30))
    await spooler.flush(everything=True)
    q.push_many(lines(30, 10))  # evicts the first lines: they come back from disk
    assert q._mem_seq > 0
    await q.ready()
    _, got = q.pop_batch(max_lines=8)
    assert got == lines(0, 8)
    q.unpop(None, got[3:])
    q.ack()
    assert await drain_all(q) == lines(3, 37)


async def test_delivered_lines_are_never_written(tmp_path: Path) -> None:
    q, spooler = await open_queue(tmp_path)
    q.push_many(lines(0, 100))
    await drain_all(q)
    await spooler.flush(everything=True)
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".seg")]


async def test_damaged_segment_is_read_up_to_the_damage_and_counted(tmp_path: Path) -> None:
    q, spooler = await open_queue(tmp_path, memory_lines=10)
    for i in range(0, 60, 20):
        q.push_many(lines(i, 20))
        await spooler.flush(everything=True)
    (seg,) = [tmp_path / n for n in os.listdir(tmp_path) if n.endswith(".seg")]
    data = bytearray(seg.read_bytes())
    cut = len(encode_record(0, lines(0, 20)))
    data[cut + 40] ^= 0xFF  # the second record (lines 20..39) is damaged
    seg.write_bytes(bytes(data))
    q2, _ = await open_queue(tmp_path)
    await q2.ready()
    loss, got = q2.pop_batch(max_lines=100)
    assert loss is not None and loss.count == 20  # the damaged record; the next one is read
    assert got == lines(0, 20) + lines(40, 20)
    q3, _ = await open_queue(tmp_path)  # repaired on open: the damage is counted once
    await q3.ready()
    loss, got = q3.pop_batch(max_lines=100)
    assert loss is None and got == lines(0, 20) + lines(40, 20)


async def test_the_bound_drops_the_oldest_and_reports_it(tmp_path: Path) -> None:
    q, spooler = await open_queue(tmp_path, max_bytes=200_000, memory_lines=100)
    for i in range(0, 10_000, 100):
        q.push_many(lines(i, 100))
        await spooler.flush(everything=True)
    assert q.disk_bytes <= 200_000 + q.segment_bytes
    await q.ready()
    loss, got = q.pop_batch(max_lines=100)
    assert loss is not None and loss.count > 0
    rest = got + await drain_all(q)
    assert rest == lines(10_000 - len(rest), len(rest))  # the newest survive, in order
    assert loss.count + len(rest) == 10_000


async def test_one_write_bigger_than_the_spool_keeps_only_its_newest_lines(
        tmp_path: Path) -> None:
    """Memory may hold more lines waiting for the disk than the whole spool takes (four times
    its size, or a burst and a round of ingest): written in one flush, they went over the
    bound by all of it (463,520 bytes in a 300,000-byte spool in an end-to-end test)."""
    q, spooler = await open_queue(tmp_path, max_bytes=100_000, memory_lines=1000)
    q.push_many(lines(0, 500))
    await spooler.flush(everything=True)  # older lines on disk first
    q.push_many(lines(500, 4000))  # ~280 KB of records
    await spooler.flush(everything=True)
    on_disk = sum(f.stat().st_size for f in tmp_path.glob("*.seg"))
    assert 0 < on_disk <= 100_000 and q.disk_bytes == on_disk
    await q.ready()
    loss, got = q.pop_batch(max_lines=100)
    assert loss is not None and loss.count > 0
    rest = got + await drain_all(q)
    assert rest == lines(4500 - len(rest), len(rest))  # the newest, in order: no hole
    assert loss.count + len(rest) == 4500


async def test_http_batch_in_flight_is_resumed_with_its_frame_id(tmp_path: Path) -> None:
    q, spooler = await open_queue(tmp_path)
    q.push_many(lines(0, 30))
    _, got = q.pop_batch(max_lines=12)
    q.begin_batch(len(got), "ABC123")
    await spooler.flush(everything=True)
    q2, _ = await open_queue(tmp_path)
    assert q2.resume == (12, "ABC123")


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 10, b"not a ledger"])
async def test_bad_ledger_or_empty_files_do_not_stop_opening(tmp_path: Path, garbage: bytes) -> None:
    (tmp_path / "ledger.json").write_bytes(garbage)
    (tmp_path / "00000000000000000000.seg").write_bytes(garbage)
    q, _ = await open_queue(tmp_path)
    assert len(q) == 0


async def test_a_queue_over_its_memory_wakes_the_spooler_every_time(tmp_path: Path) -> None:
    """Memory pressure flushes at once, not at the next tick, on every occasion (not only
    the first: the wake-up must reach the spooler's current event)."""
    import trio

    spooler = Spooler(flush_interval=30.0)
    q = SpoolQueue(str(tmp_path), 1 << 30, 100, wants_flush=spooler.wake)
    await q.recover()
    spooler.register(q)
    async with trio.open_nursery() as nursery:
        await nursery.start(spooler.run)
        for round_ in range(3):
            q.push_many(lines(round_ * 1000, 1000))  # ten times its memory: it asks for a flush
            with trio.fail_after(5):  # well before the 30 s tick
                while not q.disk_bytes or len(q._mem) > 100:  # type: ignore[attr-defined]
                    await trio.sleep(0.01)
            assert len(q._mem) <= 100  # type: ignore[attr-defined]
        nursery.cancel_scope.cancel()


@needs_native
async def test_the_spool_s_lines_in_memory_are_not_walked_by_the_garbage_collector(
        tmp_path: Path) -> None:
    import gc

    q, _ = await open_queue(tmp_path)
    q.push_many(lines(0, 10))
    assert not gc.is_tracked(q._mem)


async def test_lines_memory_drops_while_their_record_is_written_are_not_counted_lost(
        tmp_path: Path) -> None:
    """Memory overflows while the spooler is writing: of the lines it evicts, those in the
    record being written reach the disk and the drain, and only the others count lost."""
    q = SpoolQueue(str(tmp_path), 1 << 30, 10, memory_cap=40)
    await q.recover()
    spooler = Spooler()
    spooler.register(q)
    q.push_many(lines(0, 30))  # over memory_lines: the next flush writes all 30
    async with trio.open_nursery() as nursery:
        nursery.start_soon(spooler.flush)
        await trio.testing.wait_all_tasks_blocked()  # the record is in a worker thread
        assert q.push_many(lines(30, 70)) == 30  # 60 evicted: 0-29 are being written
    assert q.lost == 30
    assert await drain_all(q) == lines(0, 30) + lines(60, 40)


async def test_a_failed_write_loses_what_memory_dropped_meanwhile(tmp_path: Path) -> None:
    """The same, but the write fails (the spool's directory is gone): the lines of the record
    that memory dropped meanwhile are counted lost then, and its other lines are written
    again by a later flush once the directory is back."""
    spool = tmp_path / "spool"
    spool.mkdir()
    q = SpoolQueue(str(spool), 1 << 30, 10, memory_cap=40)
    await q.recover()
    spooler = Spooler(write_retry=0.2)
    spooler.register(q)
    q.push_many(lines(0, 30))
    spool.rmdir()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(spooler.flush)
        await trio.testing.wait_all_tasks_blocked()
        q.push_many(lines(30, 25))  # 15 evicted, all of the record being written
    assert q.lost == 15
    spool.mkdir()
    await spooler.flush()  # within write_retry of the failure: nothing tried
    assert not list(spool.glob("*.seg"))
    await trio.sleep(0.25)
    await spooler.flush()
    assert [p.name for p in spool.glob("*.seg")]
    assert await drain_all(q) == lines(15, 40)


def test_the_ledger_is_written_in_place_on_a_full_disk(small_disk: Path) -> None:
    """With no room for the temporary file of an atomic replace, the ledger is overwritten
    where it is (its block is already the file's): a stopping node's loss count still
    reaches the next run."""
    directory = str(small_disk)
    files.write_ledger(directory, Ledger(5, None, None), sync=True)
    fill_disk(small_disk)
    with pytest.raises(OSError):
        files.append(str(small_disk / "more.seg"), b"x" * 65536, sync=False)
    files.write_ledger(directory, Ledger(7, None, (1234, 1.5)), sync=True)
    assert files.scan(directory).ledger == Ledger(7, None, (1234, 1.5))
    assert not (small_disk / "more.seg").exists() and not (small_disk / "ledger.json.tmp").exists()
