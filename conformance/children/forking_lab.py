"""Child program: a single-threaded server process for the forking checks (the "lab").

Theory of operation
-------------------
A forking server must never share a process with its clients, and the
checks of ``ForkingMixIn`` need to see what happens *inside* the server
process: which process calls ``close_request`` or ``handle_error``, the
exit status of every child it reaps, whether ``server_close`` returned
before or after a child ended, whether it reaped a child it did not
spawn.  :mod:`harness.processes.server_process` runs ``serve_forever`` in a helper
thread (its main thread watches stdin), so on Python 3.12+ every fork
there comes from a multi-threaded process and warns; this program keeps
the server process **single-threaded**: ``serve_forever`` (or a
``handle_request`` loop) runs in the main thread, and nothing else runs.

``python -m conformance.children.forking_lab SPEC``, started by
:func:`conformance.tools.forking_lab.forking_lab` through
:mod:`harness.processes.supervisor`:

* builds the server with :func:`harness.serving.servers.build_server` and an
  :func:`harness.serving.instrument.instrumented` handler writing to the check's
  :class:`~harness.serving.instrument.EventLog`, in a subclass that also logs
  ``close_request``, ``shutdown_request`` and ``handle_error`` (with the
  pid of the caller), and, from ``service_actions``, every change of
  ``active_children``;
* wraps ``os.waitpid`` so every reaped child is logged with its exit
  status (implementations reap with ``os.waitpid``; one that reaps some
  other way shows up as "never reaped"), and every blocking call of the
  lab process with its start and end (``waiting``/``waited``); the thread
  that serves logs ``serving`` first: a loop that cannot serve again before
  a held handler ends is then seen at once
  (:func:`conformance.tools.forking_lab.loop_stuck`);
* stops when stdin becomes readable: ``service_actions`` (run by
  ``serve_forever`` on every loop) raises a stop exception, the way Ctrl-C
  ends a ``serve_forever`` in the documentation's examples.  A loop that
  never calls ``service_actions`` (a defect SERVE-005 owns) is stopped the
  same way by ``SIGINT``, whose handler raises a stop exception while
  ``serve_forever`` runs: the parent sends it (the supervisor's interrupt
  step) when the lab has not exited ``short()`` after asking on stdin, and
  at once for an implementation where that happened before (the parent
  remembers it), so the forking checks neither depend on that hook nor
  wait for it again.  Then it logs ``server_close`` start and end around
  the call, checks on the optional *foreign* child (a child the lab forked
  itself before building the server, which must still be there for the lab
  to reap), prints a ``teardown`` line and leaves with ``os._exit``;
* on request, reaps the first child behind the server's back
  (``steal_first_child``: ``waitpid(pid, 0)`` before ``service_actions``,
  logged as ``stolen``), or ends a ``handle_request`` loop with one call
  that times out (``final_timeout``);
* is bounded by an interval timer (``lifetime``): whatever hangs, the
  process ends.  Timers are not inherited by forked children.

The lab's body is :func:`harness.subject.agent.lab_serve`, the function the subject
agent runs as ``agent.py --lab`` in another interpreter: here it gets the kit's
adapters (``resolve``), its builder environment
(:data:`harness.serving.instrument.HOST`) and the prerequisite guard, so the FORKING
checks read the same lab in-process and through a subject.

The protocol is JSON lines on the child's stdout (:mod:`harness.processes.child_protocol`);
the child's fd 1 is pointed at its stderr so nothing the implementation
prints can corrupt it.  The adapter's bootstrap runs before the
implementation is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from typing import Any, Dict, List, Optional

from harness.core import prerequisites
from harness.core.prerequisites import PreconditionFailed
from harness.processes.child_protocol import Protocol, bootstrap, take_stdout

SPEC_VERSION = 1
#: The lab's own exit codes.
EXIT_ERROR = 2
EXIT_LIFETIME = 4


def _serve(spec: Dict[str, Any], send, proto_fd: int) -> int:
    """The lab itself is the agent's (:func:`harness.subject.agent.lab_serve`), run
    here with the kit's adapters, budgets and builder (:data:`harness.serving.instrument.HOST`)
    and the prerequisite guard."""
    from harness.implementations import resolve
    from harness.serving import instrument
    from harness.subject import agent

    # a function the parent's probes found not to return ends at once here too (the lab exits by
    # os._exit), and the parent hears of it at once: its check stops waiting for this lab.  The
    # stack is kept: a collected one would close the guard's generator, which removes its trace
    guard_stack = contextlib.ExitStack()

    def load(spec: Dict[str, Any]) -> Any:
        impl = resolve(spec["impl"])
        guard_stack.enter_context(prerequisites.GUARD.active(on_fire=prerequisites.report_to_parent(send)))
        return impl.module, impl.api_version

    def guard() -> Optional[List[Any]]:
        fired = prerequisites.GUARD.fired
        return [fired.behaviour, fired.detail] if fired else None

    return agent.lab_serve(spec, send, proto_fd, load=load, env=instrument.HOST,
                           log=instrument.EventLog(spec["log"]), guard=guard)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    proto_fd = take_stdout()
    send = Protocol(proto_fd).send

    code = EXIT_ERROR
    try:
        spec = json.loads(argv[0])
        if spec.get("version") != SPEC_VERSION:
            raise ValueError(f"spec version {spec.get('version')!r}, expected {SPEC_VERSION}")
        signal.signal(signal.SIGALRM, lambda *_: os._exit(EXIT_LIFETIME))
        signal.signal(signal.SIGINT, lambda *_: None)  # until lab_serve's own handler: ignored unless serving
        signal.setitimer(signal.ITIMER_REAL, float(spec["lifetime"]))
        bootstrap(spec["impl"])
        code = _serve(spec, send, proto_fd)
    except BaseException as exc:
        send(event="error", exc_type=type(exc).__name__, error=str(exc),
             capability=getattr(exc, "capability", None),
             precondition=[exc.behaviour, exc.detail, exc.timed_out] if isinstance(exc, PreconditionFailed) else None)
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
