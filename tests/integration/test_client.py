"""The `logrouter` client commands and `logrouter shuttle` against a router process."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from tests.procs import AUTH_KEY, RouterProcess


def cli(router: RouterProcess, *args: str, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "LOGROUTER_URL": router.api_url, "LOGROUTER_AUTH_KEY": AUTH_KEY,
                **(env or {})}
    return subprocess.run([sys.executable, "-m", "logrouter", *args], input=stdin, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_apps_tokens_drains(router_proc: RouterProcess) -> None:
    assert cli(router_proc, "apps").stdout == "You have no apps.\n"
    created = cli(router_proc, "apps:create", "demo")
    assert created.returncode == 0 and created.stdout == "demo\n"
    assert cli(router_proc, "apps").stdout == "=== admin@logrouter.invalid Apps\n\ndemo\n"
    import json

    tokens = json.loads(cli(router_proc, "tokens", "-a", "demo", "--json").stdout)
    assert set(tokens) == {"app", "heroku"}
    plain = cli(router_proc, "tokens", "-a", "demo").stdout
    assert plain == f"app     {tokens['app']}\nheroku  {tokens['heroku']}\n"
    added = cli(router_proc, "drains:add", "syslog://logs.example.com", "-a", "demo")
    assert added.stdout == "Successfully added drain syslog://logs.example.com\n"
    listed = cli(router_proc, "drains", env={"LOGROUTER_APP": "demo"}).stdout
    assert listed.startswith("=== Drains\n\nsyslog://logs.example.com (d.")
    assert "; delivered 0, dropped 0" in listed.splitlines()[3]  # its health, where users look
    token = listed.split("(")[1].split(")")[0]
    status = json.loads(cli(router_proc, "drains", "-a", "demo", "--json").stdout)[0]["status"]
    assert {"connected", "delivered", "dropped", "last_error"} <= set(status)
    removed = cli(router_proc, "drains:remove", token, "-a", "demo")
    assert removed.stdout == "Successfully removed drain syslog://logs.example.com\n"
    bad = cli(router_proc, "drains:add", "ftp://x", "-a", "demo")
    assert bad.returncode == 1 and bad.stderr.startswith("logrouter: Url must be a valid")
    refused = cli(router_proc, "apps:destroy", "demo")
    assert refused.returncode == 1 and "--confirm demo" in refused.stderr
    assert cli(router_proc, "apps:destroy", "demo", "--confirm", "demo").returncode == 0
    unknown = cli(router_proc, "logs", "-a", "demo")
    assert (unknown.returncode, unknown.stderr) == (
        1, "logrouter: Couldn't find that app. (app 'demo')\n")


def test_clear_errors(router_proc: RouterProcess) -> None:
    bad_key = cli(router_proc, "apps", env={"LOGROUTER_AUTH_KEY": "wrong"})
    assert bad_key.returncode == 1 and "refused the auth key" in bad_key.stderr
    down = cli(router_proc, "apps", "--url", "http://127.0.0.1:1")
    assert down.returncode == 1 and "cannot reach the router at http://127.0.0.1:1" in down.stderr
    no_app = cli(router_proc, "logs")
    assert no_app.returncode == 1 and "use -a APP" in no_app.stderr


def test_shuttle_then_logs_in_order_with_long_lines(router_proc: RouterProcess) -> None:
    cli(router_proc, "apps:create", "shuttled")
    token = router_proc.api("GET", "/v3/channels/shuttled")["tokens"]["app"]
    program = "import sys\nfor i in range(300): print(f'line {i}')\nprint('x' * 25000)\nprint('end')"
    shipped = cli(router_proc, "shuttle", "--token", token, "--procid", "web.1", "--logs-url",
                  f"http://127.0.0.1:{router_proc.ports['logs']}/logs", "--",
                  sys.executable, "-c", program)
    assert shipped.returncode == 0, shipped.stderr
    out = cli(router_proc, "logs", "-a", "shuttled", "-n", "1000").stdout.splitlines()
    msgs = [line.split("app[web.1]: ", 1)[1] for line in out]
    assert msgs[:300] == [f"line {i}" for i in range(300)]
    assert [len(m) for m in msgs[300:303]] == [10000, 10000, 5000] and msgs[303] == "end"


def test_shuttle_survives_a_router_restart(router_proc: RouterProcess) -> None:
    cli(router_proc, "apps:create", "shuttled")
    token = router_proc.api("GET", "/v3/channels/shuttled")["tokens"]["app"]
    env = {**os.environ}
    proc = subprocess.Popen(
        [sys.executable, "-m", "logrouter", "shuttle", "--token", token, "--wait", "0.05",
         "--logs-url", f"http://127.0.0.1:{router_proc.ports['logs']}/logs"],
        stdin=subprocess.PIPE, env=env, text=True, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    for i in range(100):
        proc.stdin.write(f"before {i}\n")
    proc.stdin.flush()
    router_proc.wait_until(lambda: router_proc.history_count("shuttled") == 100)
    assert router_proc.stop() == 0
    for i in range(100):
        proc.stdin.write(f"during {i}\n")  # the router is down: the shuttle holds them
    proc.stdin.flush()
    wait_stderr(proc, "post failed (try 1)")
    router_proc.start()
    for i in range(100):
        proc.stdin.write(f"after {i}\n")
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    out = cli(router_proc, "logs", "-a", "shuttled", "-n", "1000").stdout.splitlines()
    msgs = [line.split("]: ", 1)[1] for line in out]
    expected = ([f"before {i}" for i in range(100)] + [f"during {i}" for i in range(100)]
                + [f"after {i}" for i in range(100)])
    assert msgs == expected


def test_logs_tail(router_proc: RouterProcess, tmp_path: Path) -> None:
    cli(router_proc, "apps:create", "tailed")
    token = router_proc.api("GET", "/v3/channels/tailed")["tokens"]["app"]
    env = {**os.environ, "LOGROUTER_URL": router_proc.api_url, "LOGROUTER_AUTH_KEY": AUTH_KEY,
           "PYTHONFAULTHANDLER": "1"}
    with open(tmp_path / "stderr", "w+") as stderr:
        tail = subprocess.Popen([sys.executable, "-m", "logrouter", "logs", "--tail", "-a", "tailed"],
                                env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            router_proc.wait_until(lambda: router_proc.metric("logrouter_tail_sessions") == 1)
            router_proc.post_lines(token, [("web.1", "2026-11-26T10:00:00.000000+00:00", "tailed line")])
            assert tail.stdout is not None
            ready, _, _ = select.select([tail.stdout], [], [], 5)
            assert ready
            assert tail.stdout.readline() == "2026-11-26T10:00:00.000000+00:00 app[web.1]: tailed line\n"
        finally:
            assert _interrupted(tail, stderr) == 0


def _interrupted(proc: subprocess.Popen[str], stderr: TextIO) -> int | None:
    """Ctrl-C ``proc`` as a user would; if it is still running 10 s later, fail with where it was
    (faulthandler prints every thread's stack on SIGABRT) and what it wrote to ``stderr``."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=10)
        stderr.seek(0)
        raise AssertionError(f"still running 10 s after SIGINT:\n{stderr.read()}") from None


def _shuttle(router: RouterProcess, token: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "logrouter", "shuttle", "--token", token, "--wait", "0.05",
         "--logs-url", f"http://127.0.0.1:{router.ports['logs']}/logs", *extra],
        stdin=subprocess.PIPE, text=True, stderr=subprocess.PIPE)


