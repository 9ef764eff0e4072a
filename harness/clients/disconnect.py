"""Abrupt-disconnect scenarios: what the server side sees when a client vanishes.

Theory of operation
-------------------
Each scenario drives one *subject* client against a server of the
implementation under test and returns what the **server** observed, as a
JSON-able dict::

    {"scenario": "rst", "server_recv": {"result": None, "exception": "ConnectionResetError",
     "errno": 104, "errno_name": "ECONNRESET", "winerror": None},
     "server_send": {...}, "handle_error_called": True, "handle_error_exc": "ConnectionResetError",
     "next_client_served": True, "client_side": {...}, ...}

The server is described as a spec (:func:`observer_spec`) in the vocabulary
of the subject agent and served by :func:`harness.serving.spec_server.spec_server`:
in this process (the agent's builder on the implementation's module, the
kit's :func:`~harness.serving.servers.serve_in_thread`) or, for an
implementation living in another interpreter (``--subject-python``), by the
agent -- the same observer either way, written once, in
``harness/subject/agent.py`` (the ``disconnect_stream``/``disconnect_dgram``
steps of a probe handler).  Its handler is an *observer* on the
implementation's handler base (``StreamRequestHandler`` /
``BaseRequestHandler`` for datagrams).  The first
request it gets is the subject; it records each ``recv`` on the raw socket
(result or exception with errno, errno name and winerror) until EOF or an
error, then tries to reply twice (``server_send``, ``server_send_again``),
then re-raises the recv error if there was one, as a naive handler would, so
that the server's ``handle_error`` path runs.  The server class is
instrumented too: ``handle_error`` (records that it ran and with which
exception, then calls the implementation's own with its stderr captured),
``shutdown_request`` (the last step for every request: the scenario has
settled when the subject's was logged) and ``get_request`` (errors a
datagram server swallows, such as Windows' WSAECONNRESET after an ICMP
port-unreachable).  Every record goes to an
:class:`~harness.serving.instrument.EventLog`, and the driver waits on that log
with a deadline, never with a fixed sleep: macOS handles a loopback RST
asynchronously, so "the server has seen it" is an event to wait for.

After the subject, a fresh *probe* client does an echo round trip; the
observer echoes every request after the first.  ``next_client_served``
proves the server survived the disconnect.

``Forking*`` classes cannot run in the test process (their children would
inherit the client sockets); they run in :func:`harness.processes.server_process.serve_in_process`
(or, for a subject, in the agent's process) with the ``observe_recv``
behaviour of :mod:`harness.serving.instrument`, which
records the same recv observations but cannot report ``handle_error``
(``None``: not observable) and does not echo (the probe counts as served
when its request reached a handler).  ``unread_close`` needs the server to
speak first and is not available there.

The ``killed`` scenario runs its client in another process,
``python -m harness.processes.killed_client``, and kills it with ``SIGKILL`` when the
``signals`` capability exists, ``Popen.kill`` (``TerminateProcess`` on
Windows) otherwise.

Measured on Linux with the stdlib (docs/platform-knowledge.md): FIN → ``b''``;
RST → ``ConnectionResetError`` ``ECONNRESET``; closing with unread data →
RST → ``ECONNRESET``; a killed client with an empty receive buffer → FIN
(``b''``); half-close → ``b''`` and the reply still reaches the client.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from harness.clients import bounded as clients
from harness.core import addresses, prerequisites, timeouts
from harness.serving import instrument, servers
from harness.serving.instrument import EventLog, exception_fields
from harness.serving.spec_server import spec_server

#: name -> one-line description, in the order reports list them.
SCENARIOS: Dict[str, str] = {
    "fin": "graceful close: the client sends a line, then close() (FIN)",
    "half_close": "the client sends a line, shutdown(SHUT_WR), then reads the server's reply",
    "rst": "abortive close: SO_LINGER (1, 0) then close() sends RST",
    "unread_close": "the server speaks first; the client closes without reading it (RST on Linux and macOS)",
    "killed": "the client process is killed mid-conversation (SIGKILL / TerminateProcess)",
    "partial_send": "the client sends half a line and closes; the handler expects a full line",
    "udp_dead_port": "the server replies to a datagram client whose socket is closed; the next client is served",
}
DATAGRAM_SCENARIOS = ("udp_dead_port",)
STREAM_SCENARIOS = tuple(name for name in SCENARIOS if name not in DATAGRAM_SCENARIOS)
#: scenarios available for Forking* classes (server in a child process)
PROCESS_SCENARIOS = ("fin", "half_close", "rst", "killed", "partial_send")

HELLO = b"hello\n"
GREETING = b"greeting the client will never read\n"
PARTIAL = b"half-a-li"
REPLY = b"reply\n"
PROBE = b"PROBE still serving?\n"
#: bounds on the observer's loops
MAX_RECVS = 1000


class ScenarioError(RuntimeError):
    """A scenario could not be driven (the client process failed, a wait ran out...)."""


# --------------------------------------------------------------------------- server side


def observer_spec(scenario: str, dgram: bool) -> Dict[str, Any]:
    """The observing handler and hooks for ``scenario``, in the subject agent's vocabulary
    (``harness/subject/agent.py``: the steps ``disconnect_stream``/``disconnect_dgram``, the
    hook actions ``observe``/``observe_capture``), as :func:`harness.serving.spec_server.spec_server`
    takes them."""
    step = ["disconnect_dgram" if dgram else "disconnect_stream",
            {"scenario": scenario, "greeting": GREETING.decode("latin-1"), "reply": REPLY.decode("latin-1")}]
    return {"probe": {"handle": [step]}, "hooks": SERVER_HOOKS,
            "handler_base": "BaseRequestHandler" if dgram else "StreamRequestHandler"}


#: ``handle_error`` (with what the implementation's own prints to stderr), ``shutdown_request``
#: (the last step for every request: the scenario has settled when the subject's ended) and
#: ``get_request`` (errors a datagram server swallows) record their calls.
SERVER_HOOKS = {"handle_error": "observe_capture", "shutdown_request": "observe", "get_request": "observe"}


def handle_errors(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each ``handle_error`` call: the exception it was given (``exc_type``) and the first
    line it printed to stderr that is not the stdlib's frame of dashes."""
    calls = [e for e in events if e.get("kind") == "hook" and e.get("hook") == "handle_error"]
    ends = [e for e in events if e.get("kind") == "hook_end" and e.get("hook") == "handle_error"]
    found = []
    for index, call in enumerate(calls):
        end = ends[index] if index < len(ends) else {}
        lines = [line for line in end.get("stderr") or () if line.strip("- ")]
        found.append({"exc_type": (call.get("exc_info") or {}).get("type"),
                      "printed_first_line": lines[0] if lines else "", "hook_error": end.get("exc")})
    return found


