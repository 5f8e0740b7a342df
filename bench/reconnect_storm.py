"""A reconnect storm: thousands of drains of one dead receiver, and what it does to the event loop.

    python bench/reconnect_storm.py [--apps 5000] [--seconds 12] [--data-dir D]

Makes ``--apps`` apps, each with a syslog drain to a port nothing listens on, in a data
directory (kept in ``--data-dir`` for the next runs, else a temporary one), and starts the
router again on it, so the drains come from the config loaded at start as on a restarted node.
Then sends a line to every app every 2 s for ``--seconds`` (each wakes its drain, which tries
to connect and fails) while a probe thread asks ``GET /healthz`` as fast as it is answered.
Prints one JSON line: probes answered, answers slower than 50 ms, the six slowest (seconds
into the run, ms) and their sum. ``LOGROUTER_DRAIN_CONNECT_RATE=0`` in the environment turns
the pacing of connection attempts off, for comparison.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import tempfile
import threading
import time

import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--data-dir", default="")
    args = ap.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="lr-storm-")
    tokens_file = os.path.join(data_dir, "bench-tokens.json")
    try:
        if not os.path.exists(tokens_file):
            router = run.Router({"LOGROUTER_LOG_LEVEL": "error"}, data_dir=data_dir)
            tokens, _ = run.provision(router, args.apps, "syslog://127.0.0.1:9")  # discard: closed
            router.stop()
            with open(tokens_file, "w") as fh:
                json.dump(tokens, fh)
        with open(tokens_file) as fh:
            tokens = json.load(fh)
        frames = []
        for token in tokens:
            f = f"<190>1 2026-11-26T10:00:00.000000+00:00 host {token} web.1 - - x".encode()
            frames.append(b"%d %s" % (len(f), f))
        data = b"".join(frames)
        router = run.Router({"LOGROUTER_LOG_LEVEL": "error"}, data_dir=data_dir)
        port = router.ports["api"]
        slow: list[tuple[float, int]] = []
        answered = 0
        stop = threading.Event()

        def probe() -> None:
            nonlocal answered
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            began = time.time()
            while not stop.is_set():
                start = time.perf_counter()
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                took = time.perf_counter() - start
                answered += 1
                if took > 0.05:
                    slow.append((round(time.time() - began, 1), round(took * 1000)))

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        began = time.time()
        while time.time() - began < args.seconds:
            with socket.create_connection(("127.0.0.1", router.ports["syslog"])) as sock:
                sock.sendall(data)
            time.sleep(2)
        stop.set()
        thread.join()
        router.stop()
        print(json.dumps({"apps": len(tokens), "connect_rate": os.environ.get(
            "LOGROUTER_DRAIN_CONNECT_RATE", "default"), "probes": answered,
            "over_50ms": len(slow), "slowest": sorted(slow, key=lambda s: -s[1])[:6],
            "held_ms_in_all": sum(ms for _, ms in slow)}))
    finally:
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