def wait_stderr(proc: subprocess.Popen[str], text: str, timeout: float = 10.0) -> str:
    """Read the process's stderr until a line contains ``text``; return what was read."""
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {text!r} on stderr after {timeout} s: {seen!r}"
        line = proc.stderr.readline()
        assert line, f"stderr closed before {text!r}: {seen!r}"
        seen += line
    return seen


def test_shuttle_reports_lost_batches_as_l13(router_proc: RouterProcess) -> None:
    cli(router_proc, "apps:create", "lossy")
    token = router_proc.api("GET", "/v3/channels/lossy")["tokens"]["app"]
    assert router_proc.stop() == 0
    proc = _shuttle(router_proc, token, "--max-attempts", "1")
    assert proc.stdin is not None
    proc.stdin.write("".join(f"gone {i}\n" for i in range(10)))
    proc.stdin.flush()
    wait_stderr(proc, "post failed (try 1)")  # the batch fails once and is given up on
    router_proc.start()
    proc.stdin.write("survivor\n")
    proc.stdin.close()
    assert proc.wait(timeout=30) == 1  # it lost lines: says so with its exit code
    out = cli(router_proc, "logs", "-a", "lossy").stdout
    assert "app[log-shuttle]: Error L13: 10 messages lost since " in out
    assert out.rstrip().endswith("survivor") and "gone 1" not in out