def get_request_errors(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The exceptions ``get_request`` raised."""
    return [e for e in events if e.get("kind") == "hook_end" and e.get("hook") == "get_request" and e.get("exc_type")]


# --------------------------------------------------------------------------- log reading


def _subject(events: List[Dict[str, Any]]) -> Optional[str]:
    for event in events:
        if event.get("role") == "subject":
            return event.get("request")
        if event.get("kind") == "phase" and event.get("request"):  # harness.serving.instrument (child process)
            return event["request"]
    return None


def _subject_events(events: List[Dict[str, Any]], kind: str) -> List[Dict[str, Any]]:
    subject = _subject(events)
    return [e for e in events if e.get("kind") == kind and subject is not None and e.get("request") == subject]


def _subject_received(events: List[Dict[str, Any]]) -> bool:
    return any(e.get("nbytes") for e in _subject_events(events, "recv"))


def _subject_started(events: List[Dict[str, Any]]) -> bool:
    subject = _subject(events)
    return subject is not None and any(
        e.get("request") == subject
        and (e.get("kind") == "start" or (e.get("kind") == "phase" and e.get("phase") == "handle"))
        for e in events
    )


def _settled_in_thread(served) -> Callable[[List[Dict[str, Any]]], bool]:
    def settled(events: List[Dict[str, Any]]) -> bool:
        # the subject's shutdown_request ran, or the serving loop itself died
        return any(e.get("kind") == "hook_end" and e.get("hook") == "shutdown_request" for e in events) \
            or served.loop_ended()

    return settled


def _raise_if_only_shutdown_missing(events: List[Dict[str, Any]], exc: BaseException) -> None:
    """prec-bind: the wait for the subject's ``shutdown_request()`` ran out although its handler
    finished: process_request() does not end its requests, which PIPELINE-012 owns (a datagram
    request has no EOF for the probes to miss), so the scenario ends PRECONDITION_FAILED naming it;
    PIPELINE-005 when the handler raised and went to handle_error() (the error path's end)."""
    if any(e.get("kind") == "handler_end" and e.get("role") == "subject" for e in events):
        if handle_errors(events):
            # coll-server: the handler raised and went to handle_error(): that request's end is
            # the error path's, which PIPELINE-005 owns (pipeline_error_no_shutdown: a reply to a
            # vanished AF_UNIX client raises, and DISCONNECT-009 named PIPELINE-012)
            raise prerequisites.PreconditionFailed(
                "request_ends_after_error", f"the handler raised, handle_error() ran, but shutdown_request() "
                                            f"was not called ({exc})") from exc
        raise prerequisites.PreconditionFailed(
            "request_shut_down", f"the handler finished but shutdown_request() was not called ({exc})") from exc


def _loop_ends_with_request(events: List[Dict[str, Any]], served) -> bool:
    """coll-handler: the loop has ended, or a request-ending hook (``shutdown_request``) raised and
    the loop ends within ``absence()``: an exception out of it reaches serve_forever() at once."""
    if served.loop_ended():
        return True
    if not any(e.get("kind") == "hook_end" and e.get("hook") == "shutdown_request" and e.get("exc_type")
               for e in events):
        return False
    try:
        timeouts.wait_until(served.loop_ended, timeouts.absence(), "serve_forever() to end")
    except timeouts.HarnessTimeout:
        return False
    return True


def _settled_in_process(events: List[Dict[str, Any]]) -> bool:
    subject = _subject(events)
    return any(
        e.get("request") == subject and e.get("kind") == "phase" and e.get("phase") == "finish"
        and e.get("edge") == "end"
        for e in events
    )


def _observation(event: Optional[Dict[str, Any]], result_key: str = "result") -> Optional[Dict[str, Any]]:
    if event is None:
        return None
    data = {
        "result": event.get(result_key) if not event.get("exc_type") else None,
        "exception": event.get("exc_type"),
        "errno": event.get("errno"),
        "errno_name": event.get("errno_name"),
        "winerror": event.get("winerror"),
    }
    if "nbytes" in event:
        data["nbytes"] = event["nbytes"]
    if "line_complete" in event:
        data["line_complete"] = event["line_complete"]
    return data


def _wait(log: EventLog, predicate, what: str, budget: Optional[float] = None) -> List[Dict[str, Any]]:
    try:
        return log.wait_for(predicate, timeouts.short() if budget is None else budget, what)
    except timeouts.HarnessTimeout as exc:
        # Still a timeout (the implementation hung), with the events for context.
        events = [e.get("kind") for e in log.read()][-20:]
        raise timeouts.HarnessTimeout(f"{exc.what}; events so far: {events}", exc.budget) from exc


# --------------------------------------------------------------------------- client drivers


def _linger_zero() -> bytes:
    # struct linger is two ints on POSIX, two u_shorts on Winsock
    return struct.pack("HH", 1, 0) if os.name == "nt" else struct.pack("ii", 1, 0)


def _drive_fin(address, family, log, directory) -> Dict[str, Any]:
    sock = clients.connect(address, family)
    with sock:
        clients.sendall(sock, HELLO)
        _wait(log, _subject_received, "the server to receive the client's line")
    return {"sent": repr(HELLO), "closed_with": "close()"}


def _drive_half_close(address, family, log, directory) -> Dict[str, Any]:
    sock = clients.connect(address, family)
    with sock:
        clients.sendall(sock, HELLO)
        _wait(log, _subject_received, "the server to receive the client's line")
        sock.shutdown(socket.SHUT_WR)
        try:
            reply = clients.recv_until_eof(sock, timeouts.short())
            error = None
        except OSError as exc:
            reply, error = b"", exception_fields(exc)
    return {"sent": repr(HELLO), "closed_with": "shutdown(SHUT_WR)", "reply": repr(reply),
            "reply_received": reply.startswith(REPLY), "reply_error": error}


def _drive_rst(address, family, log, directory) -> Dict[str, Any]:
    sock = clients.connect(address, family)
    with sock:
        _wait(log, _subject_started, "the server's handler to start")
        linger_error = None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _linger_zero())
        except OSError as exc:
            linger_error = exception_fields(exc)
    return {"sent": "nothing", "closed_with": "SO_LINGER (1, 0) + close()", "linger_error": linger_error}


def _drive_unread_close(address, family, log, directory) -> Dict[str, Any]:
    sock = clients.connect(address, family)
    with sock:
        _wait(log, lambda events: bool(_subject_events(events, "send")), "the server to send first")
        # event-driven: the greeting is in our receive buffer once the socket is readable
        readable, _, _ = select.select([sock], [], [], timeouts.short())
    return {"sent": "nothing", "closed_with": "close() with unread data", "unread_data_waiting": bool(readable)}


def _drive_partial_send(address, family, log, directory) -> Dict[str, Any]:
    sock = clients.connect(address, family)
    with sock:
        clients.sendall(sock, PARTIAL)
        _wait(log, _subject_started, "the server's handler to start")
    return {"sent": repr(PARTIAL), "closed_with": "close() mid-line"}


def _drive_killed(address, family, log, directory) -> Dict[str, Any]:
    from harness.processes import supervisor

    spec = {"family": family, "address": list(address) if isinstance(address, tuple) else address,
            "payload": HELLO.decode("ascii"), "lifetime": timeouts.long()}
    child = supervisor.start([sys.executable, "-m", "harness.processes.killed_client", json.dumps(spec)],
                             what="the killed client process", protocol=True, stdin=True)
    try:
        message = child.await_message(("ready", "error"), timeouts.medium(), "the killed client to connect")
        if message is None:
            raise ScenarioError(f"the client process never said ready within {timeouts.medium():.1f}s "
                                f"(or exited): {child.stderr_tail()[-500:]!r}")
        if message.get("event") == "error":
            raise ScenarioError(f"the client process failed: {message}")
        _wait(log, _subject_received, "the server to receive the killed client's line")
        method = child.kill()
        returncode = child.wait(timeouts.short())
    finally:
        child.stop(ask=False, interrupt=False)
    return {"pid": message["pid"], "sent": repr(HELLO), "killed_with": method, "returncode": returncode}


def _drive_udp_dead_port(address, family, log, directory) -> Dict[str, Any]:
    with clients.dgram_client(family, directory) as sock:
        local = sock.getsockname()
        sock.sendto(b"to a port about to die\n", address)
        _wait(log, _subject_received, "the server to receive the datagram")
    # the client's socket is closed (and its AF_UNIX path removed): now the server replies
    instrument.release(log)
    return {"client_address": repr(local), "closed_before_reply": True}


DRIVERS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "fin": _drive_fin,
    "half_close": _drive_half_close,
    "rst": _drive_rst,
    "unread_close": _drive_unread_close,
    "killed": _drive_killed,
    "partial_send": _drive_partial_send,
    "udp_dead_port": _drive_udp_dead_port,
}


