"""A receiver that thousands of drains are connected to restarts: what that does to the event loop.

    python bench/receiver_restart.py [--apps 5000] [--seconds 10]

Makes ``--apps`` apps, each with a syslog drain to one receiver (``sink.py``), connected and
delivering. Then, while a probe thread asks ``GET /healthz`` as fast as it is answered, the
receiver is killed (every connection closed at once), started again on the same port a second
later, and a line goes to every app every 2 s for ``--seconds``. Prints one JSON line: probes
answered, answers slower than 50 ms, the six slowest (seconds into the run, ms) and their sum.
"""

from __future__ import annotations

import argparse
import json
import socket
import time

import run
from scrape import Probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    sink, sink_port = run.start_sink(10**12)
    router = run.Router({})
    try:
        tokens, drains = run.provision(router, args.apps, f"syslog://127.0.0.1:{sink_port}")
        run.warm_up(router, tokens, drains)
        data = b"".join(b"%d %s" % (len(f), f) for f in (
            f"<190>1 2026-11-26T10:00:00.000000+00:00 host {t} web.1 - - x".encode()
            for t in tokens))
        probe = Probe(router.ports["api"])
        began = time.time()
        probe.start()
        time.sleep(1)
        sink.kill()
        sink.wait()
        time.sleep(1)
        sink, _ = run.start_sink(10**12, port=sink_port)
        while time.time() - began < args.seconds:
            with socket.create_connection(("127.0.0.1", router.ports["syslog"])) as conn:
                conn.sendall(data)
            time.sleep(2)
        probe.stop.set()
        probe.join()
        slow = [(round(at - began, 1), round(took * 1000))
                for at, took in zip(probe.started, probe.latencies, strict=True) if took > 0.05]
        print(json.dumps({"apps": len(tokens), "probes": len(probe.latencies),
                          "over_50ms": len(slow), "slowest": sorted(slow, key=lambda s: -s[1])[:6],
                          "held_ms_in_all": sum(ms for _, ms in slow)}))
    finally:
        router.stop()
        sink.kill()


if __name__ == "__main__":
    main()
