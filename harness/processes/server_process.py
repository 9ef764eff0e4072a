"""Run a server of the implementation under test in a separate process.

Theory of operation
-------------------
Forking servers must not share a process with their clients: each forked
handler child would inherit every client socket open at fork time, and a
client waiting for EOF would wait for all of those copies to close.  Some
disconnect scenarios also need the server in another process to kill it.
So :func:`serve_in_process` starts ``python -m harness.processes.server_process``
with a JSON *spec* (implementation spec, class name, behaviour name,
family, class attributes, handler options) and the child builds the same
server the in-thread path would: :func:`harness.serving.servers.build_server` with
an :func:`harness.serving.instrument.instrumented` handler that writes to an
:class:`~harness.serving.instrument.EventLog` in a private directory made by the
parent (where the AF_UNIX server path lives too).

Protocol (child side, :func:`main`): the real stdout is kept as a private
descriptor for JSON lines and fd 1 is pointed at stderr, so whatever the
implementation prints cannot corrupt the protocol.  The child prints
``{"event": "ready", "address": ...}`` once ``serve_forever``'s loop runs
(via :func:`harness.serving.servers.serve_in_thread`), or ``{"event": "error"}``
if it cannot build the server.  It serves until stdin says ``stop`` or
closes (so an orphaned child stops when its parent dies), bounded by a
lifetime, then tears down and prints ``{"event": "teardown", ...}`` with
the timings, anything that hung, and ``active_children`` for forking
servers, and leaves with ``os._exit`` (a stuck non-daemon handler thread
cannot keep it alive).  Forked handler children close the protocol
descriptor (``os.register_at_fork``) so they cannot hold the pipe open.

Parent side: :func:`serve_in_process` starts, reads, stops and reaps the
child through :mod:`harness.processes.supervisor` (its own session or
process group; messages read by daemon threads, so each wait is a bounded
queue get).  Teardown asks (``stop`` on stdin, then end of file), waits
bounded for the child's teardown, then kills what remains with its whole
process group (forked handler children included; survivors of the leader
are reported as ``leaked_group``).  The child is always reaped.  A child
that never becomes ready raises :class:`~harness.core.timeouts.HarnessTimeout`
with its stderr tail in the message.

This module avoids importing ``socket``/``threading`` at import time so a
bootstrapping adapter (gevent, eventlet) can patch first in the child.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from typing import Any, Dict, Iterator, List, Optional

from harness.core.prerequisites import PreconditionFailed  # imports only os (EventLog on use)
from harness.core.timeouts import HarnessTimeout  # imports only os and time
from harness.processes.child_protocol import (  # imports only os, sys, json
    Protocol,
    bootstrap,
    take_stdout,
)

SPEC_VERSION = 1
STOP = "stop"


class ServerProcessError(RuntimeError):
    """The server process failed (could not build or serve the server)."""


def _encode_address(address: Any) -> Any:
    if isinstance(address, tuple):
        return list(address)
    if isinstance(address, bytes):
        return address.decode("utf-8", "surrogateescape")
    return address


def _decode_address(address: Any, family: str) -> Any:
    if isinstance(address, list):
        return tuple(address)
    return address


# =========================================================================== child side


def _children_state(server: Any) -> Dict[str, Any]:
    children = getattr(server, "active_children", None)
    if children is None:
        return {"active_children": None, "alive_children": []}
    pids = sorted(int(p) for p in children)
    alive = []
    for pid in pids:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue  # already reaped (by someone else)
        if finished == 0:
            alive.append(pid)
    return {"active_children": pids, "alive_children": alive}


def _serve(spec: Dict[str, Any], proto: Protocol) -> int:
    import threading

    from harness.core import prerequisites, timeouts
    from harness.implementations import resolve
    from harness.serving import instrument, servers

    impl = resolve(spec["impl"])
    log = instrument.EventLog(spec["log"])
    stop = threading.Event()
    stop_reason: Dict[str, str] = {}

    def interrupted() -> None:  # the serve thread called a function known not to return
        stop_reason.setdefault("reason", "a function known not to return was called")
        stop.set()

    guard = contextlib.ExitStack()  # closed when serving ended; on an error the process exits anyway
    # a function the parent's probes found not to return ends at once here too, and
    # ends this server (its clients then see it closed instead of waiting for a reply)
    guard.enter_context(prerequisites.GUARD.active(interrupted, on_fire=prerequisites.report_to_parent(proto.send)))
    server = instrument.build_server(impl.module, spec, log)  # the agent's builder, as every path

    def note(line: bytes) -> bool:
        if line.strip() == STOP.encode("ascii"):
            stop_reason.setdefault("reason", "stop")
            return True
        return False

    def watch_stdin() -> None:
        # a real thread blocked in read(): reacts at once
        try:
            for _ in range(1_000_000):
                line = sys.stdin.buffer.readline()
                if not line:
                    stop_reason.setdefault("reason", "stdin closed")
                    break
                if note(line):
                    break
        finally:
            stop.set()

    def poll_stdin(budget: float) -> None:
        # in a monkey-patched process "threads" are greenlets and a blocking
        # read would stall the hub, so read non-blocking and sleep
        # cooperatively in between (POSIX; pipes cannot be non-blocking on
        # Windows before 3.12)
        deadline = timeouts.Deadline(budget, "stop on stdin")
        pending = b""
        while not deadline.expired():
            try:
                chunk = os.read(0, 4096)
            except BlockingIOError:
                chunk = None
            if chunk == b"":
                stop_reason.setdefault("reason", "stdin closed")
                return
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if any(note(line) for line in lines):
                    return
            stop.wait(min(5 * timeouts.poll(), deadline.remaining()))
        stop_reason.setdefault("reason", f"lifetime of {budget:.1f}s expired")

    cooperative = bool(spec.get("_bootstrapped")) and os.name == "posix"
    if cooperative:
        os.set_blocking(0, False)
    else:
        threading.Thread(target=watch_stdin, name="ssc-stdin", daemon=True).start()

    teardown: Dict[str, Any] = {}
    error: Optional[str] = None
    lifetime = float(spec.get("lifetime") or 3 * timeouts.long())
    served = None
    try:
        with servers.serve_in_thread(server, spec.get("poll_interval"), check_leaks=False,
                                     allow_forking=True) as served:
            log.append(kind="server", event="ready", pid=os.getpid())
            proto.send(event="ready", address=_encode_address(served.address), family=served.family,
                       pid=os.getpid(), server_class=type(server).__mro__[1].__name__,
                       handler=server.RequestHandlerClass.__name__, impl=impl.describe())
            if cooperative:
                poll_stdin(lifetime)
            elif not stop.wait(lifetime):
                stop_reason.setdefault("reason", f"lifetime of {lifetime:.1f}s expired")
    except timeouts.HarnessTimeout as exc:
        error = f"HarnessTimeout: {exc}"
    except PreconditionFailed as exc:  # re-raised as such by the parent
        if served is None:
            raise  # before "ready": main() sends it as the error the parent waits for
        error = f"PreconditionFailed: {exc}"
        teardown["precondition"] = [exc.behaviour, exc.detail]
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        guard.close()
    fired = prerequisites.GUARD.fired
    if fired is not None and "precondition" not in teardown:
        teardown["precondition"] = [fired.behaviour, fired.detail]
    if served is not None:
        teardown.update(served.teardown.as_dict())
    teardown.update(_children_state(server))
    teardown["threads_alive"] = [
        t.name for t in threading.enumerate()
        if t is not threading.current_thread() and t.is_alive() and t.name != "ssc-stdin"
        and not t.name.startswith("ssc-bounded:")
    ]
    log.append(kind="server", event="teardown", error=error)
    proto.send(event="teardown", teardown=teardown, error=error,
               reason=stop_reason.get("reason", "serve ended"))
    return 0 if error is None else 3


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    proto = Protocol(take_stdout())
    try:
        raw = argv[0] if argv and argv[0] != "-" else sys.stdin.buffer.readline().decode("utf-8")
        spec = json.loads(raw)
        if spec.get("version") != SPEC_VERSION:
            raise ValueError(f"spec version {spec.get('version')!r}, expected {SPEC_VERSION}")
        spec["_bootstrapped"] = bootstrap(spec["impl"])
        code = _serve(spec, proto)
    except BaseException as exc:
        capability = getattr(exc, "capability", None)
        precondition = [exc.behaviour, exc.detail, exc.timed_out] if isinstance(exc, PreconditionFailed) else None
        proto.send(event="error", exc_type=type(exc).__name__, error=str(exc),
                   capability=capability, precondition=precondition)
        code = 2
    sys.stderr.flush()
    os._exit(code)  # stuck non-daemon threads must not keep us alive
    return code  # pragma: no cover


# =========================================================================== parent side


@dataclasses.dataclass
class ProcessServer:
    address: Any
    family: str
    log: Any  # harness.serving.instrument.EventLog
    pid: int
    popen: Any  # subprocess.Popen
    directory: str = ""
    ready: Dict[str, Any] = dataclasses.field(default_factory=dict)
    teardown: Dict[str, Any] = dataclasses.field(default_factory=dict)
    child: Any = None  # harness.processes.supervisor.Child

    def stderr_tail(self, lines: int = 40) -> str:
        return self.child.stderr_tail(lines) if self.child is not None else ""


@contextlib.contextmanager
def serve_in_process(impl_spec: str, server_class: str, behaviour: str = "echo", *,
                     family: Optional[str] = None, attrs: Optional[Dict[str, Any]] = None,
                     poll_interval: Optional[float] = None, handler_base: Optional[str] = None,
                     options: Optional[Dict[str, Any]] = None, hooks: Optional[Dict[str, str]] = None,
                     lifetime: Optional[float] = None,
                     ready_budget: Optional[float] = None, stop_budget: Optional[float] = None,
                     check_leaks: bool = False, env: Optional[Dict[str, str]] = None,
                     python: Optional[str] = None) -> Iterator[ProcessServer]:
    """Serve ``server_class`` of ``impl_spec`` in a child process.

    ``family`` defaults to what the class name implies; ``handler_base``
    (a class name in the implementation module) to ``StreamRequestHandler``
    or ``DatagramRequestHandler``; ``options`` go to the behaviour;
    ``lifetime`` bounds how long the child serves (default ``3 * long()``).
    ``ready_budget`` (default ``long()``: interpreter start-up) bounds the
    wait for the address, ``stop_budget`` (default: the child's own teardown
    budgets plus ``short()``) the wait for it to exit before it is killed.
    With ``check_leaks``, forked children or handler threads that outlived
    ``server_close()`` raise :class:`harness.serving.servers.LeakError`; otherwise
    they are only recorded in ``ProcessServer.teardown`` (and killed).
    ``python`` runs the child under another interpreter.
    """
    from harness.core import addresses, prerequisites, timeouts
    from harness.processes import supervisor
    from harness.serving import instrument, servers

    family = family or addresses.family_for_class(server_class)
    addresses.require(family)
    servers.require_for(server_class)  # refuse Unix*/Forking* clearly, before spawning
    if python is None and server_class.startswith("Forking"):
        broken = prerequisites.forked_handler_needs(server_class)  # its forked handlers could not tell the check
        if broken is not None:
            raise broken
    with addresses.private_dir() as directory:
        log = instrument.EventLog.create(directory)
        spec = instrument.server_spec(server_class, behaviour, family=family, directory=directory, attrs=attrs,
                                      handler_base=handler_base, options=options, hooks=hooks,
                                      version=SPEC_VERSION, impl=impl_spec, poll_interval=poll_interval,
                                      log=log.path, lifetime=lifetime)
        command = [python or sys.executable, "-m", "harness.processes.server_process", json.dumps(spec)]
        child = supervisor.start(command, what=f"server process {server_class}", env=supervisor.child_env(env),
                                 cwd=directory, protocol=True, stdin=True)
        proc = ProcessServer(address=None, family=family, log=log, pid=child.pid, popen=child.popen,
                             directory=directory, child=child)
        try:
            ready_budget_ = timeouts.long() if ready_budget is None else ready_budget
            deadline = timeouts.Deadline(ready_budget_, f"server process {server_class} to start")
            ready = None
            while ready is None:
                message = child.next_message(deadline)
                if message is None:
                    raise HarnessTimeout(
                        f"server process {server_class} ({impl_spec}) to print its address; "
                        f"stderr tail:\n{child.stderr_tail()}", ready_budget_)
                event = message.get("event")
                if event == "ready":
                    ready = message
                elif event == "error":
                    child.wait(timeouts.short())
                    _raise_child_error(message, child.stderr_tail(), server_class, impl_spec)
                elif event == "eof":
                    code = child.wait(timeouts.short())
                    raise ServerProcessError(
                        f"server process {server_class} ({impl_spec}) exited (code {code}) "
                        f"before it was ready; stderr tail:\n{child.stderr_tail()}")
            proc.ready = ready
            proc.address = _decode_address(ready["address"], family)
            yield proc
        except BaseException:
            # the block's own error wins; a failed stop is only recorded
            try:
                # a child that never became ready is not listening to stdin: kill it now
                _stop(proc, stop_budget if proc.ready else 0.0)
            except Exception as exc:
                proc.teardown["stop_error"] = repr(exc)
            if server_class.startswith("Forking"):  # coll-server: what its parent was seen to do
                prerequisites.note_forked_finding(server_class)
            raise
        if server_class.startswith("Forking"):
            prerequisites.note_forked_finding(server_class)
        _stop(proc, stop_budget)
        if check_leaks:
            _check_leaks(proc)


def _raise_child_error(message: Dict[str, Any], tail: str, server_class: str, impl_spec: str):
    from harness.core.addresses import UnsupportedFeature

    text = f"server process {server_class} ({impl_spec}): {message.get('exc_type')}: {message.get('error')}"
    if message.get("exc_type") == "UnsupportedFeature":
        raise UnsupportedFeature(text, message.get("capability"))
    if message.get("precondition"):
        behaviour, detail, timed_out = message["precondition"]
        raise PreconditionFailed(behaviour, detail, timed_out=timed_out)
    if message.get("exc_type") == "ImplementationError":
        from harness.implementations import ImplementationError

        raise ImplementationError(text)
    raise ServerProcessError(f"{text}\nstderr tail:\n{tail}")


def _check_leaks(proc: ProcessServer) -> None:
    from harness.serving.servers import LeakError

    record = proc.teardown
    leaks: Dict[str, List[str]] = {}
    if record.get("alive_children"):
        leaks["children"] = [str(pid) for pid in record["alive_children"]]
    if record.get("leaked_group"):
        leaks["process group"] = [f"processes of group {proc.pid} alive after the server exited"]
    if record.get("threads_alive"):
        leaks["threads"] = list(record["threads_alive"])
    if leaks:
        lines = [f"{kind}: {', '.join(items)}" for kind, items in leaks.items()]
        raise LeakError(f"server process {proc.pid} leaked: " + "; ".join(lines), leaks)


def _stop(proc: ProcessServer, stop_budget: Optional[float] = None) -> None:
    """Stop the child through the supervisor (ask with ``stop_budget``, default: the
    child's own teardown budgets -- shutdown + join (short each) and server_close
    (medium) -- plus ``short()``; then interrupt, kill the group, reap) and keep its
    ``teardown`` line in ``proc.teardown``."""
    from harness.core import timeouts

    child = proc.child
    if stop_budget is None:
        stop_budget = 2 * timeouts.short() + timeouts.medium() + timeouts.short()
    budget = stop_budget
    # no interrupt step: a SIGINT would land in the middle of the child's own teardown
    stopped = child.stop(ask_budget=budget, interrupt=False)
    record: Dict[str, Any] = {"killed": stopped["killed"], "leaked_group": stopped["leaked_group"],
                              "returncode": stopped["returncode"]}
    proc.teardown = record
    # the teardown line, if the child said it, is queued before the end of its stdout
    goodbye = child.await_message(("teardown",), timeouts.short(), f"server process {proc.pid}'s teardown line")
    if goodbye is not None:
        record.update(goodbye.get("teardown") or {})
        record["error"] = goodbye.get("error")
        record["reason"] = goodbye.get("reason")
    record.update(killed=stopped["killed"], leaked_group=stopped["leaked_group"], returncode=stopped["returncode"])
    hung = stopped["killed"] is not None and not stopped["leaked_group"]
    if not stopped["reaped"]:
        raise HarnessTimeout(f"server process {proc.pid} to be reaped after {record['killed']}",
                              timeouts.short())
    if hung:
        raise HarnessTimeout(
            f"server process {proc.pid} to stop (killed with {record['killed']}); "
            f"stderr tail:\n{proc.stderr_tail()}", budget)
    if record.get("precondition"):
        behaviour, detail = record["precondition"]
        failed = PreconditionFailed(behaviour, detail, timed_out=True)
        from harness.core.prerequisites import GUARD

        GUARD.fired = GUARD.fired or failed  # the check's grading (a failed body) sees it too
        raise failed
    if record.get("hung") and not record.get("stopped_by"):  # stopped_by: the loop was stopped anyway
        raise HarnessTimeout(
            f"server teardown in process {proc.pid}: {'; '.join(record['hung'])} did not finish",
            record.get("hung_budget") or budget)
    if record.get("error"):
        raise ServerProcessError(f"server process {proc.pid}: {record['error']}\n"
                                 f"stderr tail:\n{proc.stderr_tail()}")


if __name__ == "__main__":
    main()
