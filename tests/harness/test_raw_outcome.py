"""One raw outcome: the outcome of a record entry before expectations were applied.

``harness.implementations.alternatives`` (deviations from the baseline) and
``harness.results.expectations.update`` (deriving expectation entries) used to have
one ``raw_outcome`` each, and they disagreed on XFAIL; both now use
:func:`harness.core.outcomes.raw_outcome`.
"""

from __future__ import annotations

import pytest

from harness.core import outcomes
from harness.implementations import alternatives
from harness.results import expectations


@pytest.mark.parametrize("entry, raw", [
    ({"outcome": "XFAIL", "expected_outcome": "TIMEOUT"}, "TIMEOUT"),
    ({"outcome": "XFAIL", "expected_outcome": "PRECONDITION_FAILED"}, "PRECONDITION_FAILED"),
    ({"outcome": "XFAIL", "expected_outcome": None}, "FAIL"),
    ({"outcome": "XPASS", "expected_outcome": "FAIL"}, "PASS"),
    ({"outcome": "FLAKY"}, "FLAKY"),
    ({"outcome": "INFO"}, "INFO"),
    ({"outcome": "ERROR"}, "ERROR"),
])
def test_raw_outcome(entry, raw):
    assert outcomes.raw_outcome(entry) == raw


def test_one_implementation():
    assert alternatives.raw_outcome is outcomes.raw_outcome
    assert not hasattr(expectations, "_raw_outcome")


def _record(check):
    return {"implementation": {"name": "gevent", "version": "24.2"},
            "fingerprint": {"os": "linux", "python_version": "3.12.1", "python_implementation": "CPython"},
            "checks": [dict({"id": "TCP-001", "variant": ""}, **check)]}


def test_an_xfail_is_what_the_expectation_said_for_update_and_alternatives():
    xfail = {"outcome": "XFAIL", "expected_outcome": "TIMEOUT"}
    derived = expectations.loads(expectations.update([_record(xfail)]), source="updated.toml")
    assert [(e.id, e.outcome) for e in derived] == [("TCP-001", "TIMEOUT")]
    # the alternatives page compares the same raw outcome with the baseline's
    assert alternatives.raw_outcome(_record(xfail)["checks"][0]) == "TIMEOUT"


def test_a_flaky_outcome_derives_no_expectation():
    derived = expectations.loads(expectations.update([_record({"outcome": "FLAKY"})]), source="updated.toml")
    assert list(derived) == []
