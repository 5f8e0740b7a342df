"""Run logrouter as a bench-peers custom relay (../shared/bench-peers/README.md).

    python bench/peer_relay.py IN_PORT SINK_PORT TOKENS_FILE WORKDIR [APPS] [-- serve flags…]

Phase 1 starts a router on free ports, creates APPS (100) apps, each with a syslog drain to
127.0.0.1:SINK_PORT, writes their tokens to TOKENS_FILE and stops (the config stays in
WORKDIR's SQLite file). Phase 2 *execs* `logrouter serve` with the syslog port on IN_PORT, so
the harness measures the router process itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run


def main() -> None:
    in_port, sink_port, tokens_file, workdir = sys.argv[1:5]
    rest = sys.argv[5:]
    apps = int(rest.pop(0)) if rest and rest[0] != "--" else 100
    extra = rest[1:] if rest[:1] == ["--"] else rest
    del workdir  # the router keeps its own temporary data dir
    router = run.Router({})
    router_dir = router.dir
    tokens = run.provision(router, apps, f"syslog://127.0.0.1:{sink_port}")
    router.stop()
    os.environ.update({"LOGROUTER_BIND": "127.0.0.1", "LOGROUTER_SYSLOG_PORT": in_port,
                       "LOGROUTER_LOGS_PORT": "0", "LOGROUTER_API_PORT": "0",
                       "LOGROUTER_AUTH_KEY": run.KEY, "LOGROUTER_DATA_DIR": router_dir,
                       "LOGROUTER_LOG_LEVEL": "error"})
    Path(tokens_file).write_text("\n".join(tokens) + "\n")
    os.chdir(run.ROOT)
    os.execv(sys.executable, [sys.executable, "-m", "logrouter", "serve", *extra])


if __name__ == "__main__":
    main()
