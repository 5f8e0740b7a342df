"""Settings: precedence, types, validation, and the documented defaults file."""

from __future__ import annotations

from pathlib import Path

import pytest

from logrouter.errors import ConfigError
from logrouter.settings import SETTINGS, Settings, load_settings, render_toml

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_match_the_issue() -> None:
    s = load_settings({}, {})
    assert (s.bind, s.syslog_port, s.logs_port, s.api_port, s.data_dir) == (
        "0.0.0.0", 6001, 8601, 8001, "./.logrouter")
    assert s.history_lines == 1500 and s.tail_buffer_lines == 1024


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('syslog_port = 1\nlogs_port = 2\napi_port = 3\nbind = "127.0.0.1"\n')
    s = load_settings({"api_port": "30"}, {"LOGROUTER_LOGS_PORT": "20", "LOGROUTER_API_PORT": "99"},
                      str(cfg))
    assert (s.syslog_port, s.logs_port, s.api_port, s.bind) == (1, 20, 30, "127.0.0.1")


def test_config_file_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("history_lines = 10\n")
    assert load_settings({}, {"LOGROUTER_CONFIG": str(cfg)}).history_lines == 10


@pytest.mark.parametrize("flags,env,text", [
    ({"syslog_port": "abc"}, {}, "syslog_port must be int"),
    ({}, {"LOGROUTER_API_PORT": "70000"}, "api_port must be 0..65535"),
    ({}, {"LOGROUTER_HISTORY_LINES": "0"}, "history_lines must be at least 1"),
    ({}, {"LOGROUTER_LOG_LEVEL": "loud"}, "log_level"),
])
def test_bad_values(flags: dict[str, str], env: dict[str, str], text: str) -> None:
    with pytest.raises(ConfigError, match=text):
        load_settings(flags, env)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("sylog_port = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'sylog_port'"):
        load_settings({}, {}, str(cfg))


def test_documented_defaults_file_lists_every_setting_with_its_default() -> None:
    text = (ROOT / "config" / "logrouter.toml").read_text()
    assert text == render_toml(), "regenerate with: logrouter config > config/logrouter.toml"
    for s in SETTINGS:
        lit = f'"{s.default}"' if isinstance(s.default, str) else repr(s.default)
        assert f"# {s.name} = {lit}\n" in text, s.name
        assert s.env in text
    assert Settings() == load_settings({}, {})


def test_docs_state_the_compactors_catch_up_factor() -> None:
    """The catch-up factor lives in the compactor; the setting's help (and so the defaults
    file) and the README say it in words, so they must say the same number."""
    from logrouter.core.history import HistoryCompactor

    words = f"past {HistoryCompactor.CATCH_UP} times it"
    (raw_bytes,) = (s for s in SETTINGS if s.name == "history_raw_bytes")
    assert words in raw_bytes.help
    readme = (ROOT / "README.md").read_text()
    assert readme.count(words) == 2, "README: the history section and the settings table"
    at_default = HistoryCompactor.CATCH_UP * raw_bytes.default / (1 << 30)
    assert f"({at_default:g} GiB at the default)" in readme


def test_a_redis_database_number_is_ascii_digits() -> None:
    from logrouter.store.redis import parse_url

    assert parse_url("redis://cache:7000/3") == ("cache", 7000, 3)
    with pytest.raises(ConfigError, match="database must be a number"):
        parse_url("redis://cache:7000/²")  # a digit to str.isdigit, not to int()
