"""Benchmark runner: start a router, provision apps, drive a scenario, print one result line.

    python bench/run.py S1 [-n 1000000] [-s 150] [--rate R] [--sink-rate R] [--runs 3]
        [--apps 100] [--drains N] [--tails 100] [--payload pad|mixed] [--json-out F] [--cold]
        [--prefill N]

Scenarios (1 M lines of ~150 bytes unless -n says otherwise):
  S1  relay: 4 TCP connections, 100 apps, each with a syslog drain to the sink, history on
  S2  HTTP ingest: 16 keep-alive connections, 100 lines per POST, history on, no drains
  S3  TCP in → HTTPS drain out (100 apps, one HTTPS drain each, local CA)
  S4  tail fan-out: 1 app, 100 live SSE tails (--tails), 4 TCP connections in
  S5  S1 with --workers 2 on its own redis-server (drains cold: each worker has its own)
  S1-tls  S1 with syslog+tls drains (local CA)
  S6  S1 with the disk spool on (drain_spool_bytes = 1 GiB), receivers up: the spool's cost
  S6-outage  the spool through an outage: 100 apps' drains to a receiver that is down while
      --rate lines/s (default 50,000) arrive for --outage seconds (60), then comes up: the time
      to deliver the backlog, the router's peak RSS (sampled), lines lost (drain back-off capped
      at 5 s so the drains notice the receiver within seconds)
  H   history fill: --apps apps each get 1,500 lines (-n is ignored), the first 100 with a
      syslog drain to sample latency; then, once every channel is quiet and compressed (at
      most 60 s), the settled RSS and the history's gauges (raw lines, compressed bytes):
      what holding every app's full history costs

--apps, --drains (how many of the apps get a drain), --tails and -s (message bytes) scale
the scenarios; ``bench/scale.py`` sweeps them.

Result fields: lines/s (sink's count ÷ first send → last delivery), MB/s of input, router CPU µs
per line (utime+stime from /proc, summed over the router's process tree and, for S5, Redis),
peak RSS (VmHWM, summed the same way), p50/p99 send→delivery latency (sampled),
lost = sent - delivered, the losses the router reported as L10, and (``waited_s``) the seconds
ingest connections spent waiting for drains to make room, summed. Drain scenarios first send
one line per app and wait until each drain delivered it (drains connect on their first line),
so the run measures the relay, not 100 handshakes; ``--cold`` skips that.

The router gets this process's environment, so any setting can be given as its ``LOGROUTER_*``
variable (e.g. ``LOGROUTER_REDIS_URL=redis://127.0.0.1:6379 python bench/run.py S1`` for cluster
mode, ``LOGROUTER_PURE_PYTHON=1`` for the pure-Python hot path); the runner itself sets only the
ports, bind address, data directory, API key and log level.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
KEY = "bench-key"
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` used so far, summed."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK


def status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``); 0 when absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_rss_kb(pid: int) -> int:
    return status_kb(pid, "VmHWM")


def tree_rss_kb(pid: int) -> int:
    """The RSS of ``pid`` and its descendants now (a process that just ended counts 0)."""
    total = 0
    for p in process_tree(pid):
        try:
            total += status_kb(p, "VmRSS")
        except OSError:
            pass
    return total


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (``--workers`` children)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            pids += process_tree(int(child))
    return pids


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    """A throw-away redis-server on a free loopback port; returns it and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = shutil.which("redis-server") or "redis-server"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


RECEIVED = 'logrouter_messages_received_total{transport="syslog_tcp"}'
#: Seconds ingest connections spent waiting for drains to make room (summed over connections).
WAITED = "logrouter_ingest_backpressure_seconds_total"