def test_shuttle_reports_its_own_buffer_overflow_as_l12(router_proc: RouterProcess) -> None:
    cli(router_proc, "apps:create", "full")
    token = router_proc.api("GET", "/v3/channels/full")["tokens"]["app"]
    assert router_proc.stop() == 0
    proc = _shuttle(router_proc, token, "--buffer-lines", "5", "--batch-size", "5",
                    "--max-attempts", "30")
    assert proc.stdin is not None
    proc.stdin.write("".join(f"first {i}\n" for i in range(5)))
    proc.stdin.flush()
    wait_stderr(proc, "post failed (try 1)")  # those five are in a batch that keeps failing
    proc.stdin.write("".join(f"more {i}\n" for i in range(20)))  # only the newest 5 fit
    proc.stdin.close()
    wait_stderr(proc, "post failed (try 2)")  # still failing after it read the 20
    router_proc.start()
    assert proc.wait(timeout=60) == 1  # it dropped lines: says so with its exit code
    lines = cli(router_proc, "logs", "-a", "full").stdout.splitlines()
    msgs = [x.split("]: ", 1)[1] for x in lines]
    assert msgs[:5] == [f"first {i}" for i in range(5)]
    assert msgs[5].startswith("Error L12: 15 messages dropped since ")
    assert msgs[6:] == [f"more {i}" for i in range(15, 20)]


def test_helpful_errors(router_proc: RouterProcess, tmp_path: Path) -> None:
    no_key = subprocess.run([sys.executable, "-m", "logrouter", "apps", "--url",
                             router_proc.api_url], cwd=tmp_path, capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("LOGROUTER_")}, timeout=30)
    assert no_key.returncode == 1 and "looked in --auth-key, LOGROUTER_AUTH_KEY" in no_key.stderr
    assert str(tmp_path / ".logrouter" / "auth_key") in no_key.stderr
    down = cli(router_proc, "apps", "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and "is `logrouter serve` running there?" in down.stderr
    off_terminal = cli(router_proc, "apps:destroy", "demo")
    assert "needs --confirm demo when it is not run on a terminal" in off_terminal.stderr


def test_top_shows_rates_per_app_and_drain(router_proc: RouterProcess) -> None:
    cli(router_proc, "apps:create", "busy")
    cli(router_proc, "drains:add", "syslog://192.0.2.1:514", "-a", "busy")
    token = router_proc.api("GET", "/v3/channels/busy")["tokens"]["app"]
    proc = subprocess.Popen([sys.executable, "-m", "logrouter", "top", "--once", "--interval", "1",
                             "--url", router_proc.api_url, "--auth-key", AUTH_KEY, "--no-color"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "160"})
    router_proc.post_lines(token, [("web.1", "2026-11-26T10:00:00.000000+00:00", f"m{i}")
                                   for i in range(500)])
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "lines/s in" in out and "busy" in out and "syslog://192.0.2.1:514" in out
    assert "\x1b[" not in out  # --no-color


def test_logs_ignores_a_retry_that_is_no_number() -> None:
    """The stream's ``retry:`` is the server's text: '²' (a digit to str.isdigit, not to int)
    ended ``logrouter logs`` with a traceback."""
    import http.server
    import threading

    class Fake(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"logplex_url": "http://127.0.0.1:%d/sessions/s1"}' % self.server.server_port
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            body = "retry: ²\n\ndata: 2026-11-29T10:00:00+00:00 app[web.1]: hi\n\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run([sys.executable, "-m", "logrouter", "logs", "-a", "demo", "--url",
                               f"http://127.0.0.1:{server.server_port}", "--auth-key", "k",
                               "--no-color"], capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert "hi" in done.stdout and "Traceback" not in done.stderr
