"""Imports run one way (STYLE.md rule 2): checked on the source, without importing it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A module may import only from its own layer or lower ones.
LAYERS: list[set[str]] = [
    {"logrouter.settings", "logrouter.errors", "logrouter.models", "logrouter.logs",
     "logrouter.console", "logrouter.core", "logrouter.transport"},
    {"logrouter.protocol"},
    {"logrouter.core.buffer", "logrouter.metrics", "logrouter.core.history",
     "logrouter.core.token_routing"},
    {"logrouter.core.channels", "logrouter.core.tail", "logrouter.core.sessions",
     "logrouter.core.history_view", "logrouter.core.history_file", "logrouter.store",
     "logrouter.transport.serving", "logrouter.control", "logrouter.transport.httpclient",
     "logrouter.transport.tlsclient", "logrouter.transport.send_many", "logrouter.destinations",
     "logrouter.spool", "logrouter.data_dir"},
    {"logrouter.ingest", "logrouter.api", "logrouter.client", "logrouter.cluster", "drains"},
    {"logrouter.node", "logrouter.workers", "logrouter.drain_supervisor"},
    {"logrouter.cli", "logrouter.__main__"},
]
IO_MODULES = {"trio", "socket", "ssl", "asyncio", "prometheus_client", "sqlite3", "selectors"}


def layer_of(module: str) -> int | None:
    """The layer of the longest name in LAYERS that is ``module`` or a package holding it
    (``logrouter.core`` the package's own file, ``logrouter.core.tail`` the module)."""
    best: tuple[int, int] | None = None
    for i, group in enumerate(LAYERS):
        for prefix in group:
            if (module == prefix or module.startswith(prefix + ".")) and \
                    (best is None or len(prefix) > best[0]):
                best = (len(prefix), i)
    return None if best is None else best[1]


def modules() -> list[tuple[str, ast.Module]]:
    out = []
    for pkg in ("logrouter", "drains"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            out.append((name, ast.parse(path.read_text())))
    return out


def imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_every_module_has_a_layer() -> None:
    missing = [name for name, _ in modules() if name != "logrouter" and layer_of(name) is None]
    assert not missing


def test_imports_only_go_down() -> None:
    bad = []
    for name, tree in modules():
        mine = layer_of(name)
        if mine is None:
            continue
        for imported in imports(tree):
            theirs = layer_of(imported)
            if theirs is not None and theirs > mine:
                bad.append(f"{name} imports {imported}")
    assert not bad, bad


def test_client_never_imports_the_server_side() -> None:
    bad = []
    for name, tree in modules():
        if name.startswith("logrouter.client"):
            bad += [f"{name} imports {m}" for m in imports(tree)
                    if m.startswith(("logrouter.node", "logrouter.ingest", "logrouter.api", "drains"))]
    assert not bad, bad


def test_protocol_package_does_no_io() -> None:
    bad = []
    for name, tree in modules():
        if name.startswith("logrouter.protocol"):
            bad += [f"{name} imports {m}" for m in imports(tree) if m.split(".")[0] in IO_MODULES]
    assert not bad, bad


def test_modules_stay_under_500_lines() -> None:
    long = [str(p) for pkg in ("logrouter", "drains") for p in (ROOT / pkg).rglob("*.py")
            if len(p.read_text().splitlines()) > 500]
    assert not long, long


def test_drains_are_a_plug_in_seam() -> None:
    """Drains use the lower layers only: never the channel table, metrics, ingest, the API, the
    cluster or the node (the supervisor, in logrouter, ties them to channels)."""
    bad = []
    for name, tree in modules():
        if name == "drains" or name.startswith("drains."):
            bad += [f"{name} imports {m}" for m in imports(tree)
                    if m.startswith(("logrouter.core.channels", "logrouter.metrics", "logrouter.ingest",
                                     "logrouter.api", "logrouter.cluster", "logrouter.node",
                                     "logrouter.control", "logrouter.drain_supervisor"))]
    assert not bad, bad


def test_only_the_composition_root_wires_the_servers() -> None:
    """ingest, api, cluster and the drain supervisor are imported by the node (and workers) only."""
    bad = []
    for name, tree in modules():
        if name in ("logrouter.node", "logrouter.workers", "logrouter.cli"):
            continue
        for m in imports(tree):
            for top in ("logrouter.ingest", "logrouter.api", "logrouter.cluster",
                        "logrouter.drain_supervisor"):
                if (m == top or m.startswith(top + ".")) and not name.startswith(top):
                    bad.append(f"{name} imports {m}")
    assert not bad, bad


def test_redis_client_only_in_the_store() -> None:
    """The cluster, too, reaches Redis through logrouter.store (which maps its errors)."""
    bad = []
    for name, tree in modules():
        if not name.startswith("logrouter.store"):
            bad += [f"{name} imports {m}" for m in imports(tree) if m.split(".")[0] == "glide"]
    assert not bad, bad
