"""One-shot child programs of the checks, started through the supervisor.

Theory of operation
-------------------
A check whose scenario must not run in the check's own process (it changes
process-wide state, or it needs an interpreter in which the implementation
was imported differently) runs it in one of the programs of
:mod:`conformance.children`, through
:func:`harness.processes.supervisor.run_once`: its own session, a JSON-lines
protocol on a private descriptor, the first ``result`` message waited for
within a budget, then stopped and reaped.  A child that sends no result
raises ``RuntimeError`` with its stderr tail; one that does not finish in
time, :class:`~harness.core.timeouts.HarnessTimeout`.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Optional

from harness.core import timeouts
from harness.core.prerequisites import PreconditionFailed

from .closed_loop import INTERVAL


def run_child(impl_spec: str, scenario: str, budget: Optional[float] = None, **options: Any) -> Dict[str, Any]:
    """Run ``scenario_<scenario>(ss, spec)`` of
    :mod:`conformance.children.process_wide_scenarios` in a child process
    (bounded by ``budget``, default ``medium()``) and return its result."""
    from harness.processes import supervisor

    budget = timeouts.medium() if budget is None else budget
    spec = dict(options, impl=impl_spec, scenario=scenario)
    message = supervisor.run_once([sys.executable, "-m", "conformance.children.process_wide", json.dumps(spec)],
                                  budget=budget, what=f"the {scenario} scenario's child process")
    result: Dict[str, Any] = message["result"]
    if isinstance(result.get("precondition"), list):
        raise PreconditionFailed(*result["precondition"], timed_out=True)
    return result


def closed_under_loop_without_poll(impl_spec: str, interval: float = INTERVAL, in_loop: bool = False) -> Dict[str, Any]:
    """:func:`conformance.tools.closed_loop.closed_under_loop` in a child whose
    ``selectors`` has no ``PollSelector`` (:mod:`conformance.children.no_poll`),
    bounded by ``timeouts.long()``."""
    from harness.processes import supervisor

    if os.path.isfile(impl_spec):
        impl_spec = os.path.abspath(impl_spec)
    spec = {"impl": impl_spec, "absent": ["poll"], "interval": interval, "in_loop": in_loop}
    command = [sys.executable, "-m", "conformance.children.no_poll", json.dumps(spec)]
    result = supervisor.run_once(command, what="the SelectSelector child to finish", budget=timeouts.long())
    if isinstance(result.get("precondition"), list):
        raise PreconditionFailed(*result["precondition"], timed_out=True)
    if not result.get("ok"):
        raise RuntimeError(f"SelectSelector child failed: {result.get('error')}")
    observed: Dict[str, Any] = result["observed"]
    return observed


def closed_under_loop_select(impl: Any, in_loop: bool = False) -> Dict[str, Any]:
    """ext: :func:`closed_under_loop_without_poll` for ``impl`` wherever it runs: in a host
    child for an implementation of this process, in a fresh agent of the subject's
    interpreter without ``PollSelector`` (``SubjectSession.without_poll``) for one in a
    subject, driven as a bench server (:func:`conformance.tools.closed_loop.closed_under_loop`)."""
    from .closed_loop import closed_under_loop
    from .remote_bench import subject_of

    session = subject_of(impl)
    if session is None:
        return closed_under_loop_without_poll(impl.spec, in_loop=in_loop)
    with session.without_poll() as variant:
        return closed_under_loop(None, impl=variant, in_loop=in_loop)


__all__ = ["closed_under_loop_select", "closed_under_loop_without_poll", "run_child"]
