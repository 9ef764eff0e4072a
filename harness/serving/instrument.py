"""Handlers that record what they do, readable across threads and processes.

Theory of operation
-------------------
Claims such as "ThreadingTCPServer runs two handlers at once" or "TCPServer
serialises requests" are proved from *intervals*: each request records when
its ``setup``, ``handle`` and ``finish`` started and ended, with
:func:`harness.core.clock.now` (one high-resolution clock that reads the same in
every process on Linux, macOS and Windows, so intervals from forked children
and from the parent compare), the pid and the thread.  :func:`intervals`
pairs the edges, :func:`max_overlap` sweeps them, and :func:`serialised` says
whether no two ever overlapped.

The record is an :class:`EventLog`: JSON lines, one event per line.  Appends
from several writers are *not* made safe by ``O_APPEND``: the Windows C
runtime emulates it by seeking to the end and then writing, two steps
another writer can come between
(https://learn.microsoft.com/en-us/cpp/c-runtime-library/reference/write).
So every writing process has a file of its own (``<path>.w<pid>``), and the
threads of one process take a lock around each write; no two writers ever
share a file, on any OS.  :meth:`EventLog.read` merges the files in clock
order.  A file is opened and closed around each write, so a log never holds a
descriptor that the fd leak check of :mod:`harness.serving.servers` would count, and
a forked child needs nothing from its parent but the path (its pid names its
own file, and its lock is made afresh after the fork).

:func:`instrumented` builds, from the implementation's own handler class
(``BaseRequestHandler``, ``StreamRequestHandler`` or
``DatagramRequestHandler``), a subclass whose ``handle()`` body is a named
*behaviour* (:data:`BEHAVIOURS`), and :func:`build_server` a whole server from
a declarative spec (:func:`server_spec`: server class, attributes, behaviour,
hooks).  Both are the subject agent's own builder
(:mod:`harness.subject.agent`, stdlib only, so the host imports it), run
with :data:`HOST`, the host's :class:`HostEnvironment` (the kit's timeouts,
exceptions and server-class resolution).  So the thread of a check, a server
process and the agent in another interpreter build the same server from the
same spec with the same code, and vocabulary added to the agent works in all
three.  Behaviours use the handler's own I/O: ``rfile``/``wfile`` when the
base class provides them, ``self.request`` otherwise, so the
implementation's file wrappers are exercised too.  Every read in a
behaviour has a timeout (``recv_timeout``, default ``medium()``), so an
instrumented handler never hangs forever even if its client does.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any, Callable, Dict, Iterable, List, Optional

from harness.core import addresses, clock, timeouts
from harness.core.observations import describe_exception
from harness.subject import agent

#: Longest string kept in one field, and the cap on one encoded line.
MAX_FIELD = agent.MAX_FIELD
MAX_LINE = agent.EventLog.max_line


class EventLog(agent.EventLog):
    """JSON-lines events from many threads and processes: one file per writing process.

    The format, the writing and the reading are the agent's
    (:class:`harness.subject.agent.EventLog`); the host stamps events with
    :func:`harness.core.clock.now` and waits with :mod:`harness.core.timeouts`.
    """

    clock = staticmethod(clock.now)

    def __repr__(self) -> str:
        return f"EventLog({self.path!r})"

    def __reduce__(self):
        return (EventLog, (self.path,))

    @classmethod
    def create(cls, directory: str, name: str = "events") -> EventLog:
        """A new, empty log with a unique name in ``directory``."""
        fd, path = tempfile.mkstemp(prefix=name + "-", suffix=".jsonl", dir=directory)
        os.close(fd)
        return cls(path)

    def wait_for(
        self,
        predicate: Callable[[List[Dict[str, Any]]], Any],
        budget: Optional[float] = None,
        what: str = "an event in the log",
    ) -> List[Dict[str, Any]]:
        """Poll the file until ``predicate(events)`` is true; returns the events."""
        budget = timeouts.short() if budget is None else budget
        found: List[List[Dict[str, Any]]] = []

        def check() -> bool:
            events = self.read()
            if predicate(events):
                found.append(events)
                return True
            return False

        timeouts.wait_until(check, budget, what)
        return found[0]

    def wait_released(self, token: Any, budget: float) -> bool:
        """Whether a ``release`` of ``token`` came within ``budget`` (what ``hold``/``hang`` wait for)."""
        try:
            self.wait_for(lambda events: agent.released_in(events, token), budget, f"release of {token!r}")
        except timeouts.HarnessTimeout:
            return False
        return True

    def count(self, **match: Any) -> int:
        return len(select(self.read(), **match))


def select(events: Iterable[Dict[str, Any]], **match: Any) -> List[Dict[str, Any]]:
    """Events whose fields equal every ``match`` item."""
    return [e for e in events if all(e.get(k) == v for k, v in match.items())]


# --------------------------------------------------------------------------- intervals


@dataclasses.dataclass(frozen=True)
class Interval:
    request: str
    phase: str
    start: float
    end: Optional[float]  # None: started, never ended (still running or hung)
    pid: int
    tid: int
    exc_type: Optional[str] = None

    @property
    def duration(self) -> Optional[float]:
        return None if self.end is None else self.end - self.start


def intervals(events: Iterable[Dict[str, Any]], phase: Optional[str] = None) -> List[Interval]:
    """Pair the ``phase`` start/end events into intervals, ordered by start."""
    starts: Dict[Any, Dict[str, Any]] = {}
    ends: Dict[Any, Dict[str, Any]] = {}
    for event in events:
        if event.get("kind") != "phase":
            continue
        if phase is not None and event.get("phase") != phase:
            continue
        key = (event["request"], event["phase"])
        if event.get("edge") == "start":
            starts.setdefault(key, event)
        elif event.get("edge") == "end":
            ends.setdefault(key, event)
    result = []
    for key, start in starts.items():
        end = ends.get(key)
        result.append(
            Interval(
                request=key[0],
                phase=key[1],
                start=start["t"],
                end=None if end is None else end["t"],
                pid=start["pid"],
                tid=start["tid"],
                exc_type=None if end is None else end.get("exc_type"),
            )
        )
    result.sort(key=lambda iv: (iv.start, iv.request))
    return result


def max_overlap(items: Iterable[Interval], phase: Optional[str] = "handle") -> int:
    """The largest number of intervals open at one instant.

    Only intervals of ``phase`` count (``None``: all given).  An interval
    that never ended is open until the end of time.  An interval ending at
    the very instant another starts does not overlap it: a claim of overlap
    needs one interval to start strictly before another ended, so equal
    stamps (a clock too coarse to tell them apart) never count as evidence of
    concurrency, and a serialising server is never accused of overlapping.
    That is only sound with a clock that resolves handler edges, which is why
    every stamp comes from :mod:`harness.core.clock`.
    """
    points = []
    for iv in items:
        if phase is not None and iv.phase != phase:
            continue
        points.append((iv.start, 1))
        if iv.end is not None:
            points.append((iv.end, -1))
    points.sort(key=lambda p: (p[0], p[1]))  # ends (-1) before starts (+1) at a tie
    current = best = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


def serialised(items: Iterable[Interval], phase: Optional[str] = "handle") -> bool:
    """True when no two ``phase`` intervals ever overlapped."""
    return max_overlap(items, phase) <= 1


# --------------------------------------------------------------------------- handler I/O


def exception_fields(exc: BaseException) -> Dict[str, Any]:
    """The fields an event carries about an exception: ``exc`` (its repr),
    ``exc_type``, ``errno``, ``errno_name`` and ``winerror``.

    They are :func:`harness.core.observations.describe_exception`, the kit's one
    description of an exception (with its one errno mapping, Winsock numbers
    to their POSIX names, so an event log written on Windows names ECONNRESET
    as a Linux one does), under the event log's field names.
    """
    described = describe_exception(exc)
    return {
        "exc": repr(exc),
        "exc_type": described["type"],
        "errno": described["errno"],
        "errno_name": described["errno_name"],
        "winerror": described["winerror"],
    }


class HostEnvironment(agent.Environment):
    """The agent's builder as the host runs it: the kit's budgets
    (:mod:`harness.core.timeouts`, with its multiplier), its exception fields,
    and :mod:`harness.serving.servers` for server classes (capabilities,
    composition, ``MissingClass``), addresses and construction (its
    prerequisite probes); a refused spec raises the kit's exceptions."""

    _BUDGETS: Dict[str, Callable[[], float]] = {
        "short": timeouts.short, "medium": timeouts.medium, "long": timeouts.long, "poll": timeouts.poll,
    }
    #: protocol error code -> the exception the host's callers expect
    _ERRORS: Dict[str, Callable[[str], BaseException]] = {
        "bad_spec": KeyError, "missing_class": AttributeError,
        "unsupported": lambda message: addresses.UnsupportedFeature(message, "af_unix"),
    }

    def budget(self, name: str) -> float:
        return self._BUDGETS[name]()

    def describe_exception(self, exc: BaseException) -> Dict[str, Any]:
        return exception_fields(exc)

    def error(self, code: str, message: str) -> BaseException:
        return self._ERRORS.get(code, ValueError)(message)

    def server_class(self, module: Any, class_name: str) -> type:
        from harness.serving import servers

        return servers.server_class(module, class_name)

    def address(self, family: str, directory: Optional[str]) -> Any:
        return addresses.server_address_for(family, directory, name="srv")

    def construct(self, module: Any, class_name: str, base: type, handler: type, address: Any,
                  namespace: Dict[str, Any], bind_and_activate: bool) -> Any:
        from harness.serving import servers

        return servers.build_server(module, class_name, handler, address,
                                    bind_and_activate=bind_and_activate, **namespace)


