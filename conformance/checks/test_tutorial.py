"""TUTORIAL-*: the five servers and the client of the seed tutorial, replayed.

The seed tutorial (a Chinese-language tutorial this project started from;
its code and what it printed are quoted in the checks) teaches
``socketserver`` through five small servers around one handler body and
drives them with one interactive client::

    socketserver1  handle(): data = recv(1024).strip(); send(data.upper())    (one exchange)
    socketserver2  the same in ``while True``, ``break`` on empty data        (many exchanges)
    socketserver3  socketserver2 + ``except ConnectionResetError: break``     (Windows-proof)
    socketserver4  socketserver3 on ``ThreadingTCPServer``
    socketserver5  socketserver3 on ``ForkingTCPServer``
    socketclient   loop: send(input()), print(recv(1024))

and shows what its author saw on Windows and Linux.  Each check replays
one scene, turning what the tutorial *printed* into observations and what
it *taught* into assertions:

1. socketserver1 answers one exchange and closes; the client's next
   ``recv`` sees the end of the connection (Windows printed
   ``ConnectionAbortedError: [WinError 10053]``).
2. socketserver2 loops until ``recv`` returns ``b''``: a client that closes
   normally ends the handler cleanly.
3. A client process that is killed: Linux's handler reads ``b''``, the
   tutorial's Windows run got ``ConnectionResetError [WinError 10054]``;
   socketserver3 catches it and the server serves the next client.
4. ``ThreadingTCPServer`` serves three clients at once; a plain
   ``TCPServer`` does not serve the second while the first stays
   connected ("if the previous handle has not finished, no other request
   is accepted").
5. ``ForkingTCPServer`` exists only where ``os.fork`` does (Windows:
   ``AttributeError``) and serves three clients at once where it exists.

The handlers are the tutorial's ``MyTCPHandler`` bodies, written once as
the behaviours ``socketserver1..3`` of the subject agent
(:mod:`harness.subject.agent`) on the implementation's own
``BaseRequestHandler``: its code unchanged but for the bounds (every
``recv`` has a timeout, ``while True`` a count) and ``print`` becoming events
in the server's event log (``wrote``, ``disconnected``, ``caught``; the
``handle`` phase edges say how each handler ended).  The servers are
declarative specs served by :func:`conformance.tools.serving.serve_kind`,
with ``handle_error`` and ``shutdown_request`` recorded as hooks, so the
same check body runs in this process (``--impl``) and with the
implementation in another interpreter (``--subject-python``, down to 2.7
and the tutorial's 3.6).  ``ForkingTCPServer`` runs in a server process or
the agent, never beside its clients.  The killed client is the tutorial's
client as a process of its own that dies without closing its socket
(:mod:`conformance.children.tutorial_client`).

Waits are event-driven (the server's event log, the client process's
lines); the only idle wait is one ``timeouts.absence()`` window proving
that the plain server does not answer the second client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional

from conformance.api import PLATFORM, REQUIRED, check, require_attr, verify, verify_equal
from conformance.tools.event_log import intervals_of, timeline, wait_handle_edges
from conformance.tools.forking_overlap import require_overlap
from conformance.tools.serving import serve_kind
from harness.clients import bounded as clients
from harness.core import observations, timeouts
from harness.serving import instrument
from harness.subject.session import where_it_runs

THREE = (b"from client1", b"from client2", b"from client3")


@dataclasses.dataclass
class _Scene:
    """One tutorial server being served: where, its event log, and (once the
    block ended) the events and the handle_error calls, a died ``serve_forever`` included."""

    served: Any
    events: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    errors: List[Dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def address(self) -> Any:
        return self.served.address

    def reached(self, predicate: Callable[[List[Dict[str, Any]]], Any], budget: float) -> bool:
        """Whether the handlers' events satisfy ``predicate`` within ``budget`` (no raise)."""
        try:
            self.served.log.wait_for(predicate, budget, "the tutorial handler's events")
        except timeouts.HarnessTimeout:
            return False
        return True


@contextlib.contextmanager
def _tutorial_server(impl: Any, ss: Any, class_name: str, variant: str) -> Iterator[_Scene]:
    """``class_name`` serving the tutorial's ``variant`` handler (the agent's behaviour of that
    name, on the implementation's ``BaseRequestHandler``), in this process or in the subject
    agent, with ``handle_error`` and ``shutdown_request`` recorded; yields the :class:`_Scene`."""
    require_attr(ss, class_name)
    died: Dict[str, Any] = {}
    with serve_kind(impl, class_name, variant, handler_base="BaseRequestHandler", died=died,
                    hooks={"handle_error": "record", "shutdown_request": "record"}) as served:
        scene = _Scene(served)
        try:
            yield scene
        finally:
            scene.events = served.log.read()
            scene.errors = [e.get("handled") for e in instrument.select(scene.events, kind="hook",
                                                                        hook="handle_error")]
    if died:  # judged with the handle_error calls: the checks expect neither
        scene.errors.append(died)


