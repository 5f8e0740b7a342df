"""`logrouter serve` as a user runs it: a real process, real `logger`, real signals."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import basic

pytestmark = pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger missing")


def start(cwd: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, int], str]:
    env = {**os.environ, "LOGROUTER_BIND": "127.0.0.1", "LOGROUTER_SYSLOG_PORT": "0",
           "LOGROUTER_LOGS_PORT": "0", "LOGROUTER_API_PORT": "0", **env_extra}
    env.pop("LOGROUTER_AUTH_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "logrouter", "serve"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ports: dict[str, int] = {}
    key = ""
    assert proc.stdout is not None
    while len(ports) < 3:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        m = re.fullmatch(r"listening (\w+) (tcp|http) 127\.0\.0\.1:(\d+)\n", line)
        if m:
            ports[m.group(1)] = int(m.group(3))
        elif line.startswith("auth_key "):
            key = line.split()[1]
        elif line.startswith("auth_key_kept "):
            key = "(kept)"
    return proc, ports, key


def curl(*args: str) -> str:
    return subprocess.run(["curl", "-sS", "--max-time", "5", *args], check=True,
                          capture_output=True, text=True).stdout


def app_with_a_line(ports: dict[str, int], key: str, name: str, message: str) -> dict[str, Any]:
    """Create app ``name`` over the API and send it ``message`` with `logger`; return what the
    API answered (``channel_id``, ``tokens``)."""
    created: dict[str, Any] = json.loads(curl(
        "-H", f"Authorization: Bearer {key}", "-X", "POST",
        f"http://127.0.0.1:{ports['api']}/channels", "-d", json.dumps({"name": name, "tokens": ["app"]})))
    subprocess.run(["logger", "--tcp", "--octet-count", "--rfc5424", "-n", "127.0.0.1",
                    "-P", str(ports["syslog"]), "-t", created["tokens"]["app"], message], check=True)
    return created


def session_text(ports: dict[str, int], key: str, channel_id: object) -> str:
    """What a new (non-tail) log session of the channel reads."""
    session = json.loads(curl("-H", f"Authorization: Bearer {key}", "-X", "POST",
                              f"http://127.0.0.1:{ports['api']}/v2/sessions", "-d",
                              json.dumps({"channel_id": str(channel_id)})))
    return curl(session["url"])


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl missing")
def test_fresh_start_logger_readback_sigterm_and_restart(tmp_path: Path) -> None:
    proc, ports, key = start(tmp_path, {})
    try:
        assert key and (tmp_path / ".logrouter" / "auth_key").read_text().strip() == key
        api = f"http://127.0.0.1:{ports['api']}"
        out = curl("-H", f"Authorization: {basic('', key)}", "-X", "POST", f"{api}/channels",
                   "-d", '{"name":"demo","tokens":["app"]}')
        created = json.loads(out)
        token = created["tokens"]["app"]
        subprocess.run(["logger", "--tcp", "--octet-count", "--rfc5424", "-n", "127.0.0.1",
                        "-P", str(ports["syslog"]), "-t", token, "hello from logger"], check=True)
        session = json.loads(curl("-H", f"Authorization: Bearer {key}", "-X", "POST",
                                  f"{api}/v2/sessions", "-d",
                                  json.dumps({"channel_id": str(created["channel_id"])})))
        deadline = time.monotonic() + 5
        body = ""
        while "hello from logger" not in body and time.monotonic() < deadline:
            body = curl(session["url"])
        assert re.search(r"^\S+ app\[-\]: hello from logger$", body, re.M), body
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    assert code == 0 and time.monotonic() - started < 10
    assert (tmp_path / ".logrouter" / "history.msgpack").stat().st_size > 10

    proc, ports, key2 = start(tmp_path, {})
    try:
        assert key2 == "(kept)"  # generated and shown once; later starts say where it is kept
        shown = subprocess.run([sys.executable, "-m", "logrouter", "key"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0 and shown.stdout.strip() == key
        assert "hello from logger" in session_text(ports, key, created["channel_id"])
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    assert proc.stderr is not None
    # what start-up loaded is out of the collector's full collections (Node._settle_heap)
    assert re.search(r"at=heap_frozen objects=\d+", proc.stderr.read())


def test_a_hangup_stops_the_node_as_sigterm_does(tmp_path: Path) -> None:
    """SIGHUP (the terminal or SSH session `logrouter serve` ran in went away, `kill -HUP`)
    ended the process at once: no history saved, drains not flushed. It is a graceful stop."""
    proc, ports, key = start(tmp_path, {})
    try:
        app_with_a_line(ports, key, "hup", "before the hangup")
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGHUP)
        code = proc.wait(timeout=15)
    assert code == 0
    assert b"before the hangup" in (tmp_path / ".logrouter" / "history.msgpack").read_bytes()


def test_history_saved_while_running_survives_a_kill(tmp_path: Path) -> None:
    """History was saved only at a graceful stop: a `kill -9`, an OOM kill or a power cut lost
    every app's history since the start. It is saved every `history_save_interval` too."""
    proc, ports, key = start(tmp_path, {"LOGROUTER_HISTORY_SAVE_INTERVAL": "0.5"})
    try:
        created = app_with_a_line(ports, key, "killed", "before the kill")
        saved = tmp_path / ".logrouter" / "history.msgpack"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
                saved.exists() and b"before the kill" in saved.read_bytes()):
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(timeout=15)

    proc, ports, _ = start(tmp_path, {})
    try:
        assert "before the kill" in session_text(ports, key, created["channel_id"])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_bad_settings_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "logrouter", "serve", "--syslog-port", "x"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "syslog_port must be int" in result.stderr


def test_port_in_use_names_the_setting_and_flag(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "logrouter", "serve", "--bind", "127.0.0.1", "--syslog-port",
             "0", "--logs-port", "0", "--api-port", str(port)],
            cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--api-port" in result.stderr and "LOGROUTER_API_PORT" in result.stderr
