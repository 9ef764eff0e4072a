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
  other way shows up as "never reaped");
* stops when stdin becomes readable: ``service_actions`` (run by
  ``serve_forever`` on every loop) raises :class:`_Stop`, the way Ctrl-C
  ends a ``serve_forever`` in the documentation's examples.  A loop that
  never calls ``service_actions`` (a defect SERVE-005 owns) is stopped the
  same way by ``SIGINT``, whose handler raises :class:`_Stop` while
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

The protocol is JSON lines on the child's stdout (:mod:`harness.processes.child_protocol`);
the child's fd 1 is pointed at its stderr so nothing the implementation
prints can corrupt it.  The adapter's bootstrap runs before the
implementation is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
from typing import Any, Dict, List, Optional

from harness.core import addresses, prerequisites, timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.processes.child_protocol import Protocol, bootstrap, take_stdout

SPEC_VERSION = 1
#: Exit status of the foreign child the lab forks (bpo-1540386 check).
FOREIGN_STATUS = 7
#: The lab's own exit codes.
EXIT_OK = 0
EXIT_ERROR = 2
EXIT_LIFETIME = 4


class _Stop(BaseException):
    """Raised from service_actions to leave serve_forever (like Ctrl-C)."""


_SERVING = [False]


def _on_stop_signal(signum: int, frame: Any) -> None:
    if _SERVING[0]:
        _SERVING[0] = False
        raise _Stop()


def _exitcode(status: int) -> Optional[int]:
    try:
        return os.waitstatus_to_exitcode(status)
    except (AttributeError, ValueError):
        return None


def _stdin_readable(timeout: float = 0.0) -> bool:
    # sys.stdin, not the bare descriptor 0: eventlet's green select ignores
    # descriptor 0 passed as an int (it tests the descriptor for truth).
    try:
        readable, _, _ = select.select([sys.stdin], [], [], timeout)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _encode(address: Any) -> Any:
    return list(address) if isinstance(address, tuple) else address


def _children(server: Any) -> Optional[List[int]]:
    children = getattr(server, "active_children", None)
    return None if children is None else sorted(int(pid) for pid in children)


