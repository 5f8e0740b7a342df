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


def test_docker_config_denies_internal_addresses_and_spools() -> None:
    from logrouter.destinations import DestinationPolicy, parse_networks

    s = load_settings({}, {}, str(ROOT / "config" / "docker.toml"))
    policy = DestinationPolicy(parse_networks(s.drain_deny_networks))
    for ip in ("127.0.0.1", "::1", "169.254.169.254", "fe80::1", "100.100.100.200"):
        assert policy.refusal(ip, 514) is not None, ip
    assert policy.refusal("93.184.216.34", 514) is None
    assert s.drain_spool_bytes > 0
    assert "LOGROUTER_CONFIG=/app/config/docker.toml" in (ROOT / "Dockerfile").read_text()


def test_docker_build_context_and_image_hygiene() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".logrouter", ".git"} <= set(ignore)  # no local state or keys in the image
    dockerfile = (ROOT / "Dockerfile").read_text()
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert all(tag.count(":") == 1 and tag.split(":")[1][:1].isdigit() for tag in froms), froms
    assert "USER 10001" in dockerfile and "HEALTHCHECK" in dockerfile and "/readyz" in dockerfile
    assert '".[cluster]"' in dockerfile  # the compose file runs cluster mode
    compose = (ROOT / "docker-compose.yml").read_text()
    assert compose.count("restart: unless-stopped") == 3 and "lr:auth_key" in compose
