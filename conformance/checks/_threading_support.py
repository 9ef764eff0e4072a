"""Helpers the concurrency checks share: held clients, ordering, timelines.

Theory of operation
-------------------
Concurrency is proved from what handlers *record*, never from wall time.
A server whose handlers use the ``hold`` behaviour of
:mod:`harness.serving.instrument` logs a ``hold`` event when a handler starts
waiting for its client's release line; :class:`HeldClients` connects
clients, waits (bounded) until that many handlers hold at the same time,
and releases them one by one (a line out, the same line echoed back).
Because no handler can end before its client releases it, "N holds seen
before the first release" already proves N handlers ran at once; the
intervals of the event log then give ``max_overlap`` and the timeline
recorded in the run record.

A wait for holds that runs out does not raise: a serialising
implementation is an observation (``started`` < N) that the check turns
into a FAIL with a readable message, not a harness TIMEOUT.

:class:`Sequence` records named steps from several threads in one total
order, which is how "server_close returned only after the handler ended"
is proved: by the order of events, not by how long anything took.

This module is shared by the THREADING, UNIX and FORKING checks; it works
the same whether the handlers run in threads of this process or in
children of a server process, since the event log is a file.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from typing import Any, Dict, Iterator, List, Optional

from harness.clients import clients
from harness.core import timeouts
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument
from harness.serving.instrument import EventLog, Interval

#: The line a held client sends to release its handler (echoed back).
RELEASE = b"release\n"


class Sequence:
    """Named steps in the order they happened, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self.steps: List[str] = []

    def add(self, name: str) -> int:
        with self._lock:
            self.steps.append(name)
            return next(self._counter)

    def index(self, name: str) -> Optional[int]:
        with self._lock:
            return self.steps.index(name) if name in self.steps else None

    def before(self, first: str, second: str) -> bool:
        """Both happened and ``first`` came before ``second``."""
        a, b = self.index(first), self.index(second)
        return a is not None and b is not None and a < b

    def snapshot(self) -> List[str]:
        with self._lock:
            return list(self.steps)


def count_events(log: EventLog, **match: Any) -> int:
    return len(instrument.select(log.read(), **match))


def wait_count(log: EventLog, count: int, budget: Optional[float] = None, **match: Any) -> int:
    """Wait (bounded) until ``count`` events match; return how many did."""
    budget = timeouts.short() if budget is None else budget
    try:
        log.wait_for(lambda events: len(instrument.select(events, **match)) >= count, budget,
                     f"{count} events {match}")
    except HarnessTimeout:
        pass
    return count_events(log, **match)


class HeldClients:
    """Clients connected to ``hold`` handlers, released on demand."""

    def __init__(self, log: EventLog, address: Any, family: str):
        self.log = log
        self.address = address
        self.family = family
        self.sockets: List[socket.socket] = []
        self.started = 0
        self.released: List[bytes] = []

    def connect(self) -> socket.socket:
        sock = clients.connect(self.address, self.family)
        self.sockets.append(sock)
        return sock

    def wait_holds(self, count: int, budget: Optional[float] = None) -> int:
        self.started = wait_count(self.log, count, budget, kind="hold")
        return self.started

    def release(self, index: int) -> bytes:
        """Release client ``index``'s handler; returns the echoed line."""
        sock = self.sockets[index]
        deadline = timeouts.Deadline(timeouts.short(), f"the echo of held client {index}")
        clients.sendall(sock, RELEASE, deadline)
        line = clients.recv_line(sock, deadline)
        self.released.append(line)
        return line

    def release_all(self) -> List[bytes]:
        return [self.release(index) for index in range(len(self.sockets))]


@contextlib.contextmanager
def held_clients(address: Any, family: str, count: int, log: EventLog, *,
                 sequential: bool = False, budget: Optional[float] = None) -> Iterator[HeldClients]:
    """Connect ``count`` clients whose handlers hold; ``held.started`` says
    how many handlers were holding at once before any release.

    ``sequential`` connects the next client only once the previous one's
    handler holds (no listen-backlog overflow, however many clients);
    it stops connecting at the first handler that does not start.
    """
    held = HeldClients(log, address, family)
    with contextlib.ExitStack() as stack:
        for index in range(count):
            sock = held.connect()
            stack.callback(sock.close)
            if sequential and held.wait_holds(index + 1, budget) < index + 1:
                break
        if not sequential:
            held.wait_holds(count, budget)
        yield held


def handle_intervals(log: EventLog, count: int, budget: Optional[float] = None) -> List[Interval]:
    """The ``handle`` intervals once ``count`` of them ended (bounded)."""
    wait_count(log, count, budget, kind="phase", phase="handle", edge="end")
    return instrument.intervals(log.read(), "handle")


def timeline(intervals: List[Interval]) -> List[Dict[str, Any]]:
    """Rows for ``observe.timeline`` (only finished intervals)."""
    return [
        {"start": iv.start, "end": iv.end, "pid": iv.pid, "tid": iv.tid}
        for iv in intervals
        if iv.end is not None
    ]


def current_thread_facts() -> Dict[str, Any]:
    thread = threading.current_thread()
    return {"name": thread.name, "ident": thread.ident, "daemon": thread.daemon,
            "main": thread is threading.main_thread()}


__all__ = [
    "RELEASE",
    "HeldClients",
    "Sequence",
    "count_events",
    "current_thread_facts",
    "handle_intervals",
    "held_clients",
    "timeline",
    "wait_count",
]
