"""What creating apps, drains and log sessions in bulk costs a node's event loop.

    python bench/provision.py [--apps 5000] [--sessions 5000]

Starts a router, then, while a probe thread asks ``GET /healthz`` as fast as it is answered
(``scrape.Probe``), creates ``--apps`` apps with a token and a syslog drain each (to one
receiver), then ``--sessions`` log sessions (what each ``heroku logs`` makes), one call after
the other on a kept-alive connection. Every call writes the node's config database. Prints one
JSON line per phase: calls a second and the probe's latency (median, p99, max): the longest
the event loop was held.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import run
from scrape import Probe


def phase(port: int, calls: Callable[[], int]) -> dict[str, float]:
    probe = Probe(port)
    probe.start()
    start = time.perf_counter()
    count = calls()
    took = time.perf_counter() - start
    probe.stop.set()
    probe.join()
    lat = sorted(probe.latencies)
    return {"calls": count, "calls_per_s": round(count / took),
            "probe_median_ms": round(statistics.median(lat) * 1000, 2),
            "probe_p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2),
            "probe_max_ms": round(lat[-1] * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=5000)
    args = ap.parse_args()
    sink, sink_port = run.start_sink(10**12)
    router = run.Router({})
    try:
        port = router.ports["api"]

        def apps() -> int:
            run.provision(router, args.apps, f"syslog://127.0.0.1:{sink_port}")
            return 2 * args.apps

        def sessions() -> int:
            for i in range(args.sessions):
                router.api("POST", "/v2/sessions",
                           {"channel_id": f"bench{i % args.apps}", "num": 10, "tail": False})
            return args.sessions

        print(json.dumps({"phase": "apps+drains", **phase(port, apps)}))
        print(json.dumps({"phase": "sessions", **phase(port, sessions)}))
    finally:
        router.stop()
        sink.kill()


if __name__ == "__main__":
    main()