class Router:
    def __init__(self, extra_env: dict[str, str], data_dir: str | None = None) -> None:
        """A router on a fresh temporary data directory (removed by :meth:`stop`), or on
        ``data_dir``, which it leaves as it is."""
        self.keep_dir = data_dir is not None
        self.dir = data_dir if data_dir is not None else tempfile.mkdtemp(prefix="lr-bench-")
        env = {**os.environ, "LOGROUTER_BIND": "127.0.0.1", "LOGROUTER_SYSLOG_PORT": "0",
               "LOGROUTER_LOGS_PORT": "0", "LOGROUTER_API_PORT": "0", "LOGROUTER_AUTH_KEY": KEY,
               "LOGROUTER_DATA_DIR": self.dir,
               "LOGROUTER_LOG_LEVEL": os.environ.get("LOGROUTER_LOG_LEVEL", "error"), **extra_env}
        self.proc = subprocess.Popen([PY, "-m", "logrouter", "serve"], env=env, cwd=ROOT,
                                     stdout=subprocess.PIPE, text=True)
        self.ports: dict[str, int] = {}
        assert self.proc.stdout is not None
        while len(self.ports) < 3:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("router did not start")
            if line.startswith("listening "):
                _, name, _, addr = line.split()
                self.ports[name] = int(addr.rsplit(":", 1)[1])

        self.conn: http.client.HTTPConnection | None = None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One API call on a kept-alive connection (provisioning 50,000 apps takes seconds)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.ports["api"], timeout=60)
        self.conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                          headers={"Authorization": f"Bearer {KEY}"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: {resp.status} {data[:200]!r}")
        return json.loads(data) if data else None

    def metric(self, name: str) -> float:
        """The value of one sample of the router's /metrics (``name`` with its labels)."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.ports['api']}/metrics").read().decode()
        return float(next((x.split()[1] for x in text.splitlines() if x.startswith(name + " ")), 0))

    def stop(self) -> None:
        """Stop the router and remove its data directory (a run's saved history is hundreds
        of megabytes: left behind, a few hundred runs fill the disk)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        finally:
            if not self.keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)


def start_sink(count: int, http: bool = False, tls: tuple[str, str] | None = None,
               max_rate: float = 0.0, warm: int = 0, port: int = 0,
               ) -> tuple[subprocess.Popen[str], int]:
    cmd = [PY, str(HERE / "sink.py"), "--count", str(count + warm), "--max-rate", str(max_rate),
           "--warm", str(warm), "--port", str(port)]
    if http:
        cmd.append("--http")
    if tls:
        cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = json.loads(proc.stdout.readline())["port"]
    return proc, port


def provision(router: Router, apps: int, drain_url: str | None,
              drained: int | None = None) -> tuple[list[str], list[str]]:
    """Create the apps (and a drain each for the first ``drained``, default all); return their
    tokens and their drains' API paths."""
    tokens, drains = [], []
    drained = apps if drained is None else drained
    for i in range(apps):
        ch = router.api("PUT", f"/v3/channels/bench{i}", {"tokens": ["app"]})
        tokens.append(ch["tokens"]["app"])
        if drain_url and i < drained:
            d = router.api("POST", f"/v3/channels/bench{i}/drains", {"url": drain_url})
            drains.append(f"/v3/channels/bench{i}/drains/{d['id']}")
    return tokens, drains


def warm_up(router: Router, tokens: list[str], drains: list[str]) -> None:
    """Send one line per app and wait until every drain has delivered it.

    Drains connect on their first line (as Logplex's do), so without this the first tens of
    milliseconds of a run measure 100 TCP (or TLS) handshakes rather than the relay.
    """
    frames = []
    for token in tokens:
        f = f"<190>1 2026-11-26T10:00:00.000000+00:00 host {token} web.1 - - warm-up".encode()
        frames.append(b"%d %s" % (len(f), f))
    with socket.create_connection(("127.0.0.1", router.ports["syslog"])) as sock:
        sock.sendall(b"".join(frames))
    deadline = time.time() + 30 + len(drains) / 100
    waiting = list(drains)
    while waiting and time.time() < deadline:
        waiting = [d for d in waiting if not router.api("GET", d)["status"]["delivered"]]
        time.sleep(0.05)
    if waiting:
        raise RuntimeError(f"{len(waiting)} drains did not deliver the warm-up line")


