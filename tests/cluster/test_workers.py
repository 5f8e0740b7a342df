"""`logrouter serve --workers 2` on Redis: shared ports, shared state, supervision."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.cluster.conftest import RedisServer
from tests.helpers import frame


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def test_two_workers_share_ports_and_state_and_restart(redis_server: RedisServer, tmp_path: Path) -> None:
    env = {**os.environ, "LOGROUTER_AUTH_KEY": "wk", "LOGROUTER_REDIS_URL": redis_server.url}
    errors = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "logrouter", "serve", "--workers", "2", "--bind", "127.0.0.1",
         "--syslog-port", "0", "--logs-port", "0", "--api-port", "0", "--data-dir", str(tmp_path / "d")],
        env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert proc.stdout is not None
        ports = {}
        while len(ports) < 3:
            line = proc.stdout.readline()
            assert line, (tmp_path / "stderr.txt").read_text()
            if line.startswith("listening "):
                ports[line.split()[1]] = int(line.split()[3].rsplit(":", 1)[1])
        deadline = time.monotonic() + 10
        while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = children(proc.pid)
        assert len(workers) == 2

        def api(method: str, path: str, body: object = None) -> object:
            resp = httpx.request(method, f"http://127.0.0.1:{ports['api']}{path}", timeout=5,
                                 content=json.dumps(body) if body is not None else None,
                                 headers={"Authorization": "Bearer wk"})
            resp.raise_for_status()
            return resp.json() if resp.content else None

        created = api("POST", "/channels", {"name": "w", "tokens": ["app"]})
        assert isinstance(created, dict)
        token = created["tokens"]["app"]
        # Both workers know the channel: 20 API calls in a row on new connections (spread over
        # the workers by the kernel) all find it.
        deadline = time.monotonic() + 10
        streak = 0
        while streak < 20 and time.monotonic() < deadline:
            try:
                api("GET", f"/v2/channels/{created['channel_id']}")
                streak += 1
            except httpx.HTTPStatusError:
                streak = 0
                time.sleep(0.05)
        assert streak == 20

        for i in range(40):  # connections spread over both workers by the kernel
            with socket.create_connection(("127.0.0.1", ports["syslog"])) as s:
                f = frame(token, f"conn {i}")
                s.sendall(b"%d %s" % (len(f), f))

        def history() -> str:
            sess = api("POST", "/v2/sessions", {"channel_id": str(created["channel_id"]), "num": "100"})
            assert isinstance(sess, dict)
            return httpx.get(sess["url"], timeout=5).text

        deadline = time.monotonic() + 15
        while history().count("\n") < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert history().count("\n") == 40

        os.kill(workers[0], signal.SIGKILL)  # a crashed worker is restarted
        log = tmp_path / "stderr.txt"
        deadline = time.monotonic() + 20
        while log.read_text().count("at=worker_start") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.read_text().count("at=worker_start") == 3, log.read_text()[-3000:]
        live: list[int] = []
        while time.monotonic() < deadline:
            live = children(proc.pid)
            if len(live) == 2 and workers[0] not in live:
                break
            time.sleep(0.05)
        assert len(live) == 2 and workers[0] not in live, (live, log.read_text()[-3000:])
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        errors.close()
    assert code == 0
    assert "at=worker_exit worker=" in (tmp_path / "stderr.txt").read_text()


def test_a_hangup_stops_the_workers_with_their_supervisor(redis_server: RedisServer,
                                                           tmp_path: Path) -> None:
    """SIGHUP to the supervisor ended it at once and left its workers running, orphaned,
    holding the ports. It stops the workers and then itself, as SIGTERM does."""
    env = {**os.environ, "LOGROUTER_AUTH_KEY": "wk", "LOGROUTER_REDIS_URL": redis_server.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "logrouter", "serve", "--workers", "2", "--bind", "127.0.0.1",
         "--syslog-port", "0", "--logs-port", "0", "--api-port", "0", "--data-dir", str(tmp_path / "d")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = children(proc.pid)
            time.sleep(0.05)
        assert len(workers) == 2
        time.sleep(1.0)  # the workers are up and handling signals
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=20) == 0
        assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
    finally:
        for pid in workers:
            if os.path.exists(f"/proc/{pid}"):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_workers_without_redis_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGROUTER_")}
    result = subprocess.run([sys.executable, "-m", "logrouter", "serve", "--workers", "2"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "workers > 1 needs redis_url" in result.stderr
