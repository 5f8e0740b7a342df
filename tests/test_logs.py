"""Service logs are valid logfmt (or JSON), with the setting's level names."""

from __future__ import annotations

import json
import logging
import shlex
import time

import pytest

from logrouter.logs import Throttle, configure, get_logger


@pytest.fixture(autouse=True)
def _restore() -> None:
    yield
    logging.getLogger("logrouter").handlers[:] = []
    logging.getLogger("logrouter").propagate = True


def test_logfmt_quotes_values_and_names_levels_like_the_setting(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure("info", "logfmt")
    get_logger("logrouter.test").warning("drain_error", drain_id=3, error='connect: "refused" now')
    get_logger("logrouter.test").debug("hidden")
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "hidden" not in line
    fields = dict(part.split("=", 1) for part in shlex.split(line))
    assert fields["level"] == "warn" and fields["logger"] == "logrouter.test"
    assert fields["at"] == "drain_error" and fields["drain_id"] == "3"
    assert fields["error"] == 'connect: "refused" now'
    assert line.startswith("ts=") and " at=drain_error " in line


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    configure("debug", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("logrouter.test").exception("handler_error", path="/x")
    event = json.loads(capsys.readouterr().err)
    assert event["at"] == "handler_error" and event["level"] == "error" and event["path"] == "/x"
    assert "ValueError: boom" in event["exception"]


def test_a_throttle_lets_one_event_a_key_through_per_interval_and_counts_the_rest() -> None:
    throttle = Throttle(0.2)
    assert throttle.passes("garbage", 5) == 5  # the first passes, weighing what it counts
    assert throttle.passes("garbage", 3) == 0  # held back
    assert throttle.passes("garbage") == 0
    assert throttle.passes("oversize", 2) == 2  # keys are throttled apart
    time.sleep(0.25)
    assert throttle.passes("garbage", 1) == 5  # what was held back (3 + 1), and this one
    assert throttle.passes("garbage", 1) == 0
