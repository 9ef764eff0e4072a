"""Whether a datagram server's shared socket was found connected to one client.

Theory of operation
-------------------
A datagram server answers every client through one socket.  Once that socket
is ``connect()``-ed, the kernel delivers to it only the datagrams of that
peer ("the only address from which datagrams are received", connect(2):
https://man7.org/linux/man-pages/man2/connect.2.html), so every other
client's datagrams are discarded before the server could read them
(``udp_connects_to_client``: ``DatagramRequestHandler.finish()`` connected it
to the client it replied to).  A check that then waits for those clients'
replies can only wait out its budget, one after the other.

The instrumented handlers (:func:`harness.subject.agent.note_shared_socket`)
look at the request's socket before each request's ``setup()`` and after its
``finish()`` (inside the ``finish`` phase, so its end edge implies the look)
and log :data:`~harness.subject.agent.SHARED_SOCKET_CONNECTED` when
``getpeername()`` succeeds.  That is certain at once: a check that needs
several clients answered decides from it before it sends the next clients'
datagrams, instead of waiting for replies that cannot come.  A check whose own
clause is that every client is answered FAILs with what was seen
(:func:`verify_unconnected`); one whose clause is about something else ends
PRECONDITION_FAILED naming UDP-009 (:func:`premise_unconnected`).  A healthy
server's socket has no peer, so nothing is logged and the checks go on as
before.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from conformance.api import verify
from harness.core import prerequisites
from harness.serving.instrument import EventLog
from harness.subject.agent import SHARED_SOCKET_CONNECTED

#: what a connected shared socket means for the other clients (the checks' expected value)
UNCONNECTED = "unconnected: a connected datagram socket receives only its peer's datagrams (connect(2))"


def connected(log: EventLog) -> Optional[Dict[str, Any]]:
    """The first :data:`SHARED_SOCKET_CONNECTED` event in ``log``, else None."""
    for event in log.read():
        if event.get("kind") == SHARED_SOCKET_CONNECTED:
            return event
    return None


def describe(event: Dict[str, Any]) -> str:
    return (f"getpeername() of the server's socket gave {event.get('peer')} at the {event.get('where')} "
            f"of the request from {event.get('client')}; every other client's datagrams are discarded")


def verify_unconnected(log: EventLog, when: str) -> None:
    """FAIL (the check's own clause: every client is answered) if ``log`` holds a note that the
    shared socket was connected; ``when``: at which point of the check it was looked at."""
    event = connected(log)
    if event is not None:
        verify(False, f"the shared server socket {when}", UNCONNECTED, describe(event))


def premise_unconnected(log: EventLog, server: str) -> None:
    """PRECONDITION_FAILED naming UDP-009 (every client is answered) if ``log`` holds a note that the
    shared socket of ``server`` was connected: the check's own clause cannot be judged without it."""
    event = connected(log)
    prerequisites.premise("datagrams_answered", event is None,
                          f"{server}: {describe(event)}" if event is not None else "")


__all__ = ("UNCONNECTED", "connected", "describe", "premise_unconnected", "verify_unconnected")