#: The environment every host path builds with.
HOST = HostEnvironment()

#: The handler's own I/O (the agent's class).
IO = agent.IO

#: Upper bound on loop iterations inside a behaviour (every loop is bounded).
MAX_ITERATIONS = agent.MAX_ITERATIONS

#: behaviour name -> handle() body ``f(handler, io, options)``: the agent's vocabulary.
BEHAVIOURS: Dict[str, Callable[[Any, Any, Dict[str, Any]], None]] = agent.BEHAVIOURS


def release(log: EventLog, token: Any = None) -> None:
    """Let ``hold``/``hang`` handlers waiting on ``token`` (None: all) return."""
    log.append(kind="release", token=token)


def instrumented(handler_base: type, behaviour: str, log: EventLog, **options: Any) -> type:
    """A subclass of ``handler_base`` recording its phases, with ``behaviour``
    as its ``handle()`` body (:func:`harness.subject.agent.instrumented`, with
    the host's budgets).  ``options`` are passed to the behaviour
    (``recv_timeout``, ``hold_timeout``, ``message``, ``reply`` ...) and must
    be JSON-serialisable for :mod:`harness.processes.server_process`."""
    return agent.instrumented(handler_base, behaviour, log, options, HOST)


def server_spec(class_name: str, behaviour: str, *, family: str, directory: Optional[str],
                attrs: Optional[Dict[str, Any]] = None, handler_base: Optional[str] = None,
                options: Optional[Dict[str, Any]] = None, hooks: Optional[Dict[str, str]] = None,
                **extra: Any) -> Dict[str, Any]:
    """The declarative spec of a served server (``docs/subject-protocol.md``, ``serve``),
    which :func:`build_server` builds here and the agent builds in the subject."""
    if behaviour not in BEHAVIOURS:
        raise KeyError(f"unknown behaviour {behaviour!r}; known: {', '.join(sorted(BEHAVIOURS))}")
    for hook, action in (hooks or {}).items():
        if hook not in agent.HOOKS or action not in agent.HOOK_ACTIONS:
            raise KeyError(f"hook {hook!r}/{action!r} is not in the vocabulary ({', '.join(agent.HOOKS)}; "
                           f"{', '.join(sorted(agent.HOOK_ACTIONS))})")
    spec = {"server_class": class_name, "behaviour": behaviour, "family": family, "directory": directory,
            "attrs": dict(attrs or {}), "handler_base": handler_base, "options": dict(options or {}),
            "hooks": dict(hooks or {})}
    spec.update(extra)
    return spec


def build_server(module: Any, spec: Dict[str, Any], log: EventLog) -> Any:
    """The server ``spec`` describes, built in this process from ``module`` by the
    agent's builder (:func:`harness.subject.agent.build_server`)."""
    return agent.build_server(module, spec, log, HOST)
