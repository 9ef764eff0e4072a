"""Controls of the process the implementation runs in: the check's own, or the subject's.

Theory of operation
-------------------
Some checks change or measure the process that runs the server, not the
server: EXT-002 makes ``socket.socketpair()`` fail for the whole serve, and
EXT-001..003 widen their timing windows by the *scheduler lateness* of that
process while the check ran (how much later than asked a control thread
wakes from ``time.sleep``), so that load alone cannot decide an outcome.
In-process (``--impl X``) that process is the check's own; through the
subject agent (``--subject-python EXE``) it is the agent's, whose server
the check drives with :mod:`conformance.tools.remote_bench`.  Both ways run
the same code, the agent module's ``fail_socketpair`` and ``Lateness``
(``harness/subject/agent.py``, its ``ext`` block): called here, or asked of
the agent with the ops ``ext_socketpair``, ``ext_lateness_start`` and
``ext_lateness_result`` (``docs/subject-protocol.md``).  Every wait is
bounded by :mod:`harness.core.timeouts`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional

from harness.core import timeouts
from harness.subject import agent

from .remote_bench import SLICE, _request, subject_of


@contextlib.contextmanager
def socketpair_failing(impl: Any) -> Iterator[None]:
    """``socket.socketpair()`` raises EMFILE in the implementation's process for the block."""
    session = subject_of(impl)

    def switch(on: bool) -> None:
        if session is None:
            agent.fail_socketpair(on)
        else:
            _request(session, "ext_socketpair", budget=timeouts.short(), fail=on)

    switch(True)
    try:
        yield
    finally:
        switch(False)


class Lateness:
    """A control thread in the implementation's process sleeps ``pauses`` one after
    another, started at once: :meth:`result` is how much later than their sum it woke
    (seconds, >= 0), what the load alone adds to the same pauses there and then."""

    def __init__(self, impl: Any, pauses: List[float]) -> None:
        self.pauses = list(pauses)
        self.session = subject_of(impl)
        self.local: Optional[agent.Lateness] = None
        self.key: Optional[str] = None
        if self.session is None:
            self.local = agent.Lateness(self.pauses)
        else:
            self.key = _request(self.session, "ext_lateness_start", budget=timeouts.short(),
                                pauses=self.pauses)["control"]

    def result(self) -> float:
        # short() bounds the wait for a starved control; one that never woke says "as late
        # as the budget", which only loosens the bound it widens
        budget = sum(self.pauses) + timeouts.short()
        late: Optional[float] = None
        if self.local is not None:
            late = self.local.result(budget)
        else:
            deadline = timeouts.Deadline(budget, "the lateness control in the subject")
            for _ in range(1_000_000):
                wait = min(SLICE, max(deadline.remaining(), 0.0))
                late = _request(self.session, "ext_lateness_result", budget=wait + timeouts.short(),
                                control=self.key, wait=wait)["late"]
                if late is not None or deadline.expired():
                    break
        return timeouts.short() if late is None else float(late)


__all__ = ["Lateness", "socketpair_failing"]