def _probe(address, family, dgram: bool, directory: str) -> Tuple[bool, Optional[Dict[str, Any]], Optional[str]]:
    try:
        reply = clients.roundtrip(address, family, PROBE, dgram=dgram, directory=directory)
    except (OSError, timeouts.HarnessTimeout, EOFError) as exc:
        return False, exception_fields(exc), None
    return reply == PROBE, None, repr(reply)


# --------------------------------------------------------------------------- running


def _resolve(impl: Any, impl_spec: Optional[str]) -> Tuple[Any, str]:
    """(module, spec) from an adapter/module spec string, a LoadedImplementation or a module."""
    from harness.implementations import LoadedImplementation, resolve

    if isinstance(impl, str):
        return resolve(impl).module, impl_spec or impl
    if isinstance(impl, LoadedImplementation):
        return impl.module, impl_spec or impl.spec
    name = getattr(impl, "__name__", "")
    return impl, impl_spec or ("stdlib" if name == "socketserver" else name)


def default_server_class(name: str, family: str = "inet") -> str:
    dgram = name in DATAGRAM_SCENARIOS
    if family == "unix":
        return "UnixDatagramServer" if dgram else "UnixStreamServer"
    return "UDPServer" if dgram else "TCPServer"


def run_scenario(name: str, impl: Any = "stdlib", server_class: Optional[str] = None,
                 family: Optional[str] = None, impl_spec: Optional[str] = None) -> Dict[str, Any]:
    """Run scenario ``name`` against ``server_class`` of ``impl``; what the server saw.

    ``impl`` is an implementation spec (``"stdlib"``, ``"reference"``, a dotted
    name or a path), a :class:`~harness.implementations.LoadedImplementation`
    or a module.  ``family`` defaults to what ``server_class`` implies.
    Raises ``KeyError`` for an unknown scenario, ``ValueError`` for a
    scenario that does not fit the class (a datagram scenario on a stream
    server), :class:`~harness.core.addresses.UnsupportedFeature` when the platform
    lacks the family or class, and :class:`ScenarioError` when it could not
    be driven.
    """
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    family = family or (addresses.family_for_class(server_class) if server_class else "inet")
    server_class = server_class or default_server_class(name, family)
    addresses.require(family)
    dgram = name in DATAGRAM_SCENARIOS
    if addresses.is_datagram_class(server_class) != dgram:
        kind = "a datagram" if dgram else "a stream"
        raise ValueError(f"scenario {name!r} needs {kind} server; {server_class} is not one")
    if getattr(impl, "subject", None) is not None:  # the implementation lives in a subject agent
        servers.require_for(server_class)
        target, spec, forking = impl, impl.requested, server_class.startswith("Forking")
    else:
        module, spec = _resolve(impl, impl_spec)
        cls = servers.server_class(module, server_class)
        broken = prerequisites.family_needs(cls)
        if broken is not None:
            raise broken  # e.g. a Threading* class whose mix-in runs no thread: THREADING-001 owns it
        target, forking = module, servers.is_forking(cls)
    result: Dict[str, Any] = {
        "scenario": name,
        "description": SCENARIOS[name],
        "implementation": spec,
        "server_class": server_class,
        "family": family,
        "platform": sys.platform,
        "python": ".".join(str(part) for part in sys.version_info[:3]),
    }
    if forking:
        result.update(_run_in_process(name, target if target is impl else spec, server_class, family))
    else:
        result.update(_run_in_thread(name, target, server_class, family, dgram))
    return result


