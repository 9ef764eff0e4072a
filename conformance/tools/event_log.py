"""Queries over a :class:`harness.serving.instrument.EventLog`, and the one timeline.

Theory of operation
-------------------
Handlers built by :func:`harness.serving.instrument.instrumented` write their
``phase`` edges (``setup``/``handle``/``finish`` start and end, with pid
and thread) and behaviour events (``hold``, ...) to an event log, a file,
so the same queries work whether the handlers ran in threads of the check's
process or in children of a server process.

Waiting here never raises: :func:`wait_count` waits (bounded) until enough
events match and returns how many did, because a serialising or broken
implementation is an *observation* the check judges (a FAIL with a readable
message), not a harness TIMEOUT.

:func:`timeline` is the one conversion of handler intervals into the rows
of ``observe.timeline`` (the report's concurrency timelines).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional

from harness.core import timeouts
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument
from harness.serving.instrument import EventLog, Interval


def count_events(log: EventLog, **match: Any) -> int:
    return len(instrument.select(log.read(), **match))


def wait_count(log: EventLog, count: int, budget: Optional[float] = None,
               until: Optional[Callable[[List[Dict[str, Any]]], Any]] = None, **match: Any) -> int:
    """Wait (bounded, no raise) until ``count`` events match; return how many do.  fork-wait:
    ``until`` (a function of the events) ends the wait early when true: an observation that
    decides no more will come (e.g. :func:`conformance.tools.forking_lab.loop_stuck`)."""
    budget = timeouts.short() if budget is None else budget
    try:
        log.wait_for(lambda events: len(instrument.select(events, **match)) >= count
                     or (until is not None and bool(until(events))), budget, f"{count} events {match}")
    except HarnessTimeout:
        pass
    return count_events(log, **match)


def handle_edges(log: EventLog, edge: str) -> List[Dict[str, Any]]:
    """The ``handle`` phase events of one ``edge`` (``start`` or ``end``)."""
    return instrument.select(log.read(), kind="phase", phase="handle", edge=edge)


def wait_handle_edges(log: EventLog, edge: str, count: int, budget: Optional[float] = None) -> int:
    """Wait (bounded, no raise) until ``count`` handle ``edge`` events exist; how many do."""
    return wait_count(log, count, budget, kind="phase", phase="handle", edge=edge)


def intervals_of(log: EventLog, requests: Optional[List[str]] = None) -> List[Interval]:
    """The ``handle`` intervals (of ``requests`` only, if given)."""
    found = instrument.intervals(log.read(), "handle")
    if requests is None:
        return found
    wanted = set(requests)
    return [iv for iv in found if iv.request in wanted]


def handle_intervals(log: EventLog, count: int, budget: Optional[float] = None) -> List[Interval]:
    """The ``handle`` intervals once ``count`` of them ended (bounded, no raise)."""
    wait_handle_edges(log, "end", count, budget)
    return intervals_of(log)


def timeline(intervals: Iterable[Interval]) -> List[Dict[str, Any]]:
    """Rows for ``observe.timeline``: the finished intervals' start, end, pid and thread."""
    return [{"start": iv.start, "end": iv.end, "pid": iv.pid, "tid": iv.tid}
            for iv in intervals if iv.end is not None]


__all__ = ["count_events", "handle_edges", "handle_intervals", "intervals_of", "timeline",
           "wait_count", "wait_handle_edges"]
