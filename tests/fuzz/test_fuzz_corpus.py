"""Replay the fuzz corpus through every target (fast; the fuzzer itself runs in CI's fuzz step)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = [(name, path) for name in TARGETS for path in sorted((CORPUS / name).glob("*"))]


@pytest.mark.parametrize(("name", "path"), CASES, ids=[f"{n}/{p.name}" for n, p in CASES])
def test_corpus_input_passes_its_target(name: str, path: Path) -> None:
    TARGETS[name](path.read_bytes())


def test_every_target_has_a_corpus() -> None:
    from tests.fuzz.__main__ import NAMES

    assert {name for name, _ in CASES} == set(TARGETS) == set(NAMES)
