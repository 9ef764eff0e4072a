"""Child program: one check scenario that changes process-wide state.

Theory of operation
-------------------
Some checks change state a whole process shares (RLIMIT_NOFILE,
``socket.socketpair``, descriptor numbers above FD_SETSIZE), so they run in
a child process: ``python -m conformance.children.process_wide SPEC``,
started by :func:`conformance.tools.child_runs.run_child` through
:func:`harness.processes.supervisor.run_once`.

This module imports only what :mod:`harness.processes.child_protocol` imports until
the adapter's bootstrap (gevent/eventlet patching) has run; then it loads
the implementation the way the parent did
(``harness.implementations.resolve``), runs ``scenario_<name>`` of
:mod:`conformance.children.process_wide_scenarios` and sends its result as
one ``result`` message of the child protocol (whatever the scenario prints
goes to stderr).  A broken prerequisite (:class:`PreconditionFailed`) is
sent as ``{"precondition": [behaviour, detail]}`` and re-raised by the
parent.
"""

from __future__ import annotations

import json
import sys

from harness.processes.child_protocol import Protocol, bootstrap, take_stdout


def main(argv: list) -> None:
    spec = json.loads(argv[0])
    proto = Protocol(take_stdout())
    bootstrap(spec["impl"])
    from conformance.children import process_wide_scenarios
    from harness.core.prerequisites import (
        GUARD,
        PreconditionFailed,
        constructor_failure,
        report_to_parent,
    )
    from harness.implementations import resolve

    ss = resolve(spec["impl"]).module
    try:
        # a function the parent's probes found not to return ends at once here too, and the
        # parent hears of it at once (its check stops waiting for this child's result)
        with GUARD.active(on_fire=report_to_parent(proto.send)):
            result = getattr(process_wide_scenarios, "scenario_" + spec["scenario"])(ss, spec)
    except PreconditionFailed as exc:  # re-raised by run_child
        result = {"precondition": [exc.behaviour, exc.detail]}
    except Exception as exc:
        broken = constructor_failure(exc.__traceback__)  # a class the probes found not to construct
        if broken is None:
            raise
        result = {"precondition": [broken.behaviour, broken.detail]}
    proto.send(event="result", result=result)


if __name__ == "__main__":
    main(sys.argv[1:])