def run_loadgen(port: int, tokens_file: str, n: int, k: int, size: int, http: int,
                rate: float, payload: str = "pad", cycle: int = 0) -> dict[str, Any]:
    cmd = [PY, str(HERE / "loadgen.py"), "--port", str(port), "--tokens-file", tokens_file,
           "-n", str(n), "-k", str(k), "-s", str(size), "--rate", str(rate),
           "--payload", payload, "--cycle", str(cycle)]
    if http:
        cmd += ["--http", str(http)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def lines_to_first(n: int, k: int, apps: int, first: int, cycle: int = 0) -> int:
    """How many of the ``n`` lines ``loadgen.py`` sends over ``k`` connections go to the
    first ``first`` of ``apps`` apps (tokens round-robin from each connection's offset)."""

    def among(offset: int, length: int) -> int:
        full, rest = divmod(length, apps)
        start = (offset + full * apps) % apps
        return full * first + sum(1 for t in range(rest) if (start + t) % apps < first)

    per = n // k
    total = 0
    for c in range(k):
        count = per if c < k - 1 else n - per * (k - 1)
        span = count
        if cycle and cycle < count:
            span = -(-cycle // apps) * apps
        repeats, rest = divmod(count, span)
        total += repeats * among(c * per, span) + among(c * per, rest)
    return total


def tls_files(workdir: str) -> tuple[str, str, str]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    paths = (f"{workdir}/ca.pem", f"{workdir}/cert.pem", f"{workdir}/key.pem")
    ca.cert_pem.write_to_path(paths[0])
    cert.cert_chain_pems[0].write_to_path(paths[1])
    cert.private_key_pem.write_to_path(paths[2])
    return paths


class Tails:
    """``count`` SSE tails of ``channel`` counted by ``tails.py`` in its own process."""

    def __init__(self, router: Router, channel: str, count: int, lines: int) -> None:
        self.proc = subprocess.Popen(
            [PY, str(HERE / "tails.py"), "--api-port", str(router.ports["api"]), "--key", KEY,
             "--channel", channel, "--count", str(count), "--lines", str(lines)],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError("tail clients did not start")

    def result(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=600)
        got: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return got


def history_settled(router: Router, pids: list[int], wait: float) -> dict[str, Any]:
    """RSS once the compactor compressed every quiet channel (no raw lines left; at most
    ``wait`` seconds), and the history's own gauges."""
    deadline = time.time() + wait
    while time.time() < deadline and router.metric("logrouter_history_raw_lines") > 0:
        time.sleep(1)
    time.sleep(2)
    rss = sum(status_kb(p, "VmRSS") for p in pids)
    return {"settled_rss_mb": round(rss / 1024, 1),
            "history_lines": int(router.metric("logrouter_history_lines")),
            "history_raw_lines": int(router.metric("logrouter_history_raw_lines")),
            "history_compressed_mb": round(
                router.metric("logrouter_history_compressed_bytes") / 1e6, 1)}


def scenario(name: str, n: int, rate: float, size: int, cold: bool = False,
             sink_rate: float = 0.0, apps: int = 100, drains: int | None = None,
             tails: int = 100, payload: str = "pad", history_lines: int = 1500,
             prefill: int = 0) -> dict[str, Any]:
    """Run one scenario (see the module docstring) and return its result fields."""
    workdir = tempfile.mkdtemp(prefix="lr-bench-run-")
    env: dict[str, str] = {}
    http_lines, k = 0, 4
    cycle = 0
    sink = None
    redis: subprocess.Popen[bytes] | None = None
    if name == "H":  # fill every app's history; the first 100 apps' drains sample latency
        n = apps * history_lines
        env["LOGROUTER_HISTORY_LINES"] = str(history_lines)
        drains = min(apps, 100) if drains is None else drains
        cycle = 200_000
    if name == "S5":  # each worker has its own drains: a warm-up through one would warm half
        cold = True
        redis, env["LOGROUTER_REDIS_URL"] = start_redis(workdir)
        env["LOGROUTER_WORKERS"] = "2"
    if name == "S6":
        env["LOGROUTER_DRAIN_SPOOL_BYTES"] = str(1 << 30)
    if name == "S4":
        apps = 1
    if name in ("S2", "S4"):
        drains = 0
    drains = apps if drains is None else min(drains, apps)
    warm = 0 if cold else drains  # warm-up lines the sink gets before the run
    expected = lines_to_first(n, k, apps, drains, cycle)  # lines the sink should get
    if prefill:  # sent (untimed) before the run: counted by the sink as warm-up
        warm += lines_to_first(prefill, k, apps, drains, cycle)
    if name in ("S1", "S5", "S6", "H"):
        sink, sink_port = start_sink(expected, max_rate=sink_rate, warm=warm)
    elif name == "S2":
        http_lines, k = 100, 16
    elif name == "S3":
        ca, cert, key = tls_files(workdir)
        env["LOGROUTER_TLS_CA_FILE"] = ca
        sink, sink_port = start_sink(expected, http=True, tls=(cert, key), warm=warm)
    elif name == "S1-tls":
        ca, cert, key = tls_files(workdir)
        env["LOGROUTER_TLS_CA_FILE"] = ca
        sink, sink_port = start_sink(expected, tls=(cert, key), max_rate=sink_rate, warm=warm)
    elif name != "S4":
        raise SystemExit(f"unknown scenario {name}")
    router = Router(env)
    try:
        drain = None
        if name in ("S1", "S5", "S6", "H"):
            drain = f"syslog://127.0.0.1:{sink_port}"
        elif name == "S3":
            drain = f"https://127.0.0.1:{sink_port}/logs"
        elif name == "S1-tls":
            drain = f"syslog+tls://127.0.0.1:{sink_port}"
        tokens, drain_paths = provision(router, apps, drain, drains)
        if drain_paths and not cold:
            warm_up(router, tokens, drain_paths)
        tokens_file = f"{workdir}/tokens.txt"
        Path(tokens_file).write_text("\n".join(tokens) + "\n")
        if prefill:
            port = router.ports["syslog"]
            run_loadgen(port, tokens_file, prefill, k, size, 0, 0.0, payload, cycle)
            settle_prefill(router, prefill)
        tail_clients = Tails(router, "bench0", tails, n) if name == "S4" else None
        # The router's process tree (the workers, for S5) and Redis count as the router.
        pids = process_tree(router.proc.pid) + ([redis.pid] if redis is not None else [])
        cpu0 = cpu_seconds(pids)
        received0 = router.metric(RECEIVED) if name == "H" else 0.0
        waited0 = router.metric(WAITED)
        port = router.ports["logs"] if http_lines else router.ports["syslog"]
        gen = run_loadgen(port, tokens_file, n, k, size, http_lines, rate, payload, cycle)
        result: dict[str, Any] = {"scenario": name, "n": n, "rate": rate or None, "warm": not cold,
                                  "sink_rate": sink_rate or None, "apps": apps, "drains": drains,
                                  "size": size, "payload": payload}
        if name == "H":
            received = 0.0
            while received < n:
                received = router.metric(RECEIVED) - received0
                time.sleep(0.02)
            elapsed = time.time() - gen["start"]
            delivered = n
        if sink is not None:
            out, _ = sink.communicate(timeout=600)
            got = json.loads(out.strip().splitlines()[-1])
            to_sink = got["frames"] - warm
            if name != "H":
                delivered = to_sink
                elapsed = got["last"] - gen["start"]
            result.update(delivered=to_sink, lost=expected - to_sink, l10_reported=got["l10_lost"],
                          p50_ms=got["p50_ms"], p99_ms=got["p99_ms"],
                          waited_s=round(router.metric(WAITED) - waited0, 2))
        elif tail_clients is not None:
            got = tail_clients.result()
            elapsed = got["last"] - gen["start"]
            delivered = n
            result.update(tails=tails, tail_lines_min=got["min"], tail_lines_total=got["total"],
                          tails_complete=got["min"] >= n,
                          tail_lines_per_s=round(got["total"] / elapsed),
                          ingest_lines_per_s=round(n / (gen["end"] - gen["start"])))
        elif name == "S2":
            hist = 0.0
            deadline = time.time() + 60
            while time.time() < deadline:
                hist = router.metric('logrouter_messages_received_total{transport="http"}')
                if hist >= gen["sent"]:
                    break
                time.sleep(0.02)
            elapsed = time.time() - gen["start"]
            delivered = int(hist)
            result.update(delivered=delivered, lost=n - delivered, http_errors=gen["errors"])
        cpu = cpu_seconds(pids) - cpu0
        result.update(lines_per_s=round(delivered / elapsed),
                      ingest_s=round(gen["end"] - gen["start"], 2),
                      mb_per_s=round(gen["bytes"] / elapsed / 1e6, 1),
                      cpu_us_per_line=round(cpu / n * 1e6, 2), router_cpu_s=round(cpu, 2),
                      peak_rss_mb=round(sum(peak_rss_kb(p) for p in pids) / 1024, 1),
                      seconds=round(elapsed, 2))
        if name == "H":
            result.update(history_settled(router, pids, 60.0))
        return result
    finally:
        router.stop()
        if sink is not None and sink.poll() is None:
            sink.kill()
        if redis is not None:
            redis.kill()
            redis.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def settle_prefill(router: Router, prefill: int) -> None:
    """Wait until the prefill was received and the router's CPU is quiet (drains caught up,
    history compacted) for a second, at most 120 s."""
    deadline = time.time() + 120
    while router.metric(RECEIVED) < prefill and time.time() < deadline:
        time.sleep(0.05)
    pids = process_tree(router.proc.pid)
    last = cpu_seconds(pids)
    while time.time() < deadline:
        time.sleep(1.0)
        now = cpu_seconds(pids)
        if now - last < 0.05:
            return
        last = now


class RssSampler(threading.Thread):
    """Samples the summed RSS of a process tree every 0.2 s (VmHWM is per process)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid))


def outage(rate: float, seconds: float, size: int) -> dict[str, Any]:
    """S6-outage: see the module docstring."""
    workdir = tempfile.mkdtemp(prefix="lr-bench-run-")
    rate = rate or 50_000
    n = int(rate * seconds)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sink_port = s.getsockname()[1]
    router = Router({"LOGROUTER_DRAIN_SPOOL_BYTES": str(1 << 30),
                     "LOGROUTER_DRAIN_BACKOFF_MAX": "5"})
    sink = None
    try:
        tokens, _drains = provision(router, 100, f"syslog://127.0.0.1:{sink_port}")
        tokens_file = f"{workdir}/tokens.txt"
        Path(tokens_file).write_text("\n".join(tokens) + "\n")
        sampler = RssSampler(router.proc.pid)
        sampler.start()
        gen = run_loadgen(router.ports["syslog"], tokens_file, n, 4, size, 0, rate)
        spool_bytes = sum(f.stat().st_size for f in Path(router.dir, "spool").rglob("*.seg"))
        up = time.time()
        sink, _ = start_sink(n, port=sink_port)
        out, _ = sink.communicate(timeout=600)
        got = json.loads(out.strip().splitlines()[-1])
        sampler.stopped.set()
        return {"scenario": "S6-outage", "n": n, "rate": rate, "outage_s": seconds,
                "ingest_s": round(gen["end"] - gen["start"], 2),
                "spool_mb_at_recovery": round(spool_bytes / 1e6, 1),
                "backlog_drained_s": round(got["last"] - up, 2), "delivered": got["frames"],
                "lost": n - got["frames"], "l10_reported": got["l10_lost"],
                "peak_rss_mb": round(sampler.peak_kb / 1024, 1)}
    finally:
        router.stop()
        if sink is not None and sink.poll() is None:
            sink.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["S1", "S1-tls", "S2", "S3", "S4", "S5", "S6", "S6-outage", "H"])
    p.add_argument("--apps", type=int, default=100, help="apps (S4: always 1)")
    p.add_argument("--drains", type=int, default=None,
                   help="how many of the apps get a drain (default: all; H: 100)")
    p.add_argument("--tails", type=int, default=100, help="S4: SSE tails on the app")
    p.add_argument("--payload", choices=["pad", "mixed"], default="pad",
                   help="message text: dots, or like a real app's (see loadgen.py)")
    p.add_argument("--outage", type=float, default=60.0, help="S6-outage: seconds the receiver is down")
    p.add_argument("-n", type=int, default=1_000_000)
    p.add_argument("-s", type=int, default=150)
    p.add_argument("--rate", type=float, default=0.0, help="paced lines/s (0 = flat out)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--sink-rate", type=float, default=0.0,
                   help="S1: the syslog receiver reads at most this many lines/s (a slow drain)")
    p.add_argument("--cold", action="store_true",
                   help="no warm-up: drains connect on the run's first lines")
    p.add_argument("--json-out")
    p.add_argument("--prefill", type=int, default=0,
                   help="lines sent (untimed) before the run, e.g. to measure with every "
                        "history full (S1, S6, S1-tls, S3; the sink's latency covers them too)")
    args = p.parse_args()
    for _ in range(args.runs):
        if args.scenario == "S6-outage":
            result = outage(args.rate, args.outage, args.s)
        else:
            result = scenario(args.scenario, args.n, args.rate, args.s, args.cold, args.sink_rate,
                              args.apps, args.drains, args.tails, args.payload,
                              prefill=args.prefill)
            if args.prefill:
                result["prefill"] = args.prefill
        line = json.dumps(result)
        print(line, flush=True)
        if args.json_out:
            with open(args.json_out, "a") as fh:
                fh.write(line + "\n")


if __name__ == "__main__":
    main()
