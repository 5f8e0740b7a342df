"""What a metrics scrape, or `logrouter top`, costs a node with thousands of drains.

    python bench/scrape.py [--apps 5000] [--requests 20] [--gap 0] [--path /metrics] [--path /v3/stats]

Starts a router with ``--apps`` apps, each with a syslog drain to one receiver, then, for each
``--path``, sends ``--requests`` requests one after the other (``--gap`` seconds apart) while a
probe thread asks ``GET /healthz`` on another connection as fast as it is answered. The event loop answers the
probe between other work, so the probe's slowest answers show how long the loop was held.
Prints one JSON line per path: the response size, the request's time (median, max) and the
probe's latency (median, p99, max) during the requests — and the probe's latency alone first.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time

import run


class Probe(threading.Thread):
    """``GET /healthz`` in a loop on its own connection, recording each answer's latency."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.latencies: list[float] = []
        self.started: list[float] = []  # time.time() each probe was sent
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while not self.stop.is_set():
            self.started.append(time.time())
            start = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            self.latencies.append(time.perf_counter() - start)


def probed(port: int, work: float | None = None, requests: int = 0, path: str = "",
           gap: float = 0.0) -> dict:
    """Run the probe for ``work`` seconds (nothing else), or while ``requests`` of ``path``
    are made, ``gap`` seconds apart."""
    probe = Probe(port)
    probe.start()
    took, size = [], 0
    if work is not None:
        time.sleep(work)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for i in range(requests):
            if i and gap:
                time.sleep(gap)
            start = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {run.KEY}"})
            resp = conn.getresponse()
            size = len(resp.read())
            took.append(time.perf_counter() - start)
    probe.stop.set()
    probe.join()
    lat = sorted(probe.latencies)
    out = {"probe_ms": {"median": round(statistics.median(lat) * 1e3, 2),
                        "p99": round(lat[int(len(lat) * 0.99)] * 1e3, 2),
                        "max": round(lat[-1] * 1e3, 2), "n": len(lat)}}
    if took:
        out |= {"path": path, "bytes": size,
                "request_ms": {"median": round(statistics.median(took) * 1e3, 1),
                               "max": round(max(took) * 1e3, 1)}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--path", action="append", default=None)
    ap.add_argument("--idle", type=float, default=2.0, help="seconds of the probe alone")
    ap.add_argument("--gap", type=float, default=0.0,
                    help="seconds between two requests (0: one after the other)")
    args = ap.parse_args()
    paths = args.path or ["/metrics", "/v3/stats"]
    sink, sink_port = run.start_sink(10**12)  # never done: it only has to take lines
    router = run.Router({})
    try:
        tokens, drains = run.provision(router, args.apps, f"syslog://127.0.0.1:{sink_port}")
        run.warm_up(router, tokens, drains)
        port = router.ports["api"]
        print(json.dumps({"apps": args.apps, "drains": len(drains), "idle": probed(port, args.idle)}))
        for path in paths:
            print(json.dumps({"apps": args.apps, "gap": args.gap,
                              **probed(port, requests=args.requests, path=path, gap=args.gap)}))
    finally:
        router.stop()
        sink.kill()


if __name__ == "__main__":
    main()