def _closed(events: List[Dict[str, Any]]) -> bool:
    """The server's shutdown_request() returned (the request's socket is closed)."""
    return bool(instrument.select(events, kind="hook_return", hook="shutdown_request"))


def _ends(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """How each handler's handle() ended, in order: returned, or raised (and what)."""
    return [{"how": "returned" if e.get("exc_type") is None else "raised",
             "exc": None if e.get("exc_type") is None else _exception(e)}
            for e in instrument.select(events, kind="phase", phase="handle", edge="end")]


def _exception(event: Dict[str, Any]) -> Dict[str, Any]:
    """An event's exception fields as :func:`harness.core.observations.describe_exception` names them."""
    return {"type": event.get("exc_type"), "errno": event.get("errno"), "errno_name": event.get("errno_name"),
            "winerror": event.get("winerror"), "message": event.get("exc")}


def _wrote(events: List[Dict[str, Any]]) -> List[bytes]:
    """What the handlers' ``recv(1024).strip()`` returned (the tutorial printed it)."""
    return [e["data"].encode("latin-1") for e in instrument.select(events, kind="wrote")]


def _exchange(sock: socket.socket, message: bytes, budget: Optional[float] = None) -> Any:
    """The tutorial client's step: send(msg); recv(1024) (None when nothing came within budget)."""
    sock.send(message)
    try:
        return clients.recv_some(sock, budget, 1024)
    except timeouts.HarnessTimeout:
        return None


def _outcome(fn) -> Any:
    """``fn()``, or the connection error or client timeout it raised (an
    observation the check judges, not a harness failure)."""
    try:
        return fn()
    except (OSError, EOFError, timeouts.HarnessTimeout) as exc:
        return exc


# --------------------------------------------------------------------------- 1. socketserver1


@check("TUTORIAL-001", PLATFORM, topic="server_closed",
       clause="socketserver1: a handler without a loop answers one message; the server then "
              "closes the connection, so the client's next recv ends (tutorial: "
              "ConnectionAbortedError [WinError 10053] on Windows) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L326, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L520, "
              "docs/platform-knowledge.md#server_closed]")
def test_single_shot_handler_closes(impl, ss, observe):
    """socketserver1 answers b'AA' once, then the client's next recv sees the connection end."""
    with _tutorial_server(impl, ss, "TCPServer", "socketserver1") as scene:
        sock = clients.connect(scene.address)
        with sock:
            first = _exchange(sock, b"aa")
            closed = scene.reached(_closed, timeouts.short())
            send_bb = _outcome(lambda: sock.send(b"bb"))
            after = _outcome(lambda: clients.recv_some(sock, timeouts.short(), 1024))
        again = _outcome(lambda: clients.roundtrip(scene.address, payload=b"cc"))
    errors = scene.errors
    observe("first_reply", first)
    observe("server_ended_request", closed)
    observe("send_after_close", send_bb)
    observe("recv_after_close", after)
    observe("next_connection_reply", again)
    observe("handler_wrote", _wrote(scene.events))
    observe.summary("no end of stream" if isinstance(after, timeouts.HarnessTimeout) else observations.summary(after))
    verify_equal("the reply to 'aa'", b"AA", first)
    ended = after == b"" or isinstance(after, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError))
    verify(ended, "the client's recv after the handler returned", "b'' or a connection error (closed)", after)
    verify_equal("the reply on a new connection (the server still serves)", b"CC", again)
    verify(not errors, "handle_error calls", "none", errors)


# --------------------------------------------------------------------------- 2. socketserver2


@check("TUTORIAL-002", REQUIRED,
       clause="socketserver2: a handler that loops until recv returns b'' ends cleanly when the "
              "client closes normally; no handle_error [docs/platform-knowledge.md#fin]")
def test_loop_handler_ends_cleanly(impl, ss, observe):
    """A client that closes normally ends socketserver2's loop without an error."""
    with _tutorial_server(impl, ss, "TCPServer", "socketserver2") as scene:
        sock = clients.connect(scene.address)
        with sock:
            replies = [_exchange(sock, b"aa"), _exchange(sock, b"bb")]
        ended = scene.reached(_closed, timeouts.short())
        again = _outcome(lambda: clients.roundtrip(scene.address, payload=b"from the next client"))
    ends = _ends(scene.events)
    errors = scene.errors
    observe("replies", replies)
    observe("handler_ends", ends)
    observe("handle_error_calls", errors)
    observe("next_client_reply", again)
    verify_equal("replies to 'aa' and 'bb'", [b"AA", b"BB"], replies)
    verify(ended and ends and ends[0]["how"] == "returned", "how the first handler ended",
           "returned after reading b''", ends[:1])
    verify(not errors, "handle_error calls", "none", errors)
    verify_equal("the next client's reply", b"FROM THE NEXT CLIENT", again)


