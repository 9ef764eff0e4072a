"""The closed vocabularies shared by checks, records, expectations and reports.

Theory of operation
-------------------
A check has a *level* that says how to judge it, and each run of a check
ends in exactly one *outcome*.

Levels:

``REQUIRED``  every conforming implementation agrees (CPython 3.13 behaviour).
``PLATFORM``  legitimately differs by OS; the observation is recorded and
              compared with the documented expectation for that OS, and the
              outcome is INFO unless a REQUIRED part of the check failed.
``VERSION``   differs by the socketserver API level the implementation
              claims (for the stdlib: the running Python); the check knows
              each level's behaviour and passes or fails against it.
``EXTENSION`` a promise beyond the contract (``harness.core.extensions``): checked
              only for implementations that declare it, UNSUPPORTED otherwise.

Outcomes: see :class:`Outcome`.  ``BAD`` is the set that fails a run when
not expected; ``XFAIL``/``XPASS`` only exist relative to an expectation
file, and ``FLAKY`` only in a ``--repeat`` summary.

``PRECONDITION_FAILED`` (as in wpt) is the outcome of a check that could not
proceed because a behaviour *another* check owns is broken (the loop never
reached its selector, ``shutdown()`` could not stop it): the record names
that check in ``prerequisite`` (:mod:`harness.core.prerequisites`).  It is not in
``BAD``: it fails a run only when its prerequisite did not itself end bad in
the same run (:func:`unexcused`), so the run fails once, for the owner, and a
selection without the owner still fails.
"""

from __future__ import annotations

import enum


class Level(str, enum.Enum):
    REQUIRED = "REQUIRED"
    PLATFORM = "PLATFORM"
    VERSION = "VERSION"
    EXTENSION = "EXTENSION"

    def __str__(self) -> str:
        return self.value


class Outcome(str, enum.Enum):
    PASS = "PASS"  # matches the contract
    FAIL = "FAIL"  # violates the contract
    INFO = "INFO"  # an observation with no verdict (PLATFORM checks)
    UNSUPPORTED = "UNSUPPORTED"  # a capability the check needs is absent
    SKIP = "SKIP"  # deselected or skipped for a reason other than capability
    TIMEOUT = "TIMEOUT"  # a bounded wait ran out: something hung
    ERROR = "ERROR"  # the harness or the implementation broke outside the contract
    XFAIL = "XFAIL"  # failed, and an expectation said it would
    XPASS = "XPASS"  # passed although an expectation said it would fail (stale)
    FLAKY = "FLAKY"  # outcome varied across --repeat runs
    PRECONDITION_FAILED = "PRECONDITION_FAILED"  # a prerequisite another check owns is broken

    def __str__(self) -> str:
        return self.value


#: Outcomes that make a run exit non-zero.
BAD = frozenset({Outcome.FAIL, Outcome.ERROR, Outcome.TIMEOUT, Outcome.XPASS, Outcome.FLAKY})

#: Outcomes that an expectation entry may name.
EXPECTABLE = frozenset(
    {Outcome.FAIL, Outcome.ERROR, Outcome.TIMEOUT, Outcome.UNSUPPORTED, Outcome.SKIP, Outcome.INFO, Outcome.PASS,
     Outcome.PRECONDITION_FAILED}
)


def unexcused(checks):
    """The checks (record entries) that make a run fail: every ``BAD`` outcome,
    and each PRECONDITION_FAILED whose ``prerequisite`` has no bad outcome
    among ``checks`` (it passed, or it was not run)."""
    checks = list(checks)
    bad = {outcome.value for outcome in BAD}
    failed_ids = {check["id"] for check in checks if check["outcome"] in bad}
    return [
        check for check in checks
        if check["outcome"] in bad
        or (check["outcome"] == Outcome.PRECONDITION_FAILED.value
            and check.get("prerequisite") not in failed_ids)
    ]


def raw_outcome(check) -> str:
    """A record entry's outcome before expectations were applied.

    ``XFAIL`` becomes what the expectation said it would be
    (``expected_outcome``, which the record schema requires for XFAIL and
    XPASS; ``FAIL`` if a hand-made entry lacks it), ``XPASS`` becomes
    ``PASS``; every other outcome, ``FLAKY`` included, is already raw."""
    outcome = check["outcome"]
    if outcome == Outcome.XFAIL.value:
        return check.get("expected_outcome") or Outcome.FAIL.value
    if outcome == Outcome.XPASS.value:
        return Outcome.PASS.value
    return outcome
