"""Child program: ``server_close()`` under a running loop, without ``PollSelector``.

Theory of operation
-------------------
SHUTDOWN-012 and EXT-004 observe :func:`conformance.tools.closed_loop.closed_under_loop`
also on the ``SelectSelector`` path (Windows).  CPython and ``reference_impl``
choose their selector when they are imported, so the path can only be taken
in a fresh interpreter: ``python -m conformance.children.no_poll SPEC``,
started by :func:`conformance.tools.child_runs.closed_under_loop_without_poll`
through :func:`harness.processes.supervisor.run_once`.

Order matters: the adapter's bootstrap (gevent/eventlet patching) first, then
``selectors.PollSelector`` and ``select.poll`` are deleted -- the same
simulation as ``SSCONFORM_SIMULATE_ABSENT=poll`` -- then the implementation
is imported and the scenario runs.  Until the bootstrap this module imports
only what :mod:`harness.processes.child_protocol` imports.  The child sends one
``result`` message (anything the implementation prints goes to stderr) and
leaves with ``os._exit`` so that a stuck daemon thread cannot keep it alive.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List

from harness.processes.child_protocol import Protocol, bootstrap, take_stdout


def _simulate_no_poll() -> None:
    import select
    import selectors

    for module, name in ((selectors, "PollSelector"), (select, "poll")):
        if hasattr(module, name):
            delattr(module, name)


def main(argv: List[str]) -> int:
    proto = Protocol(take_stdout())
    spec = json.loads(argv[0])
    bootstrap(spec["impl"])
    if "poll" in spec.get("absent", ()):
        _simulate_no_poll()
    from conformance.tools.closed_loop import closed_under_loop
    from harness.core.observations import summary
    from harness.core.prerequisites import (
        GUARD,
        PreconditionFailed,
        constructor_failure,
        report_to_parent,
    )
    from harness.implementations import resolve

    try:
        module = resolve(spec["impl"]).module
        # a function the parent's probes found not to return ends at once, and the parent hears of it
        with GUARD.active(on_fire=report_to_parent(proto.send)):
            observed = closed_under_loop(module, spec["interval"], spec.get("in_loop", False))
        result: Dict[str, Any] = {"ok": True, "observed": observed}
    except BaseException as exc:  # reported to the parent check
        result = {"ok": False, "error": summary(exc), "type": type(exc).__name__}
        broken = exc if isinstance(exc, PreconditionFailed) else constructor_failure(exc.__traceback__)
        if broken is not None:  # re-raised as such by the parent
            result["precondition"] = [broken.behaviour, broken.detail]
    proto.send(event="result", **result)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