def _serve(spec: Dict[str, Any], send) -> int:
    from harness.implementations import resolve
    from harness.serving import instrument, servers

    log = instrument.EventLog(spec["log"])
    original_waitpid = os.waitpid

    def waitpid(pid, options):
        result = original_waitpid(pid, options)
        if result[0]:
            log.append(kind="reaped", child=result[0], requested=pid, exitcode=_exitcode(result[1]))
        return result

    os.waitpid = waitpid  # see the module docstring

    foreign = None
    if spec.get("foreign_child"):
        read_end, write_end = os.pipe()
        foreign = os.fork()
        if foreign == 0:  # the foreign child: exits at once, stays a zombie until reaped
            os._exit(FOREIGN_STATUS)
        os.close(write_end)
        # EOF once the child exited (its descriptors are closed).  Bounded by a
        # select first: gevent defers os.close() of a pipe until its hub runs,
        # so an unguarded read could wait for an EOF that never comes.
        ready, _, _ = select.select([read_end], [], [], timeouts.short())
        if ready:
            os.read(read_end, 1)
        os.close(read_end)
        log.append(kind="foreign", child=foreign)

    impl = resolve(spec["impl"])
    module = impl.module
    class_name = spec["server_class"]
    family = addresses.family_for_class(class_name)
    base_name = spec.get("handler_base") or (
        "DatagramRequestHandler" if addresses.is_datagram_class(class_name) else "StreamRequestHandler")
    handler = instrument.instrumented(getattr(module, base_name), spec["behaviour"], log,
                                      **spec.get("options", {}))
    base = servers.server_class(module, class_name)
    last: List[Any] = ["unset"]

    def close_request(self, request):
        log.append(kind="call", method="close_request")
        return base.close_request(self, request)

    def shutdown_request(self, request):
        log.append(kind="call", method="shutdown_request")
        return base.shutdown_request(self, request)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        log.append(kind="call", method="handle_error", exc_type=type(exc).__name__ if exc else None)

    steal = [bool(spec.get("steal_first_child"))]

    def service_actions(self):
        if steal[0]:
            current = _children(self)
            if current:  # reap the first child behind the server's back
                steal[0] = False
                pid, status = original_waitpid(current[0], 0)
                log.append(kind="stolen", child=pid, exitcode=_exitcode(status))
        base.service_actions(self)
        state = _children(self)
        if state != last[0]:
            last[0] = state
            log.append(kind="children", active=state)
        if _stdin_readable():
            raise _Stop()

    address = addresses.server_address_for(family, spec["directory"], name="srv")
    # a function the parent's probes found not to return ends at once here too (the lab exits by os._exit)
    # (and the parent hears of it at once: its check stops waiting for this lab).  The stack is
    # kept: a collected one would close the guard's generator, which removes its trace at once
    guard = contextlib.ExitStack()
    guard.enter_context(prerequisites.GUARD.active(on_fire=prerequisites.report_to_parent(send)))
    server = servers.build_server(module, class_name, handler, address, close_request=close_request,
                                  shutdown_request=shutdown_request, handle_error=handle_error,
                                  service_actions=service_actions, **spec.get("attrs", {}))
    log.append(kind="server", event="ready")
    send(event="ready", address=_encode(server.server_address), pid=os.getpid(),
         foreign=foreign, api=list(impl.api_version))

    error = None
    try:
        if spec.get("mode", "serve_forever") == "serve_forever":
            _SERVING[0] = True
            try:
                server.serve_forever(timeouts.poll())
            finally:
                _SERVING[0] = False
        else:
            for _ in range(int(spec.get("requests", 1))):
                server.handle_request()
            if spec.get("final_timeout") is not None:  # one more call, meant to time out
                server.timeout = float(spec["final_timeout"])
                log.append(kind="server", event="final_request", active=_children(server))
                server.handle_request()
            log.append(kind="server", event="handled", active=_children(server))
            _stdin_readable(float(spec["lifetime"]))
    except _Stop:
        pass
    except BaseException as exc:  # reported, then the teardown still runs
        error = f"{type(exc).__name__}: {exc}"
    log.append(kind="server_close", edge="start", active=_children(server))
    close_error = None
    try:
        server.server_close()
    except BaseException as exc:
        close_error = f"{type(exc).__name__}: {exc}"
    log.append(kind="server_close", edge="end", active=_children(server))

    foreign_state = None
    if foreign is not None:
        try:
            _, status = original_waitpid(foreign, 0)
            foreign_state = {"reaped_by_lab": True, "exitcode": _exitcode(status)}
        except ChildProcessError:
            foreign_state = {"reaped_by_lab": False, "exitcode": None}
    fired = prerequisites.GUARD.fired
    send(event="teardown", error=error, close_error=close_error, active_children=_children(server),
         foreign=foreign_state, precondition=[fired.behaviour, fired.detail] if fired else None)
    return EXIT_OK if error is None and close_error is None else EXIT_ERROR


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    send = Protocol(take_stdout()).send

    code = EXIT_ERROR
    try:
        spec = json.loads(argv[0])
        if spec.get("version") != SPEC_VERSION:
            raise ValueError(f"spec version {spec.get('version')!r}, expected {SPEC_VERSION}")
        signal.signal(signal.SIGALRM, lambda *_: os._exit(EXIT_LIFETIME))
        signal.signal(signal.SIGINT, _on_stop_signal)  # ignored unless serve_forever runs
        signal.setitimer(signal.ITIMER_REAL, float(spec["lifetime"]))
        bootstrap(spec["impl"])
        code = _serve(spec, send)
    except BaseException as exc:
        send(event="error", exc_type=type(exc).__name__, error=str(exc),
             capability=getattr(exc, "capability", None),
             precondition=[exc.behaviour, exc.detail, exc.timed_out] if isinstance(exc, PreconditionFailed) else None)
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
