"""The shipped example config files load with the real settings loader."""

from __future__ import annotations

from pathlib import Path

from logrouter.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_cluster_example_loads() -> None:
    s = load_settings({}, {}, str(ROOT / "config" / "cluster.toml"))
    assert s.redis_url.startswith("redis://") and s.workers == 2


def test_compose_file_uses_real_setting_names() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    env_names = {line.split(":")[0].strip() for line in text.splitlines()
                 if line.strip().startswith("LOGROUTER_")}
    assert env_names == {"LOGROUTER_REDIS_URL", "LOGROUTER_PUBLIC_URL"}
    assert load_settings({}, {n: "redis://r:6379/0" if "REDIS" in n else "http://x" for n in env_names})