# --------------------------------------------------------------------------- 3. killed client


@contextlib.contextmanager
def _client_process(address: Any, messages: List[str]) -> Iterator[Any]:
    """The tutorial's client in a process of its own (through the supervisor, which stops
    and reaps it); yields ``(child, replies)`` once it is ready."""
    from harness.processes import supervisor

    spec = {"address": list(address), "messages": messages, "lifetime": timeouts.long()}
    child = supervisor.start([sys.executable, "-m", "conformance.children.tutorial_client", json.dumps(spec)],
                             what="the tutorial client process", protocol=True, stdin=True)
    try:
        deadline = timeouts.Deadline(timeouts.medium(), "the tutorial client process to be ready")
        replies: List[str] = []
        for _ in range(len(messages) + 2):
            message = child.next_message(deadline)
            if message is None:
                raise timeouts.HarnessTimeout(deadline.what, deadline.budget)
            if message["event"] == "eof":
                raise RuntimeError("the tutorial client process exited before it was ready")
            if message["event"] == "recv":
                replies.append(message["data"])
            elif message["event"] == "ready":
                break
            elif message.get("exc_type") == "TimeoutError":
                # the client waited in vain for the server: the implementation hung
                raise timeouts.HarnessTimeout(f"the tutorial client's exchange ({message})", timeouts.short())
            else:
                raise RuntimeError(f"the tutorial client process failed: {message}")
        yield child, replies
    finally:
        child.stop(ask=False, interrupt=False)


def _kill(child: Any) -> str:
    how = child.kill()
    child.wait(timeouts.short())
    return how


@check("TUTORIAL-003", PLATFORM, topic="killed",
       clause="socketserver2/3: when the client process dies, Linux's handler reads b'' (FIN) "
              "while the tutorial's Windows run got ConnectionResetError [WinError 10054]; "
              "socketserver3 catches it and the server serves the next client "
              "[docs/platform-knowledge.md#killed]")
def test_killed_client_then_next_client(impl, ss, observe):
    """After the client process is killed, the server serves the next client."""
    with _tutorial_server(impl, ss, "TCPServer", "socketserver3") as scene:
        with _client_process(scene.address, ["aa", "bb"]) as (child, replies):
            how = _kill(child)
        scene.reached(lambda events: _ends(events), timeouts.short())
        again = _outcome(lambda: clients.roundtrip(scene.address, payload=b"from client2"))
    wrote = _wrote(scene.events)
    caught = instrument.select(scene.events, kind="caught")
    ends = _ends(scene.events)
    errors = scene.errors
    if caught:
        saw = observations.summary(_exception(caught[0]))
    elif ends and ends[0].get("exc"):
        saw = observations.summary(ends[0]["exc"])
    elif b"" in wrote:
        saw = "b''"
    else:
        saw = "nothing observed"
    observe("client_replies", replies)
    observe("killed_with", how)
    observe("handler_received", wrote)
    observe("handler_ends", ends)
    observe("handle_error_calls", errors)
    observe("next_client_reply", again)
    observe.summary(saw)
    verify_equal("the killed client's replies before it died", ["AA", "BB"], replies)
    verify(ends and ends[0]["how"] == "returned", "how socketserver3's handler ended", "returned",
           [e["how"] for e in ends])
    verify_equal("the next client's reply", b"FROM CLIENT2", again)


# --------------------------------------------------------------------------- 4. threading vs plain


@check("TUTORIAL-004", REQUIRED,
       clause="socketserver4: ThreadingTCPServer handles each client in a new thread, so three "
              "clients are served while all three stay connected (docs: ThreadingMixIn) "
              "[https://docs.python.org/3/library/socketserver.html#socketserver.ThreadingMixIn]")
def test_threading_serves_three_at_once(impl, ss, observe):
    """ThreadingTCPServer answers three clients that are all connected at once."""
    with _tutorial_server(impl, ss, "ThreadingTCPServer", "socketserver3") as scene:
        with contextlib.ExitStack() as stack:
            socks = [stack.enter_context(clients.connect(scene.address)) for _ in THREE]
            replies = [_exchange(sock, message) for sock, message in zip(socks, THREE)]
        wait_handle_edges(scene.served.log, "end", len(THREE))
    rows = instrument.intervals(scene.events, "handle")
    overlap = instrument.max_overlap(rows)
    errors = scene.errors
    observe("replies", replies)
    observe("max_overlap", overlap)
    observe.timeline(timeline(rows))
    verify_equal("replies while all three clients stay connected", [m.upper() for m in THREE], replies)
    verify_equal("handlers running at once", len(THREE), overlap)
    verify(not errors, "handle_error calls", "none", errors)


