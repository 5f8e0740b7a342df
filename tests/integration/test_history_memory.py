"""History under memory pressure, in a real `logrouter serve` process (the allocator's state
and the event loop's turns are its own): a node far over its raw budget compresses busy
channels in catch-up trips and serves them exactly; it gives the memory of a compressed
burst back to the kernel and goes on serving exactly what it held."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from logrouter.protocol.speedups import native
from tests.procs import RouterProcess

pytestmark = pytest.mark.skipif(native is None, reason="C speed-ups not built")

APPS = 100
LINES = 1600  # more than the 1,500 a history keeps: 160,000 lines in, 150,000 kept
RELEASED = re.compile(r"at=memory_released bytes=(\d+)")


@contextmanager
def serving(tmp_path: Path, env: dict[str, str]) -> Iterator[RouterProcess]:
    """A started router with ``env``; once the block is done it must stop cleanly (exit 0,
    no traceback in its log)."""
    proc = RouterProcess(tmp_path / "data", env=env)
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
    assert code == 0
    assert "Traceback" not in proc.log_path.read_text()


def make_apps(proc: RouterProcess, prefix: str) -> tuple[list[str], list[str]]:
    """``APPS`` channels with a token each: their ids and tokens."""
    channels = [proc.api("POST", "/channels", {"name": f"{prefix}{i}", "tokens": ["app"]})
                for i in range(APPS)]
    return [str(c["channel_id"]) for c in channels], [c["tokens"]["app"] for c in channels]


def burst(proc: RouterProcess, tokens: list[str], tag: str) -> None:
    with socket.create_connection(("127.0.0.1", proc.ports["syslog"])) as sock:
        for n in range(LINES):
            frames = []
            for app, token in enumerate(tokens):
                f = (f"<190>1 2026-11-28T10:00:00.000000+00:00 host {token} web.1 - - "
                     f"{tag} {app} {n} {'x' * (n % 120)}").encode()
                frames.append(b"%d %s" % (len(f), f))
            sock.sendall(b"".join(frames))


def history(proc: RouterProcess, cid: str) -> list[str]:
    session = proc.api("POST", "/v2/sessions", {"channel_id": cid, "num": "1500"})
    text = httpx.get(session["url"], timeout=30).text
    return [line.split("]: ", 1)[1] for line in text.splitlines()]


def expected(tag: str, app: int) -> list[str]:
    return [f"{tag} {app} {n} {'x' * (n % 120)}" for n in range(LINES - 1500, LINES)]


def releases(proc: RouterProcess) -> list[int]:
    return [int(m.group(1)) for m in RELEASED.finditer(proc.log_path.read_text())]


def test_a_compressed_burst_is_given_back_and_the_node_serves_on(tmp_path: Path) -> None:
    env = {"LOGROUTER_HISTORY_COMPACT_AFTER": "1", "LOGROUTER_LOG_LEVEL": "info"}
    with serving(tmp_path, env) as proc:
        cids, tokens = make_apps(proc, "m")
        burst(proc, tokens, "first")
        proc.wait_until(lambda: len(releases(proc)) >= 1, timeout=60)
        assert releases(proc)[0] > 8 << 20  # of ~37 MB of lines (kept arenas, empty pools)
        for app in (0, APPS // 2, APPS - 1):
            assert history(proc, cids[app]) == expected("first", app)
        burst(proc, tokens, "second")  # into the pools given back
        for app in range(APPS):
            assert history(proc, cids[app]) == expected("second", app)


def test_far_over_the_raw_budget_busy_histories_are_compressed_and_exact(tmp_path: Path) -> None:
    """160,000 lines (~30 MB raw) against a 200 kB budget: past 16 times it the compactor
    catches up in big trips (here one); nothing is quiet, so every chunk is a busy one, made
    while lines keep arriving."""
    budget = 200_000
    env = {"LOGROUTER_HISTORY_COMPACT_AFTER": "0", "LOGROUTER_HISTORY_RAW_BYTES": str(budget)}
    with serving(tmp_path, env) as proc:
        cids, tokens = make_apps(proc, "b")
        burst(proc, tokens, "busy")
        proc.wait_until(lambda: proc.metric("logrouter_history_lines") == APPS * 1500,
                        timeout=60)
        proc.wait_until(lambda: proc.metric("logrouter_history_raw_lines") * 200 < budget,
                        timeout=60)
        assert proc.metric("logrouter_history_compressed_bytes") > 0
        for app in range(APPS):
            assert history(proc, cids[app]) == expected("busy", app)
