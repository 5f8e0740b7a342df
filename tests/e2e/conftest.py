"""End-to-end fixtures: a `logrouter serve` process and the real Heroku CLI from npm.

The CLI (heroku@11.10.0, pinned) is installed on first use into a cache folder
outside the repository: ``$LOGROUTER_TEST_CACHE`` or ``~/.cache/logrouter-tests``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HEROKU_VERSION = "11.10.0"
AUTH_KEY = "e2e-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RouterProcess:
    """`logrouter serve` on fixed loopback ports, restartable with the same data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {"syslog": free_port(), "logs": free_port(), "api": free_port()}
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {**os.environ, "LOGROUTER_BIND": "127.0.0.1", "LOGROUTER_AUTH_KEY": AUTH_KEY,
               "LOGROUTER_DATA_DIR": str(self.data_dir),
               "LOGROUTER_SYSLOG_PORT": str(self.ports["syslog"]),
               "LOGROUTER_LOGS_PORT": str(self.ports["logs"]),
               "LOGROUTER_API_PORT": str(self.ports["api"])}
        self.proc = subprocess.Popen([sys.executable, "-m", "logrouter", "serve"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        seen = 0
        while seen < 3:
            line = self.proc.stdout.readline()
            assert line, "router exited during start-up"
            seen += line.startswith("listening ")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self.proc = None
        return code

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.ports["api"], timeout=10)
        conn.request(method, path, json.dumps(body) if body is not None else None,
                     {"Authorization": f"Bearer {AUTH_KEY}"})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return json.loads(data) if data else None

    def post_lines(self, token: str, lines: list[tuple[str, str, str]]) -> None:
        """POST (procid, ts, msg) lines with the token's credentials."""
        frames = []
        for procid, ts, msg in lines:
            f = f"<190>1 {ts} host {token} {procid} - - {msg}\n".encode()
            frames.append(b"%d %s" % (len(f), f))
        conn = http.client.HTTPConnection("127.0.0.1", self.ports["logs"], timeout=10)
        conn.request("POST", "/logs", b"".join(frames),
                     {"Content-Type": "application/logplex-1", "Authorization": f"Bearer {token}"})
        assert conn.getresponse().status == 204
        conn.close()


@pytest.fixture
def router_proc(tmp_path: Path) -> Iterator[RouterProcess]:
    r = RouterProcess(tmp_path / "data")
    r.start()
    yield r
    if r.proc is not None:
        r.stop()


def _cache_dir() -> Path:
    base = os.environ.get("LOGROUTER_TEST_CACHE") or os.path.expanduser("~/.cache/logrouter-tests")
    return Path(base) / f"heroku-{HEROKU_VERSION}"


@pytest.fixture(scope="session")
def heroku_bin() -> Path:
    """The heroku CLI, installed with npm into the cache folder when missing."""
    folder = _cache_dir()
    binary = folder / "node_modules" / ".bin" / "heroku"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to install the Heroku CLI for the end-to-end tests")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private":true}\n')
    subprocess.run([npm, "install", "--no-audit", "--no-fund", f"heroku@{HEROKU_VERSION}"],
                   cwd=folder, check=True, timeout=900, capture_output=True)
    assert binary.exists()
    return binary


class Heroku:
    """Runs the real CLI against a router, hermetic and quiet (see shared spec, §8)."""

    def __init__(self, binary: Path, router: RouterProcess, workdir: Path) -> None:
        home = binary.parent.parent.parent / "home"
        (home / ".cache" / "heroku").mkdir(parents=True, exist_ok=True)
        (home / ".cache" / "heroku" / "terms-of-service").touch()
        self.binary = binary
        self.workdir = workdir
        self.env = {
            "PATH": f"{binary.parent}:{os.environ.get('PATH', '')}", "HOME": str(home),
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"), "DISABLE_TELEMETRY": "true",
            "HEROKU_SKIP_ANALYTICS": "1", "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
            "HEROKU_DISABLE_AUTOUPDATE": "1", "NO_PROXY": "127.0.0.1,localhost",
            "HEROKU_HOST": router.api_url, "HEROKU_API_KEY": AUTH_KEY,
            "HEROKU_PARTICLEBOARD_URL": router.api_url,
        }

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.binary), *args], env=self.env, cwd=self.workdir,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(self.binary), *args], env=self.env, cwd=self.workdir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)


@pytest.fixture
def heroku(heroku_bin: Path, router_proc: RouterProcess, tmp_path: Path) -> Heroku:
    work = tmp_path / "work"
    work.mkdir()
    return Heroku(heroku_bin, router_proc, work)


LINE = re.compile(r"^\S+ (\w[\w-]*)\[([\w.-]+)\]: (.*)$")