def _run_in_thread(name, impl, server_class, family, dgram) -> Dict[str, Any]:
    with addresses.private_dir("ssc-disc-") as directory:
        with spec_server(impl, server_class, serve=True, loop_may_die=True, **observer_spec(name, dgram)) as served:
            log = served.log
            client_side = DRIVERS[name](served.address, family, log, directory)
            try:
                _wait(log, _settled_in_thread(served), "the server to finish the subject's request")
            except timeouts.HarnessTimeout as exc:
                _raise_if_only_shutdown_missing(log.read(), exc)
                raise
            if _loop_ends_with_request(log.read(), served):
                # coll-handler: a loop that died of the subject's request serves no one: not waited for
                # (the probe client would wait out its budget in the dead server's backlog)
                dead: Optional[Dict[str, Any]] = {"exc": "serve_forever() had ended", "exc_type": None,
                                        "errno": None, "errno_name": None, "winerror": None}
                served_ok, probe_error, probe_reply = False, dead, None
            else:
                served_ok, probe_error, probe_reply = _probe(served.address, family, dgram, directory)
        # serve_forever() itself died: an observation about the implementation, not a harness failure
        serve_error = served.serve_error
        events = served.events()
    subject_recvs = _subject_events(events, "recv")
    sends = {e.get("label"): e for e in _subject_events(events, "send")}
    errors = handle_errors(events)
    get_errors = get_request_errors(events)
    terminal = subject_recvs[-1] if subject_recvs else None
    observed: Dict[str, Any] = {
        "server_recv": _observation(terminal),
        "server_recv_all": [_observation(e) for e in subject_recvs],
        "server_send": _observation(sends.get("send"), "nbytes"),
        "server_send_again": _observation(sends.get("send_again"), "nbytes"),
        "handle_error_called": bool(errors),
        "handle_error_exc": errors[0].get("exc_type") if errors else None,
        "handle_error_printed": errors[0].get("printed_first_line") if errors else None,
        "get_request_errors": [_observation(e) for e in get_errors],
        "next_client_served": served_ok,
        "probe_reply": probe_reply,
        "probe_error": probe_error,
        "serve_forever_died": serve_error,
        "client_side": client_side,
        "server_in": "thread",
    }
    if "greeting" in sends:
        observed["server_greeting"] = _observation(sends["greeting"], "nbytes")
    if dgram:
        # what the server's next receive saw after replying to the dead port:
        # an error get_request swallowed (Windows: WSAECONNRESET), else the probe's datagram
        probe_recvs = [e for e in events if e.get("kind") == "recv" and e.get("role") == "probe"]
        observed["server_recv"] = _observation(get_errors[0]) if get_errors else _observation(
            probe_recvs[0] if probe_recvs else None)
        observed["subject_datagram"] = _observation(terminal)
    return observed


