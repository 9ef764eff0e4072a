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

A ``connect()`` by the server's own request path *after* the handler (in
``process_request()`` or ``shutdown_request()``) is seen by no handler of a
synchronous server's first clients; the probes serve one datagram request
through each plain datagram class and latch it by the path's functions
(:mod:`harness.serving.prerequisite_probes`), and :func:`seen` consults that
finding for the check's class too.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from conformance.api import verify
from harness.core import prerequisites
from harness.serving import servers
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


def seen(log: EventLog, impl: Any = None, class_name: str = "") -> Optional[str]:
    """What says the shared socket of the check's server is connected, else None: a note of its
    handlers in ``log``, or the probes' finding about ``class_name`` of ``impl`` (a connect() by the
    server's own request path after the handler, which no handler sees;
    :func:`harness.core.prerequisites.datagram_socket_connects`)."""
    event = connected(log)
    if event is not None:
        return describe(event)
    if impl is None:
        return None
    found = servers.class_finding(impl, class_name, prerequisites.datagram_socket_connects)
    return found.detail if found is not None else None


def verify_unconnected(log: EventLog, when: str, impl: Any = None, class_name: str = "") -> None:
    """FAIL (the check's own clause: every client is answered) if the shared socket was seen
    connected (:func:`seen`); ``when``: at which point of the check it was looked at."""
    detail = seen(log, impl, class_name)
    if detail is not None:
        verify(False, f"the shared server socket {when}", UNCONNECTED, detail)


def premise_unconnected(log: EventLog, class_name: str, impl: Any = None) -> None:
    """PRECONDITION_FAILED naming UDP-009 (every client is answered) if the shared socket of the
    check's ``class_name`` server was seen connected (:func:`seen`): the check's own clause
    cannot be judged without it."""
    detail = seen(log, impl, class_name)
    prerequisites.premise("datagram_socket_unconnected", detail is None, f"{class_name}: {detail}")


__all__ = ("UNCONNECTED", "connected", "describe", "premise_unconnected", "seen", "verify_unconnected")
