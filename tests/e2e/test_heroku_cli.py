"""The real Heroku CLI (heroku@11.10.0) against a running router."""

from __future__ import annotations

import os
import select
import signal
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import RedisServer
from tests.e2e.conftest import LINE, Heroku
from tests.procs import RouterProcess

pytestmark = pytest.mark.e2e


def make_app(heroku: Heroku, router: RouterProcess, name: str = "demo") -> str:
    result = heroku.run("apps:create", name, "--no-remote")
    assert result.returncode == 0, result.stderr
    assert f"/{name}.git" in result.stdout
    token: str = router.api("GET", f"/v3/channels/{name}")["tokens"]["app"]
    return token


def seed(router: RouterProcess, token: str, heroku_token: str) -> None:
    lines = [(f"web.{1 + i % 2}", f"2026-11-26T10:00:{i:02d}.000000+00:00", f"line {i}")
             for i in range(12)]
    lines.append(("worker.1", "2026-11-26T10:00:30.000000+00:00", "worker line"))
    router.post_lines(token, lines)
    router.post_lines(heroku_token, [("router", "2026-11-26T10:00:31.000000+00:00", "at=info status=200")])


def test_apps_create_list_destroy(heroku: Heroku, router_proc: RouterProcess) -> None:
    make_app(heroku, router_proc)
    listed = heroku.run("apps")
    assert listed.returncode == 0 and "=== admin@logrouter.invalid Apps" in listed.stdout
    assert "\ndemo\n" in listed.stdout
    dup = heroku.run("apps:create", "demo", "--no-remote")
    assert dup.returncode == 2 and "Name demo is already taken" in dup.stderr
    gone = heroku.run("apps:destroy", "demo", "--confirm", "demo")
    assert gone.returncode == 0
    missing = heroku.run("logs", "-a", "demo")
    assert missing.returncode == 2 and "Couldn't find that app." in missing.stderr


def test_logs_with_filters(heroku: Heroku, router_proc: RouterProcess) -> None:
    token = make_app(heroku, router_proc)
    heroku_token = router_proc.api("GET", "/v3/channels/demo")["tokens"]["heroku"]
    seed(router_proc, token, heroku_token)
    started = time.monotonic()
    result = heroku.run("logs", "-a", "demo")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 5  # retry: 100 lets the CLI exit at once
    lines = result.stdout.splitlines()
    assert len(lines) == 14
    assert lines[0] == "2026-11-26T10:00:00.000000+00:00 app[web.1]: line 0"
    assert lines[-1] == "2026-11-26T10:00:31.000000+00:00 heroku[router]: at=info status=200"

    result = heroku.run("logs", "-n", "5", "--dyno", "web.1", "--source", "app", "-a", "demo")
    parsed = [LINE.match(x) for x in result.stdout.splitlines()]
    assert len(parsed) == 5 and all(m and m.group(1) == "app" and m.group(2) == "web.1" for m in parsed)
    assert parsed[-1] and parsed[-1].group(3) == "line 10"

    result = heroku.run("logs", "-p", "web", "-n", "2", "-a", "demo")
    assert [x.split(": ", 1)[1] for x in result.stdout.splitlines()] == ["line 10", "line 11"]


def read_until(proc, needle: str, timeout: float) -> str:  # type: ignore[no-untyped-def]
    """Read the CLI's stdout until ``needle`` appears (raises on timeout)."""
    out = ""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while needle not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in {timeout}s; got {out!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536).decode()
            assert chunk, f"CLI exited: {out!r} {proc.stderr.read()!r}"
            out += chunk
    return out


def tail_through_a_restart(heroku: Heroku, router: RouterProcess, live_within: float,
                           resume_within: float) -> None:
    """`heroku logs --tail` shows a live line within ``live_within`` s, then, after the router
    restarts, resumes after the last line it showed instead of repeating the backlog."""
    token = make_app(heroku, router)
    router.post_lines(token, [("web.1", "2026-11-26T10:00:00.000000+00:00", "backlog")])
    tail = heroku.popen("logs", "--tail", "-a", "demo", "-n", "1")
    try:
        read_until(tail, "backlog", 20)
        sent = time.monotonic()
        router.post_lines(token, [("web.1", "2026-11-26T10:00:01.000000+00:00", "live one")])
        read_until(tail, "live one", live_within)
        assert time.monotonic() - sent < live_within
        assert router.stop() == 0
        router.start()
        router.post_lines(token, [("web.2", "2026-11-26T10:00:02.000000+00:00", "after restart")])
        out = read_until(tail, "after restart", resume_within)
        assert "backlog" not in out and "live one" not in out  # resumed, not repeated
    finally:
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout=10)


def test_logs_tail_live_lines_and_restart(heroku: Heroku, router_proc: RouterProcess) -> None:
    tail_through_a_restart(heroku, router_proc, live_within=1.0, resume_within=15)


def test_logs_tail_resumes_across_a_cluster_restart(heroku_bin: Path, tmp_path: Path) -> None:
    """`--workers 2` on Redis: history comes from Redis and SSE ids from the lines, so the CLI's
    reconnect after every worker restarted resumes after the last line it showed."""
    redis = RedisServer(tmp_path)
    redis.start()
    router = RouterProcess(tmp_path / "data", {"LOGROUTER_REDIS_URL": redis.url, "LOGROUTER_WORKERS": "2"})
    router.start()
    work = tmp_path / "work"
    work.mkdir()
    try:
        tail_through_a_restart(Heroku(heroku_bin, router, work), router, live_within=5.0,
                               resume_within=20)
    finally:
        if router.proc is not None:
            router.stop()
        redis.stop()


def test_drains_add_list_remove(heroku: Heroku, router_proc: RouterProcess) -> None:
    make_app(heroku, router_proc)
    added = heroku.run("drains:add", "syslog+tls://logs.example.com:6514", "-a", "demo")
    assert added.returncode == 0 and added.stdout.strip() == (
        "Successfully added drain syslog+tls://logs.example.com:6514")
    heroku.run("drains:add", "https://user:pass@example.com/logs", "-a", "demo")
    listed = heroku.run("drains", "-a", "demo")
    drains = router_proc.api("GET", "/apps/demo/log-drains")
    assert listed.stdout == "=== Drains\n\n" + "".join(f"{d['url']} ({d['token']})\n" for d in drains)
    bad = heroku.run("drains:add", "ftp://nope", "-a", "demo")
    assert bad.returncode == 2 and "Error ID: invalid_params" in bad.stderr
    dup = heroku.run("drains:add", "https://user:pass@example.com/logs", "-a", "demo")
    assert dup.returncode == 2 and "already been taken" in dup.stderr
    removed = heroku.run("drains:remove", "syslog+tls://logs.example.com:6514", "-a", "demo")
    assert removed.stdout.strip() == "Successfully removed drain syslog+tls://logs.example.com:6514"
    removed = heroku.run("drains:remove", drains[1]["token"], "-a", "demo")
    assert removed.returncode == 0 and "https://user:pass@example.com/logs" in removed.stdout
    assert heroku.run("drains", "-a", "demo").stdout == ""
    missing = heroku.run("drains:remove", "syslog://nope.example.com", "-a", "demo")
    assert missing.returncode == 2 and "Couldn't find that log drain." in missing.stderr
