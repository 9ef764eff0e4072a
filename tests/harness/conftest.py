"""Fixtures shared by the harness tests (tests/harness/test_prerequisites*.py)."""

from __future__ import annotations

import pytest

from harness.core import prerequisites, timeouts
from harness.core.prerequisites import LATCH


@pytest.fixture
def latch(tmp_path, monkeypatch):
    """An empty latch shared through a file of this test's own; cleared afterwards."""
    path = tmp_path / "latch.jsonl"
    path.write_text("")
    monkeypatch.setenv(prerequisites.ENV_VAR, str(path))
    LATCH.clear()
    saved = timeouts._multiplier
    timeouts.set_multiplier(0.2, export=False)  # a probe's budget is short(): 1 s here
    yield path
    timeouts.set_multiplier(saved, export=False)
    LATCH.clear()
