"""Every wait in the kit takes its bound from this module.

Theory of operation
-------------------
A conformance run talks to an implementation that may be slow, broken or
hung.  The kit therefore never waits without a bound: each ``recv``,
``accept``, ``join``, ``Event.wait`` and subprocess wait is given one of the
named budgets below, scaled by a single multiplier so that a slow machine
(a loaded CI runner, PyPy before its JIT warms up, valgrind) can stretch all
of them at once without editing code.

The multiplier comes, in this order, from :func:`set_multiplier` (the
``--timeout-multiplier`` option of the CLI and the pytest plugin), the
``SSCONFORM_TIMEOUT_MULTIPLIER`` environment variable, and finally ``1.0``.
Child processes inherit it through the environment: :func:`set_multiplier`
exports it.

Budgets (seconds, before scaling):

``SHORT``   an event that should happen at once on an idle machine
            (a loopback connect, a handler starting, a reply arriving).
``MEDIUM``  a round of work: a few hundred requests, a server teardown.
``LONG``    a whole swarm, a subprocess running a server, a benchmark round.
``ABSENCE`` how long to watch for something that must *not* happen (a
            serialising server starting a second handler).  Such waits can
            only prove absence within a window, so the window is kept small
            and is the only place a check spends time idle.
``POLL``    the ``poll_interval`` given to ``serve_forever`` in checks that
            are not about the poll interval itself.

When a budget runs out the kit raises :class:`HarnessTimeout`.  It is *not*
a subclass of ``TimeoutError`` (= ``socket.timeout``) on purpose: a check
that expects a socket timeout from the implementation must not confuse it
with the harness giving up.  The pytest plugin turns it into the TIMEOUT
outcome.
"""

from __future__ import annotations

import os
import time
from typing import Optional

ENV_VAR = "SSCONFORM_TIMEOUT_MULTIPLIER"

_BASE = {
    "SHORT": 5.0,
    "MEDIUM": 15.0,
    "LONG": 60.0,
    "ABSENCE": 0.25,
    "POLL": 0.01,
}

_multiplier: Optional[float] = None


class HarnessTimeout(Exception):
    """A bounded wait of the harness ran out.

    ``what`` names what was being waited for, ``budget`` is the scaled
    budget in seconds.  The message is written for a person reading a
    report: it says what hung.
    """

    def __init__(self, what: str, budget: float):
        super().__init__(f"timed out after {budget:.2f}s waiting for {what}")
        self.what = what
        self.budget = budget


def _parse(value: str, source: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{source}: timeout multiplier {value!r} is not a number") from None
    if not (number > 0 and number < 1000):
        raise ValueError(f"{source}: timeout multiplier {value!r} must be > 0 and < 1000")
    return number


def multiplier() -> float:
    """The multiplier in force (see module docstring for the precedence)."""
    if _multiplier is not None:
        return _multiplier
    raw = os.environ.get(ENV_VAR)
    if raw:
        return _parse(raw, ENV_VAR)
    return 1.0


def set_multiplier(value: float | str | None, export: bool = True) -> None:
    """Set the multiplier for this process (and, with ``export``, its children)."""
    global _multiplier
    if value is None:
        _multiplier = None
        return
    number = _parse(str(value), "--timeout-multiplier")
    _multiplier = number
    if export:
        os.environ[ENV_VAR] = repr(number)


def scaled(name: str) -> float:
    """The named budget times the multiplier; ``POLL`` is never scaled."""
    base = _BASE[name]
    if name == "POLL":
        return base
    return base * multiplier()


def short() -> float:
    return scaled("SHORT")


def medium() -> float:
    return scaled("MEDIUM")


def long() -> float:
    return scaled("LONG")


def absence() -> float:
    return scaled("ABSENCE")


def poll() -> float:
    return scaled("POLL")


class Deadline:
    """A point in monotonic time derived from a budget.

    >>> d = Deadline(short(), "the reply")
    >>> sock.settimeout(d.remaining())      # never negative, never None
    >>> d.check()                           # raises HarnessTimeout when past
    """

    def __init__(self, budget: float, what: str = "an event"):
        self.budget = budget
        self.what = what
        self.start = time.monotonic()
        self.end = self.start + budget

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def check(self) -> None:
        if self.expired():
            raise HarnessTimeout(self.what, self.budget)

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def wait_event(event, budget: float, what: str) -> None:
    """``event.wait(budget)`` that raises :class:`HarnessTimeout` when unset."""
    if not event.wait(budget):
        raise HarnessTimeout(what, budget)


def join_thread(thread, budget: float, what: str) -> None:
    """``thread.join(budget)`` that raises :class:`HarnessTimeout` when alive."""
    thread.join(budget)
    if thread.is_alive():
        raise HarnessTimeout(what, budget)


def wait_until(predicate, budget: float, what: str, interval: float = 0.002) -> None:
    """Poll ``predicate`` until true, bounded by ``budget``.

    For state that offers no event to wait on (a file appearing, a process
    table entry going away).  The interval grows to at most 50 ms so that a
    long wait does not burn a core.
    """
    deadline = Deadline(budget, what)
    delay = interval
    while not predicate():
        if deadline.expired():
            raise HarnessTimeout(what, budget)
        time.sleep(min(delay, deadline.remaining()))
        delay = min(delay * 2, 0.05)
