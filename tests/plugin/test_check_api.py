"""The public check-writing API (``conformance.api``): one argument order, one message format.

Every ``verify*`` function takes the condition (where there is one), then
*what*, then the expected value, then the observed one, and fails with
``[ID @ impl] what: expected E, observed O``.  A call with expected and
observed swapped would print them the wrong way round, which these tests
would catch: they pin which value lands in which place.
"""

from __future__ import annotations

import pytest

from conformance import api
from harness.core.timeouts import HarnessTimeout


@pytest.fixture
def current(monkeypatch):
    monkeypatch.setitem(api.CURRENT, "id", "DEMO-001")
    monkeypatch.setitem(api.CURRENT, "impl", "demo-impl")


def test_verify_message_names_check_impl_what_expected_observed(current):
    with pytest.raises(AssertionError) as caught:
        api.verify(False, "the reply", b"AA", b"aa")
    assert str(caught.value) == "[DEMO-001 @ demo-impl] the reply: expected b'AA', observed b'aa'"


def test_verify_passes_when_the_condition_holds(current):
    api.verify(True, "the reply", b"AA", b"AA")


def test_verify_equal_takes_what_expected_observed(current):
    with pytest.raises(AssertionError) as caught:
        api.verify_equal("handlers at once", 4, 1)
    assert str(caught.value) == "[DEMO-001 @ demo-impl] handlers at once: expected 4, observed 1"
    api.verify_equal("handlers at once", 4, 4)


def test_verify_equal_and_verify_give_the_same_message(current):
    messages = []
    for call in (lambda: api.verify_equal("x", [1], [2]), lambda: api.verify([2] == [1], "x", [1], [2])):
        with pytest.raises(AssertionError) as caught:
            call()
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_long_values_are_shortened(current):
    with pytest.raises(AssertionError) as caught:
        api.verify_equal("data", b"x", b"y" * 1000)
    observed = str(caught.value).split("observed ", 1)[1]
    assert len(observed) == 300 and observed.endswith("...")


def test_verify_returned_is_a_timeout_naming_the_call(current):
    api.verify_returned(True, "shutdown()", 1.5)
    with pytest.raises(HarnessTimeout) as caught:
        api.verify_returned(False, "shutdown()", 1.5)
    assert "[DEMO-001 @ demo-impl] shutdown() to return" in str(caught.value)
    assert not isinstance(caught.value, AssertionError)


def test_every_verify_function_puts_what_before_expected_before_observed():
    import inspect

    for name in ("verify", "verify_equal"):
        parameters = list(inspect.signature(getattr(api, name)).parameters)
        assert parameters[-3:] == ["what", "expected", "observed"], name