@check("TUTORIAL-005", REQUIRED,
       clause="TCPServer handles one request at a time: while the first client's handler has not "
              "finished, the second client is not served (tutorial: summary; docs: synchronous "
              "servers) [https://docs.python.org/3/library/socketserver.html#module-socketserver]")
def test_plain_server_serves_one_at_a_time(impl, ss, observe):
    """TCPServer does not answer a second client until the first disconnects."""
    with _tutorial_server(impl, ss, "TCPServer", "socketserver3") as scene:
        first = clients.connect(scene.address)
        second = clients.connect(scene.address)
        with first, second:
            reply1 = _exchange(first, THREE[0], timeouts.short())
            early = _exchange(second, THREE[1], timeouts.absence())  # the single absence window
            first.close()
            reply2 = early if early is not None else _outcome(lambda: clients.recv_some(second, None, 1024))
        wait_handle_edges(scene.served.log, "end", 2)
    rows = instrument.intervals(scene.events, "handle")
    errors = scene.errors
    observe("reply_to_first", reply1)
    observe("reply_to_second_while_first_connected", early)
    observe("reply_to_second_after_first_closed", reply2)
    observe.timeline(timeline(rows))
    verify_equal("the first client's reply", b"FROM CLIENT1", reply1)
    verify(early is None, "a reply to the second client while the first stayed connected", "none", early)
    verify_equal("the second client's reply once the first closed", b"FROM CLIENT2", reply2)
    verify(not errors, "handle_error calls", "none", errors)


# --------------------------------------------------------------------------- 5. forking


@check("TUTORIAL-006", PLATFORM, topic="fork_availability",
       clause="socketserver5: ForkingTCPServer exists only where os.fork exists; the tutorial's "
              "Windows run got AttributeError: module 'socketserver' has no attribute "
              "'ForkingTCPServer' "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L551, "
              "docs/platform-knowledge.md#fork_availability]")
def test_forking_server_follows_os_fork(ss, impl, observe):
    """socketserver.ForkingTCPServer exists exactly when os.fork does."""
    has_fork = where_it_runs(impl, "fork", hasattr(os, "fork"))
    try:
        cls = ss.ForkingTCPServer
        error = None
    except AttributeError as exc:
        cls, error = None, exc
    observe("os_fork", has_fork)
    observe("ForkingTCPServer", None if cls is None else cls.__name__)
    observe("error", None if error is None else str(error))
    observe.summary("Forking* present" if cls is not None else "Forking* absent")
    verify_equal(f"ForkingTCPServer present given os.fork={has_fork}", has_fork, cls is not None)


@check("TUTORIAL-007", REQUIRED, requires=("fork",),
       clause="socketserver5: ForkingTCPServer handles each client in a new process, so three "
              "clients are served while all three stay connected (docs: ForkingMixIn) "
              "[https://docs.python.org/3/library/socketserver.html#socketserver.ForkingMixIn]")
def test_forking_serves_three_at_once(impl, ss, observe):
    """ForkingTCPServer answers three clients that are all connected at once."""
    require_attr(ss, "ForkingTCPServer")
    require_overlap(impl)  # fork-probe: three clients at once need handlers that overlap (FORKING-001's)
    with serve_kind(impl, "ForkingTCPServer", "upper", handler_base="BaseRequestHandler") as served:
        with contextlib.ExitStack() as stack:
            socks = [stack.enter_context(clients.connect(served.address)) for _ in THREE]
            # one budget for the three replies (slow-hang: three clients of a server that serves one
            # at a time waited out short() each for the same defect)
            deadline = timeouts.Deadline(timeouts.short(), "the three replies")
            replies = [_exchange(sock, message, max(deadline.remaining(), timeouts.poll()))
                       for sock, message in zip(socks, THREE)]
        wait_handle_edges(served.log, "end", len(THREE))
        proof = intervals_of(served.log)
    overlap = instrument.max_overlap(proof, "handle")
    pids = sorted({iv.pid for iv in proof})
    observe("replies", replies)
    observe("max_overlap", overlap)
    observe("server_pid", served.server_pid)
    observe("handler_pids", pids)
    observe.timeline(timeline(proof))
    verify_equal("replies while all three clients stay connected", [m.upper() for m in THREE], replies)
    verify_equal("handlers running at once", len(THREE), overlap)
    verify(served.server_pid not in pids and len(pids) == len(THREE), "processes that ran the handlers",
           f"{len(THREE)} children of the server", pids)
