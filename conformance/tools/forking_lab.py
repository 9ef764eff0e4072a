"""The forking lab, parent side: a forking server in a single-threaded process of its own.

Theory of operation
-------------------
The server runs in :mod:`conformance.children.forking_lab` (its docstring
says what the lab logs and how it stops).  :func:`forking_lab` starts it
through :mod:`harness.processes.supervisor` (its own session), waits
(bounded) for its ``ready`` line, yields a :class:`Lab`, and on exit (or
:meth:`Lab.stop`) asks it to stop, waits bounded for its exit, interrupts
it (at once for an implementation whose loop never noticed the request
before), kills the whole process group if anything is left, always reaps,
and keeps the ``teardown`` line.  The queries (:func:`calls`,
:func:`reaped`, ...) read the lab's :class:`~harness.serving.instrument.EventLog`;
:func:`loop_stuck` tells from it, at once, that the lab's loop cannot serve
again before a held handler ends, so a wait for what only that loop does
stops (fork-wait).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Dict, Iterator, List, Optional

from conformance.children.forking_lab import SPEC_VERSION
from conformance.tools.lab import from_wire
from harness.core import addresses, prerequisites, timeouts
from harness.core.prerequisites import LATCH, PreconditionFailed
from harness.core.timeouts import HarnessTimeout


class LabError(RuntimeError):
    """The lab process failed to start or to report."""


#: implementation specs whose lab did not stop on stdin (its loop never ran service_actions)
_STOP_BY_SIGNAL: set = set()


class Lab:
    """A running lab process, as seen from the check."""

    def __init__(self, child: Any, log: Any, directory: str):
        self.child = child
        self.popen = child.popen
        self.impl_spec = ""
        self.log = log
        self.directory = directory
        self.ready: Dict[str, Any] = {}
        self.teardown: Optional[Dict[str, Any]] = None
        self.killed: Optional[str] = None
        self.server_class: Optional[type] = None  # slow-serve: the class, when served in this process
        self.mode = "serve_forever"

    @property
    def address(self) -> Any:
        return from_wire(self.ready.get("address"))  # coll-bind: agent.wire_address's (a bytes path too)

    @property
    def pid(self) -> int:
        return int(self.ready.get("pid") or self.child.pid)

    def events(self) -> List[Dict[str, Any]]:
        return self.log.read()

    def stderr_tail(self, limit: int = 3000) -> str:
        return self.child.stderr_tail()[-limit:]

    def wait_ready(self, budget: float) -> None:
        message = self.child.await_message(("ready", "error"), budget, "the forking lab to start")
        if message is None:
            raise HarnessTimeout(f"the forking lab to start; stderr: {self.stderr_tail()}", budget)
        if message.get("event") == "error":
            if message.get("exc_type") == "UnsupportedFeature":
                raise addresses.UnsupportedFeature(message.get("error", ""), message.get("capability"))
            if message.get("precondition"):
                raise PreconditionFailed(*message["precondition"])
            raise LabError(f"forking lab: {message.get('exc_type')}: {message.get('error')}\n"
                           f"stderr: {self.stderr_tail()}")
        self.ready = message

    def request_stop(self) -> None:
        """Tell the lab to stop serving (it notices on its next loop; a loop known not to run
        service_actions() is interrupted instead)."""
        if self.by_signal():
            self.child.interrupt()
        else:
            self.child.ask()

    def by_signal(self) -> bool:
        """slow-serve: whether the lab is stopped by its signal at once: a stop on stdin was not
        noticed before (for this implementation), or the probes found its idle serve_forever()
        not to call service_actions(), which notices stdin (the first lab of a run waited
        ``short()`` for it before)."""
        key = prerequisites.function_key(self.server_class, "serve_forever") if self.server_class else None
        # slow-teardown: or found to sleep past its poll_interval (SERVE-008's "poll_interval_kept"),
        # so it notices stdin a whole oversized timeout late (serve_poll_interval_ignored: ~1 s per lab)
        return self.impl_spec in _STOP_BY_SIGNAL or (
            key is not None and self.mode == "serve_forever"
            and any(LATCH.get(found, key) is not None for found in ("service_actions_idle", "poll_interval_kept")))

    def stop(self, budget: Optional[float] = None) -> Dict[str, Any]:
        """Stop the lab (the supervisor: ask, wait ``budget``, kill the group, reap); its
        teardown report."""
        if self.teardown is not None:
            return self.teardown
        budget = timeouts.medium() if budget is None else budget
        # the lab stops on stdin from service_actions(); a loop that never runs it is
        # interrupted (SIGINT raises _Stop in serve_forever), at once once seen for this
        # implementation: either way the lab's own teardown runs and logs
        by_signal = self.by_signal()
        stopped = self.child.stop(ask_budget=0 if by_signal else min(timeouts.short(), budget),
                                  interrupt=True, interrupt_budget=budget)
        if stopped.get("interrupted"):
            _STOP_BY_SIGNAL.add(self.impl_spec)
        self.killed = stopped["killed"]
        self.teardown = self.child.await_message(("teardown",), timeouts.short(), "the lab's teardown line") or {}
        if self.teardown.get("precondition") and prerequisites.GUARD.fired is None:
            # the lab called a function known not to return: the check's failure is that
            prerequisites.GUARD.fired = PreconditionFailed(*self.teardown["precondition"], timed_out=True)
        if not stopped["reaped"]:
            raise HarnessTimeout(f"forking lab {self.child.pid} to be reaped", timeouts.short())
        return self.teardown


@contextlib.contextmanager
def forking_lab(impl: Any, server_class: str, behaviour: str = "echo", *,
                attrs: Optional[Dict[str, Any]] = None, options: Optional[Dict[str, Any]] = None,
                handler_base: Optional[str] = None, mode: str = "serve_forever", requests: int = 1,
                foreign_child: bool = False, final_timeout: Optional[float] = None,
                steal_first_child: bool = False) -> Iterator[Lab]:
    """Serve ``server_class`` of ``impl`` (a LoadedImplementation) in a lab process.

    ``mode="handle_request"`` calls ``handle_request()`` ``requests`` times;
    with ``final_timeout`` it then sets ``server.timeout`` to it and calls
    ``handle_request()`` once more (no client: it times out).
    ``steal_first_child`` makes the lab reap the first child it sees in
    ``active_children`` itself (``waitpid(pid, 0)``, logged as ``stolen``)
    before the server's ``service_actions`` runs.
    """
    from harness.processes import supervisor
    from harness.serving import instrument, servers

    cls = servers.server_class(impl.module, server_class)  # refuses Forking*/Unix* where absent
    if getattr(impl, "subject", None) is None:
        # a loop the probes found to return after one request (SERVE-007), a family or a
        # request path found broken: the lab's loop is the same one, refused here at once;
        # so is a handler found not to return (its forked children cannot tell the check)
        broken = (servers.loop_known_broken(cls) if mode == "serve_forever" else None) \
            or prerequisites.forked_handler_needs(server_class)
        if broken is not None:
            raise broken
    with addresses.private_dir() as directory:
        log = instrument.EventLog.create(directory)
        spec = {
            "version": SPEC_VERSION,
            "impl": None,  # set below: the host's spec, or what the subject's agent loads
            "server_class": server_class,
            "behaviour": behaviour,
            "handler_base": handler_base,
            "options": dict(options or {}),
            "attrs": dict(attrs or {}),
            "mode": mode,
            "requests": requests,
            "foreign_child": foreign_child,
            "final_timeout": final_timeout,
            "steal_first_child": steal_first_child,
            "log": log.path,
            "directory": directory,
            "lifetime": timeouts.long(),
        }
        subject = getattr(impl, "subject", None)
        if subject is not None:  # the subject's interpreter runs the lab: the agent's copy of it
            command = subject.lab_command(spec)
            impl_spec = subject.requested
        else:
            spec["impl"] = impl.spec
            command = [sys.executable, "-m", "conformance.children.forking_lab", json.dumps(spec)]
            impl_spec = impl.spec
        child = supervisor.start(command, what="the forking lab", cwd=directory, protocol=True, stdin=True)
        lab = Lab(child, log, directory)
        lab.impl_spec = impl_spec
        lab.server_class, lab.mode = (cls if subject is None else None), mode
        try:
            lab.wait_ready(timeouts.long())
            yield lab
        finally:
            try:
                lab.stop()
            finally:
                if subject is None:  # coll-server: what the lab's parent was seen to do
                    prerequisites.note_forked_finding(server_class)


def handle_starts(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [e for e in events if e.get("kind") == "phase" and e.get("phase") == "handle"
            and e.get("edge") == "start"]


def calls(events: List[Dict[str, Any]], method: str, pid: Optional[int] = None) -> List[Dict[str, Any]]:
    return [e for e in events if e.get("kind") == "call" and e.get("method") == method
            and (pid is None or e.get("pid") == pid)]


def reaped(events: List[Dict[str, Any]], child: int) -> List[Dict[str, Any]]:
    return [e for e in events if e.get("kind") == "reaped" and e.get("child") == child]


def children_states(events: List[Dict[str, Any]]) -> List[Optional[List[int]]]:
    return [e.get("active") for e in events if e.get("kind") == "children"]


def loop_stuck(events: List[Dict[str, Any]]) -> Optional[str]:
    """fork-wait: why the lab's serving thread cannot serve again before a held handler ends, else
    None.  Decisive, so a wait for something only that thread does (accept another client, fork,
    log ``active_children``, begin ``server_close()``) can stop at once instead of running out
    its budget: a ``hold`` handler (which ends only when its client releases or closes it, or
    after its own ``medium()`` timeout) that runs in the thread that serves (it handles the
    request inline), or a blocking ``waitpid()`` of that thread (the lab logs each, with its
    end) on a child whose handler holds.  A wait for any child (``-1``, ``0``: ``max_children``
    reached) is no such finding.  Valid only while no held client of the check was released;
    canonical (no pids): the text is an observation."""
    serving = [e for e in events if e.get("kind") == "serving"]
    if not serving:
        return None
    loop = (serving[0].get("pid"), serving[0].get("tid"))
    ended = {e.get("request") for e in events
             if e.get("kind") == "hold_timeout" or (e.get("kind") == "phase" and e.get("phase") == "handle"
                                                    and e.get("edge") == "end")}
    holding = [e for e in events if e.get("kind") == "hold" and e.get("request") not in ended]
    if any((e.get("pid"), e.get("tid")) == loop for e in holding):
        return "a held handler runs in the server's serving thread"
    children = {e.get("pid") for e in holding} - {loop[0]}
    done = {e.get("wait") for e in events if e.get("kind") == "waited"}
    if any(e.get("kind") == "waiting" and (e.get("pid"), e.get("tid")) == loop and e.get("wait") not in done
           and e.get("requested") in children for e in events):
        return "the server's serving thread waits (waitpid) for a child whose handler holds"
    return None


def process_exists(pid: int) -> bool:
    """Whether ``pid`` still exists (a zombie counts: it was not reaped)."""
    from harness.processes.supervisor import pid_exists

    return pid_exists(pid)


def process_running(pid: int) -> bool:
    """Whether ``pid`` is still running (a zombie has exited: it does not count)."""
    from harness.processes.supervisor import process_running as running

    return running(pid)


def wait_gone(pids: List[int], budget: Optional[float] = None) -> List[int]:
    """Wait (bounded) until none of ``pids`` exists; the ones still there."""
    budget = timeouts.short() if budget is None else budget
    with contextlib.suppress(HarnessTimeout):
        timeouts.wait_until(lambda: not any(process_exists(pid) for pid in pids), budget,
                            "children to be reaped")
    return [pid for pid in pids if process_exists(pid)]


__all__ = ["Lab", "LabError", "calls", "children_states", "forking_lab", "handle_starts", "loop_stuck",
           "process_exists", "process_running", "reaped", "wait_gone"]
