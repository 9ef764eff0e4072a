"""Clients that keep their handlers busy: the proof of "N handlers at once".

Theory of operation
-------------------
Concurrency is proved from what handlers do while their clients stay
connected, never from wall time.  :class:`HeldClients` is the one stream
client for it, for either of :mod:`harness.serving.instrument`'s two behaviours
that stay in ``handle()`` until their client lets them go:

* ``hold``: the handler logs a ``hold`` event to the check's
  :class:`~harness.serving.instrument.EventLog`, then waits for the release line.
  :meth:`HeldClients.wait_holds` waits (bounded) until that many handlers
  hold at once; :meth:`HeldClients.release` sends :data:`RELEASE` and reads
  it echoed back.  No handler can end before its client releases it, so
  "N holds seen before the first release" already proves N handlers ran at
  once.
* ``echo``: the handler echoes every line and ends only when its client
  closes (or after its bounded read timeout).  :meth:`HeldClients.send`
  sends the client's own line, :meth:`HeldClients.read_echo` reads its echo
  (``None`` when none came within the budget: what a serialising server
  gives while an earlier client stays connected, an observation for the
  check, not a harness timeout), :meth:`HeldClients.close` lets the handler
  go.  N echoes received before any client closes means N handlers were in
  ``handle()`` together.

A wait for holds that runs out does not raise either: a serialising
implementation is an observation (``started`` < N) that the check turns into
a FAIL.  :func:`held_clients` closes every client socket on exit.

:class:`HeldDatagrams` is the datagram counterpart with the ``hold``
behaviour: a handler logs ``hold`` with its datagram's text and answers only
after :func:`harness.serving.instrument.release` names that text;
:func:`hold_datagrams` releases every handler on exit, so teardown never
waits for one.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Dict, Iterator, List, Optional

from harness.clients import bounded as clients
from harness.core import timeouts
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument
from harness.serving.instrument import EventLog

from .event_log import wait_count
from .forking_lab import loop_stuck

#: The line a held client sends to release its ``hold`` handler (echoed back).
RELEASE = b"release\n"


class HeldClients:
    """Stream clients whose handlers stay in ``handle()`` until released or closed."""

    def __init__(self, address: Any, family: str, log: Optional[EventLog] = None):
        self.address = address
        self.family = family
        self.log = log
        self.sockets: List[socket.socket] = []
        self.started = 0
        self.released: List[bytes] = []

    def connect(self) -> socket.socket:
        sock = clients.connect(self.address, self.family)
        self.sockets.append(sock)
        return sock

    # ----------------------------------------------------------- hold handlers

    def wait_holds(self, count: int, budget: Optional[float] = None) -> int:
        """Wait (bounded, no raise) until ``count`` handlers hold; how many do.  fork-wait: a
        forking lab's loop seen unable to serve before a held handler ends (a handler holding
        in its serving thread, or that thread waiting for a held child:
        :func:`~conformance.tools.forking_lab.loop_stuck`) ends the wait at once, while none
        was released: no other handler can start (forking_serial, concurrency_forking_waits,
        api_collect_children_blocks waited out ``short()`` in FORKING-001/009 and the overlap
        probe)."""
        if self.log is None:
            raise ValueError("HeldClients.wait_holds needs the handlers' event log")
        self.started = wait_count(self.log, count, budget, until=None if self.released else loop_stuck, kind="hold")
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

    # ----------------------------------------------------------- echo handlers

    def line(self, index: int) -> bytes:
        return b"held client %d\n" % index

    def send(self, index: int) -> None:
        clients.sendall(self.sockets[index], self.line(index))

    def read_echo(self, index: int, budget: float) -> Optional[bytes]:
        """The echo of client ``index``'s line, or None if none came within ``budget``."""
        try:
            return clients.recv_line(self.sockets[index], timeouts.Deadline(budget, "an echo"))
        except HarnessTimeout:
            return None

    def close(self, index: int) -> None:
        self.sockets[index].close()


@contextlib.contextmanager
def held_clients(address: Any, family: str, count: int = 0, log: Optional[EventLog] = None, *,
                 sequential: bool = False, budget: Optional[float] = None) -> Iterator[HeldClients]:
    """:class:`HeldClients`, with ``count`` clients of ``hold`` handlers connected
    first (``held.started`` says how many handlers were holding at once before
    any release); every client is closed on exit.

    ``sequential`` connects the next client only once the previous one's
    handler holds (no listen-backlog overflow, however many clients); it
    stops connecting at the first handler that does not start.
    """
    held = HeldClients(address, family, log)
    try:
        for index in range(count):
            held.connect()
            if sequential and held.wait_holds(index + 1, budget) < index + 1:
                break
        if count and not sequential:
            held.wait_holds(count, budget)
        yield held
    finally:
        for sock in held.sockets:
            sock.close()


class HeldDatagrams:
    """Datagram clients of ``hold`` handlers: one client socket per token."""

    def __init__(self, served: Any, stack: contextlib.ExitStack):
        self.address = served.address
        self.family = served.family
        self.log: EventLog = served.log
        self.stack = stack
        self.sockets: Dict[str, socket.socket] = {}

    def send(self, token: str) -> None:
        sock = self.stack.enter_context(clients.dgram_client(self.family))
        self.sockets[token] = sock
        sock.sendto(token.encode("ascii"), self.address)

    def holds(self) -> List[str]:
        return [e.get("token") for e in self.log.read() if e.get("kind") == "hold"]

    def wait_holds(self, count: int, budget: Optional[float] = None) -> int:
        """Wait (bounded, no raise) until ``count`` handlers hold; how many do."""
        wait_count(self.log, count, budget, kind="hold")
        return len(self.holds())

    def release(self, token: str) -> bytes:
        """Release ``token``'s handler; its reply (b'' if none came)."""
        instrument.release(self.log, token)
        reply = datagram_reply(self.log, self.sockets[token], token)
        return b"" if reply is None else reply[0]


def datagram_reply(log: EventLog, sock: socket.socket, token: str) -> Optional[Any]:
    """The reply (data, sender) that ``sock`` receives from the released ``hold`` handler of
    ``token``; None if none came.

    coll-server: bounded by ``short()`` until that handler's ``finish`` phase ended (which sent
    the reply: ``DatagramRequestHandler.finish()``), then by ``absence()``: on loopback a reply
    that was sent to ``sock`` is there by then, and one the server sent to another client
    (threading_udp_last_client) no longer makes each client wait out ``short()`` in turn."""
    holds = [e for e in log.read() if e.get("kind") == "hold" and e.get("token") == token]
    budget = timeouts.short()
    if holds and holds[0].get("request") is not None:
        wait_count(log, 1, kind="phase", phase="finish", edge="end", request=holds[0]["request"])
        budget = timeouts.absence()
    try:
        return clients.recvfrom(sock, budget)
    except HarnessTimeout:
        return None


@contextlib.contextmanager
def hold_datagrams(served: Any) -> Iterator[HeldDatagrams]:
    """Datagram clients of the ``hold`` handlers of ``served`` (its ``address``,
    ``family`` and event ``log``); on exit every handler still holding (or
    holding later) is released, so teardown never waits for one."""
    with contextlib.ExitStack() as stack:
        stack.callback(instrument.release, served.log, None)
        yield HeldDatagrams(served, stack)


__all__ = ["RELEASE", "HeldClients", "HeldDatagrams", "datagram_reply", "held_clients", "hold_datagrams"]
