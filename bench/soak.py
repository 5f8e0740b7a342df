"""Overload soak: twice what the receiver takes, for minutes, with hostile clients mixed in.

    python bench/soak.py [--seconds 600] [--sink-rate 50000] [--apps 100] [--json-out F]

A router with 100 apps, each with a syslog drain to one receiver that reads at most
``--sink-rate`` lines/s, is fed twice that (4 TCP connections, 150-byte lines) for
``--seconds``. Meanwhile, in a loop: slowloris clients trickle request heads on the logs and
API ports, endless headers stream at both, SSE tails are opened and never read, session readers
hang up after the first bytes, and garbage and oversize frames arrive on the syslog port.

Reports the router's RSS every 10 s, lines sent / delivered / reported lost by L10 (every line
must be one or the other: ``unaccounted`` must be 0), the hostile connections made, and whether
the router was still serving and exited 0 on SIGTERM (``crashes``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run

rss_kb = run.tree_rss_kb


class Hostiles(threading.Thread):
    """Hostile and careless clients, in a loop until stopped."""

    def __init__(self, router: run.Router, channel: str, token: str) -> None:
        super().__init__(daemon=True)
        self.router = router
        self.channel = channel
        self.token = token
        self.stop = threading.Event()
        self.counts = {"slowloris": 0, "endless_header": 0, "stalled_tail": 0,
                       "early_hangup": 0, "garbage_frames": 0}
        self.held: list[socket.socket] = []

    def _connect(self, port: int) -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    def run(self) -> None:
        api, logs, syslog = (self.router.ports[n] for n in ("api", "logs", "syslog"))
        rng = random.Random(1)
        while not self.stop.is_set():
            try:
                self._round(api, logs, syslog, rng)
            except OSError:
                pass  # refused or reset: the router protecting itself is fine
            self.stop.wait(0.5)
        for s in self.held:
            s.close()

    def _round(self, api: int, logs: int, syslog: int, rng: random.Random) -> None:
        for port in (api, logs):  # slowloris: a byte of head now and then
            s = self._connect(port)
            s.sendall(b"POST /logs HTTP/1.1\r\nX-a: ")
            self.held.append(s)
            self.counts["slowloris"] += 1
        for s in list(self.held):
            try:
                s.send(b"a")
            except OSError:
                self.held.remove(s)
                s.close()
        s = self._connect(rng.choice((api, logs)))  # an endless header
        try:
            s.sendall(b"GET / HTTP/1.1\r\nX: ")
            for _ in range(64):
                s.sendall(b"y" * 1024)
        except OSError:
            pass
        s.close()
        self.counts["endless_header"] += 1
        url = self.router.api("POST", "/v3/sessions", {"channel_id": self.channel, "num": "1500",
                                                       "tail": True})["url"]
        path = url[url.index("/sessions/"):]
        s = self._connect(api)  # a tail that never reads
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.held.append(s)
        self.counts["stalled_tail"] += 1
        url = self.router.api("POST", "/v3/sessions", {"channel_id": self.channel,
                                                       "num": "1500"})["url"]
        s = self._connect(api)  # `curl URL | head -c 100`
        s.sendall(f"GET {url[url.index('/sessions/'):]} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        self.counts["early_hangup"] += 1
        s = self._connect(syslog)  # garbage, an oversize frame, a frame for an unknown token
        frame = b"<190>1 2026-11-26T10:00:00Z h t.unknown web.1 - - x"
        s.sendall(bytes(rng.randrange(256) for _ in range(2000)) + b"\n99999 " + b"z" * 20000
                  + b"%d %s" % (len(frame), frame))
        s.close()
        self.counts["garbage_frames"] += 1
        if len(self.held) > 200:
            for old in self.held[:100]:
                old.close()
            del self.held[:100]


def soak(seconds: float, sink_rate: float, apps: int) -> dict[str, object]:
    import tempfile

    workdir = tempfile.mkdtemp(prefix="lr-soak-")
    rounds = max(1, round(seconds / 30))  # the generator builds its lines in memory: 30 s at a time
    per_round = int(sink_rate * 2 * seconds / rounds)
    n = per_round * rounds
    sink, sink_port = run.start_sink(n, max_rate=sink_rate)
    router = run.Router({})
    hostiles = None
    result: dict[str, object] = {"scenario": "soak", "seconds": seconds, "input_rate": sink_rate * 2,
                                 "receiver_rate": sink_rate, "apps": apps}
    try:
        tokens, _ = run.provision(router, apps, f"syslog://127.0.0.1:{sink_port}")
        tokens_file = f"{workdir}/tokens.txt"
        Path(tokens_file).write_text("\n".join(tokens) + "\n")
        hostiles = Hostiles(router, "bench0", tokens[0])
        hostiles.start()
        rss: list[tuple[int, float]] = []
        done = threading.Event()
        gen: dict[str, object] = {}

        def generate() -> None:
            for _ in range(rounds):
                gen.update(run.run_loadgen(router.ports["syslog"], tokens_file, per_round, 4, 150,
                                           0, sink_rate * 2))
            done.set()

        threading.Thread(target=generate, daemon=True).start()
        start = time.time()
        while not done.wait(10):
            rss.append((int(time.time() - start), round(rss_kb(router.proc.pid) / 1024, 1)))
        hostiles.stop.set()
        out, _ = sink.communicate(timeout=300)
        got = json.loads(out.strip().splitlines()[-1])
        alive = urllib.request.urlopen(
            f"http://127.0.0.1:{router.ports['api']}/v3/healthcheck", timeout=5).status == 200
        metrics = urllib.request.urlopen(
            f"http://127.0.0.1:{router.ports['api']}/metrics", timeout=5).read().decode()
        def total(name: str) -> int:
            return int(sum(float(line.split()[-1]) for line in metrics.splitlines()
                           if line.startswith(name + "{")))

        errors = {line.split("{", 1)[1].split("}")[0]: float(line.split()[-1])
                  for line in metrics.splitlines()
                  if line.startswith("logrouter_connection_errors_total{") and
                  not line.endswith(" 0.0")}
        result.update(input_s=round(time.time() - start, 1), sent=n, delivered=got["frames"],
                      l10_reported=got["l10_lost"],
                      unaccounted=n - got["frames"] - got["l10_lost"], rss_mb_every_10s=rss,
                      router_delivered=total("logrouter_drain_delivered_total"),
                      router_dropped=total("logrouter_drain_dropped_total"),
                      router_buffered=total("logrouter_drain_buffered"),
                      ingest_waited_s=round(sum(
                          float(line.split()[-1]) for line in metrics.splitlines()
                          if line.startswith("logrouter_ingest_backpressure_seconds_total")), 2),
                      hostile=hostiles.counts, connection_errors=errors, serving_at_end=alive)
    finally:
        router.proc.terminate()
        code = router.proc.wait(timeout=60)
        result["exit_code"] = code
        result["crashes"] = int(code != 0 or not result.get("serving_at_end", False))
        if sink.poll() is None:
            sink.kill()
        shutil.rmtree(router.dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--sink-rate", type=float, default=50_000)
    p.add_argument("--apps", type=int, default=100)
    p.add_argument("--json-out")
    args = p.parse_args()
    result = soak(args.seconds, args.sink_rate, args.apps)
    line = json.dumps(result)
    print(line, flush=True)
    if args.json_out:
        with open(args.json_out, "a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
