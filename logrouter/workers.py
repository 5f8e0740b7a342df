"""``logrouter serve --workers N``: N node processes on one host sharing the listening ports.

The parent reserves the ports (port 0 becomes a concrete free port) with
SO_REUSEPORT sockets that it keeps bound but never listens on, then starts N
``logrouter serve`` children with every setting passed in ``LOGROUTER_*``
variables, ``reuse_port`` on and their own data dir. The kernel spreads new
connections over the children's listeners. Children are identical cluster nodes
(``workers > 1`` requires ``redis_url``, checked by the settings).

Supervision: a child that exits while the parent is not stopping is logged and
restarted after a second. SIGINT/SIGTERM are passed on to the children; the
parent waits for them (``shutdown_timeout`` + 5 s, then kills) and exits 0.
The parent prints the children's start-up lines once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable

import trio

from logrouter.data_dir import lock_data_dir
from logrouter.logs import get_logger
from logrouter.node import STOP_SIGNALS
from logrouter.settings import SETTINGS, Settings

__all__ = ["run_workers"]

log = get_logger("logrouter.workers")

RESTART_PAUSE = 1.0


def _reserve(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def child_env(settings: Settings, worker: int, ports: dict[str, int]) -> dict[str, str]:
    """The environment of worker ``worker``: every setting as ``LOGROUTER_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGROUTER_")}
    for s in SETTINGS:
        value = getattr(settings, s.name)
        env[s.env] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    env.update({f"LOGROUTER_{name.upper()}": str(port) for name, port in ports.items()})
    env["LOGROUTER_WORKERS"] = "1"
    env["LOGROUTER_REUSE_PORT"] = "true"
    env["LOGROUTER_DATA_DIR"] = os.path.join(settings.data_dir, f"worker-{worker}")
    if not settings.public_url:
        env["LOGROUTER_PUBLIC_URL"] = f"http://127.0.0.1:{ports['api_port']}"
    return env


class _Supervisor:
    def __init__(self, settings: Settings, announce: Callable[[str], None]) -> None:
        self.settings = settings
        self.announce = announce
        self.stopping = False
        self.procs: dict[int, trio.Process] = {}
        self.announced: set[str] = set()
        self.restarts = 0

    async def supervise(self, worker: int, ports: dict[str, int]) -> None:
        while not self.stopping:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "logrouter", "serve"], env=child_env(self.settings, worker, ports),
                stdout=subprocess.PIPE)
            self.procs[worker] = proc
            log.info("worker_start", worker=worker, pid=proc.pid)
            async with trio.open_nursery() as nursery:
                assert proc.stdout is not None
                nursery.start_soon(self._forward, proc.stdout)
                code = await proc.wait()
            if self.stopping:
                return
            self.restarts += 1
            log.error("worker_exit", worker=worker, pid=proc.pid, code=code, restart_in_s=RESTART_PAUSE)
            await trio.sleep(RESTART_PAUSE)

    async def _forward(self, stdout: trio.abc.ReceiveStream) -> None:
        buffer = b""
        while data := await stdout.receive_some(4096):
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                key = " ".join(line.split()[:2])
                if key not in self.announced:
                    self.announced.add(key)
                    self.announce(line)

    async def stop(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(self.settings.shutdown_timeout + 5):
            for proc in self.procs.values():
                await proc.wait()
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()


async def run_workers(settings: Settings, announce: Callable[[str], None]) -> int:
    """Run ``settings.workers`` supervised node processes until SIGINT, SIGTERM or SIGHUP;
    return 0.

    Raises:
        ConfigError: another process holds the data dir.
    """
    os.makedirs(settings.data_dir, exist_ok=True)
    lock = lock_data_dir(settings.data_dir)  # the workers hold their own subdirectories
    reserved = []
    ports: dict[str, int] = {}
    try:
        for name in ("syslog_port", "logs_port", "api_port"):
            sock = _reserve(settings.bind, getattr(settings, name))
            reserved.append(sock)
            ports[name] = sock.getsockname()[1]
        supervisor = _Supervisor(settings, announce)
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:
                for worker in range(settings.workers):
                    nursery.start_soon(supervisor.supervise, worker, ports)
                async for signum in signals:
                    log.info("signal", signal=signal.Signals(signum).name, workers=settings.workers)
                    await supervisor.stop()
                    nursery.cancel_scope.cancel()
                    break
    finally:
        for sock in reserved:
            sock.close()
        os.close(lock)
    return 0
