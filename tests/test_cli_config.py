"""`logrouter config --check/--effective`, unknown LOGROUTER_* variables, `--version`."""

from __future__ import annotations

from pathlib import Path

import pytest

from logrouter.cli import main
from logrouter.settings import unknown_env


def test_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text("syslog_port = 6002\n")
    assert main(["config", "--check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('syslog_port = "x"\nnope = 1\n')
    assert main(["config", "--check", str(bad)]) == 2
    assert "syslog_port must be int" in capsys.readouterr().err


def test_config_effective(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                          ) -> None:
    monkeypatch.setenv("LOGROUTER_SYSLOG_PORT", "7001")
    monkeypatch.setenv("LOGROUTER_AUTH_KEY", "secret")
    assert main(["config", "--effective"]) == 0
    out = capsys.readouterr().out
    assert "syslog_port = 7001" in out and 'auth_key = "(set)"' in out and "secret" not in out


def test_unknown_variables_are_named_with_a_suggestion() -> None:
    found = unknown_env({"LOGROUTER_SYSLOG_PROT": "1", "LOGROUTER_SYSLOG_PORT": "1",
                         "LOGROUTER_URL": "x", "LOGROUTER_QQQQQQQQ": "1", "PATH": "/bin"})
    assert found == [("LOGROUTER_QQQQQQQQ", None), ("LOGROUTER_SYSLOG_PROT", "LOGROUTER_SYSLOG_PORT")]


def test_version_says_whether_the_speedups_are_on(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "C speed-ups: o" in capsys.readouterr().out