def _run_in_process(name, spec, server_class, family) -> Dict[str, Any]:
    """A forking server in a process of its own: a server process of the kit running ``spec``,
    or (``spec`` a subject's implementation) the subject agent, serving the same behaviour."""
    from harness.processes.server_process import serve_in_process

    if name not in PROCESS_SCENARIOS:
        raise ValueError(f"scenario {name!r} is not available for {server_class} (server in a child process); "
                         f"available: {', '.join(PROCESS_SCENARIOS)}")
    options = {"send_after_eof": REPLY.decode("ascii"), "recv_timeout": timeouts.medium()}
    subject = getattr(spec, "subject", None)
    with addresses.private_dir("ssc-disc-") as directory:
        serving = (subject.serve(server_class, "observe_recv", family=family, options=options) if subject is not None
                   else serve_in_process(spec, server_class, "observe_recv", family=family, options=options))
        with serving as proc:
            log = proc.log
            client_side = DRIVERS[name](proc.address, family, log, directory)
            _wait(log, _settled_in_process, "the server process to finish the subject's request")
            subject = _subject(log.read())
            reached = False
            probe_error = None
            try:
                sock = clients.connect(proc.address, family)
                with sock:
                    clients.sendall(sock, PROBE)
                    probe_events = _wait(log, lambda events: any(
                        e.get("kind") == "recv" and e.get("request") != subject and "PROBE" in str(e.get("result"))
                        for e in events), "the probe to reach a handler")
                    reached = bool(probe_events)
            except (OSError, ScenarioError) as exc:
                probe_error = exception_fields(exc)
            events = log.read()
    recvs = _subject_events(events, "recv")
    sends = _subject_events(events, "send")
    return {
        "server_recv": _observation(recvs[-1] if recvs else None),
        "server_recv_all": [_observation(e) for e in recvs],
        "server_send": _observation(sends[0] if sends else None, "nbytes"),
        "server_send_again": None,
        "handle_error_called": None,  # not observable in the child process
        "handle_error_exc": None,
        "handle_error_printed": None,
        "get_request_errors": [],
        "next_client_served": reached,
        "probe_reply": None,
        "probe_error": probe_error,
        "serve_forever_died": None,
        "client_side": client_side,
        "server_in": "process",
    }


def run_all(impl: Any = "stdlib", server_class: Optional[str] = None, family: str = "inet",
            names: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """Every applicable scenario (stream ones for a stream class, datagram ones otherwise)."""
    results = []
    for name in names or list(SCENARIOS):
        cls_name = server_class or default_server_class(name, family)
        if addresses.is_datagram_class(cls_name) != (name in DATAGRAM_SCENARIOS):
            continue
        results.append(run_scenario(name, impl, cls_name, family))
    return results


__all__ = [
    "DATAGRAM_SCENARIOS",
    "PROCESS_SCENARIOS",
    "SCENARIOS",
    "STREAM_SCENARIOS",
    "ScenarioError",
    "default_server_class",
    "get_request_errors",
    "handle_errors",
    "observer_spec",
    "run_all",
    "run_scenario",
]
