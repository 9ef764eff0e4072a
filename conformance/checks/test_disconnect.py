"""DISCONNECT-*: clients that vanish, and a server that must carry on.

The scenarios of :mod:`harness.clients.disconnect` (graceful close, half-close,
reset, close with unread data, a killed client process, half a line, a
UDP reply to a dead port) run against every stream server kind
(``TCPServer``, ``ThreadingTCPServer``, ``ForkingTCPServer`` and the three
``Unix*StreamServer`` kinds; forking kinds in a server process, so the
scenarios that need the server to speak first are not available there).
Each scenario runs once per kind and pytest process
(:mod:`conformance.tools.disconnect_scenarios`), and several checks read
it: what the server's ``recv`` saw is a PLATFORM observation (Linux reads
``b''`` after a FIN and ``ECONNRESET`` after a reset; Windows reports
WinError 10054 where Linux sees a FIN after a kill, which is the point of
the tutorial's socketserver2/3), while "the next client is served" is
REQUIRED everywhere.

The specific checks describe their own servers as specs
(:mod:`harness.serving.spec_server`), so they run in-process and through the
subject agent alike: ``StreamRequestHandler.finish`` swallowing the error of
its final flush (a recording proxy around ``wfile`` observes the flush and the
close that follows, without changing them), and a reset connection waiting
in the accept backlog (``get_request`` is held until the client has connected
and aborted, so the server accepts a dead connection).

Clauses: CPython's request pipeline and ``StreamRequestHandler.finish``
(Lib/socketserver.py at v3.13.0), the topics of docs/platform-knowledge.md
(``fin``, ``rst``, ``half_close``, ``unread_close``, ``killed``,
``accept_after_rst``, ``udp_dead_port``) and the tutorial's
socketserver2/socketserver3.
"""

from __future__ import annotations

import ast
import os
import socket
import struct
from typing import Any, Dict, List

import pytest

from conformance.api import PLATFORM, REQUIRED, check, verify, verify_equal
from conformance.tools.disconnect_scenarios import (
    exception_summary,
    recv_summary,
    scenario,
    send_summary,
)
from conformance.tools.serving import require_kind
from harness.clients import bounded as clients
from harness.clients import disconnect
from harness.core import prerequisites, timeouts
from harness.serving import instrument, servers
from harness.serving.instrument import exception_fields
from harness.serving.spec_server import hook_calls, spec_server, steps

STREAM_KINDS = ("TCPServer", "ThreadingTCPServer", "ForkingTCPServer",
                "UnixStreamServer", "ThreadingUnixStreamServer", "ForkingUnixStreamServer")
IN_THREAD_STREAM = tuple(k for k in STREAM_KINDS if not k.startswith("Forking"))
INET_IN_THREAD = ("TCPServer", "ThreadingTCPServer")
DGRAM_IN_THREAD = ("UDPServer", "ThreadingUDPServer", "UnixDatagramServer", "ThreadingUnixDatagramServer")


def _grid() -> List[Any]:
    """Every (scenario, stream kind) the scenario API can run; ids ``scenario-Kind``."""
    params = []
    for name in disconnect.STREAM_SCENARIOS:
        for kind in STREAM_KINDS:
            if kind.startswith("Forking") and name not in disconnect.PROCESS_SCENARIOS:
                continue
            params.append(pytest.param(name, kind, id=f"{name}-{kind}"))
    return params


GRID = _grid()
#: What a server may see at the end of a vanished stream, on any OS
#: (docs/platform-knowledge.md, topics fin to killed): EOF or one of these exceptions.
END_OF_STREAM = {"b''", "ConnectionResetError", "ConnectionAbortedError", "BrokenPipeError", "OSError"}
#: Scenarios whose client closes gracefully (FIN) after sending: its bytes arrive before the end, everywhere.
GRACEFUL_PAYLOAD = {"fin": disconnect.HELLO, "half_close": disconnect.HELLO, "partial_send": disconnect.PARTIAL}


def _bytes_before_end(result: Dict[str, Any]) -> bytes:
    data = b""
    for observation in result.get("server_recv_all") or ():
        text = observation.get("result") if observation else None
        if isinstance(text, str) and text.startswith("b"):
            data += ast.literal_eval(text)
    return data


def _observe_scenario(observe, result: Dict[str, Any]) -> None:
    for key in ("server_class", "server_in", "server_recv", "server_recv_all", "server_send",
                "handle_error_called", "handle_error_exc", "next_client_served", "probe_error",
                "serve_forever_died", "client_side"):
        observe(key, result.get(key))


@check("DISCONNECT-001", PLATFORM,
       clause="a client that goes away surfaces in the handler as EOF (b'') or a connection "
              "error, depending on how it went and on the OS [docs/platform-knowledge.md#rst, "
              "docs/platform-knowledge.md#fin, docs/platform-knowledge.md#half_close, "
              "docs/platform-knowledge.md#unread_close, docs/platform-knowledge.md#killed]")
@pytest.mark.parametrize("name, kind", GRID)
def test_what_recv_saw(impl, ss, observe, name, kind):
    """What the server's recv saw when the client went away."""
    require_kind(ss, kind)
    result = scenario(impl, name, kind)
    _observe_scenario(observe, result)
    final = recv_summary(result.get("server_recv"))
    observe.summary(final)
    verify(result.get("server_recv") is not None, "the handler's reads", "recorded up to the disconnect",
           result.get("server_recv_all"))
    kind_of_end = final.split(" ", 1)[0]
    verify(kind_of_end in END_OF_STREAM, "how the stream ended for the handler",
           f"one of {sorted(END_OF_STREAM)}", final)
    if name in GRACEFUL_PAYLOAD:
        received = _bytes_before_end(result)
        observe("bytes_before_end", received)
        verify_equal("bytes the handler read before the end of the stream", GRACEFUL_PAYLOAD[name], received)


@check("DISCONNECT-002", REQUIRED,
       clause="the server survives a client that vanishes: handler errors go to handle_error and "
              "serve_forever goes on to the next client "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321, "
              "docs/platform-knowledge.md#rst]")
@pytest.mark.parametrize("name, kind", GRID)
def test_next_client_served(impl, ss, observe, name, kind):
    """The server serves the next client after the disconnect."""
    require_kind(ss, kind)
    result = scenario(impl, name, kind)
    _observe_scenario(observe, result)
    verify(result.get("serve_forever_died") is None, "serve_forever after the disconnect", "still running",
           result.get("serve_forever_died"))
    verify(result.get("next_client_served") is True, "the next client", "served",
           {"probe_reply": result.get("probe_reply"), "probe_error": result.get("probe_error")})


@check("DISCONNECT-003", PLATFORM, topic="rst",
       clause="a client RST during the handler surfaces as ConnectionResetError (10053/10054 on "
              "Windows); it goes to handle_error and the server continues "
              "[docs/platform-knowledge.md#rst]")
@pytest.mark.parametrize("kind", INET_IN_THREAD)
def test_reset_goes_to_handle_error(impl, ss, observe, kind):
    """An exception raised by recv after a reset reaches handle_error."""
    require_kind(ss, kind)
    result = scenario(impl, "rst", kind)
    _observe_scenario(observe, result)
    raised = exception_summary(result.get("server_recv"))
    observe("handle_error_printed", result.get("handle_error_printed"))
    observe.summary(raised if result.get("handle_error_called") else "handle_error not called")
    if raised is None:
        # the OS reported the reset as EOF: nothing escaped handle(), handle_error must stay quiet
        verify(not result.get("handle_error_called"), "handle_error without an exception from handle()",
               "not called", result.get("handle_error_exc"))
    else:
        broken = servers.class_finding(impl, kind, prerequisites.error_reporting)  # coll-handler: PIPELINE-015's, THREADING-004's
        if broken is not None and result.get("handle_error_exc") != result["server_recv"]["exception"]:
            raise broken
        verify_equal("exception handle_error received (the one handle() raised)", result["server_recv"]["exception"],
                     result.get("handle_error_exc"))
    verify(result.get("next_client_served") is True, "the next client after the reset", "served",
           result.get("probe_error"))


@check("DISCONNECT-004", PLATFORM, topic="send_after_rst",
       clause="send() after the peer's RST raises ConnectionResetError or BrokenPipeError (macOS: "
              "EPIPE; Windows: 10054/10053); the server survives it "
              "[docs/platform-knowledge.md#send_after_rst]")
@pytest.mark.parametrize("kind", INET_IN_THREAD)
def test_send_after_reset(impl, ss, observe, kind):
    """What the handler's send gives after the client reset the connection."""
    require_kind(ss, kind)
    result = scenario(impl, "rst", kind)
    _observe_scenario(observe, result)
    observe("server_send_again", result.get("server_send_again"))
    observe.summary(send_summary(result.get("server_send")))
    verify(result.get("next_client_served") is True, "the next client after a send into a reset connection",
           "served", result.get("probe_error"))


# --------------------------------------------------------------------------- finish() and its flush


#: struct linger {on, 0}: two ints on POSIX, two u_shorts on Winsock.
_LINGER_ZERO = struct.pack("HH", 1, 0) if os.name == "nt" else struct.pack("ii", 1, 0)


def _vanish(sock: socket.socket, family: str) -> None:
    """Close so that the server's next send fails: RST for TCP, a plain close for AF_UNIX."""
    if family == "inet":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    sock.close()


@check("DISCONNECT-005", REQUIRED,
       clause="StreamRequestHandler.finish flushes wfile if it is not closed, swallowing OSError, "
              "then closes wfile and rfile "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
@pytest.mark.parametrize("family", ["inet", "unix"])
def test_finish_swallows_final_flush_error(impl, ss, observe, family):
    """finish() swallows the error of the final flush when the client has vanished."""
    kind = "TCPServer" if family == "inet" else "UnixStreamServer"
    require_kind(ss, kind)
    # a buffered wfile: the reply is only sent by finish()'s flush; setup() puts a recording
    # proxy around wfile (flush/close and their exceptions, changing nothing); the first
    # request waits until the client vanished and the reset (or EOF) made the socket readable
    probe = {"attrs": {"wbufsize": 64 * 1024}, "setup": ["base", "wrap_wfile"],
             "handle": {"first": ["readline", ["wait_release", "gone"], "readable",
                                  ["write", "reply nobody will read\n"]],
                        "rest": ["readline", ["write_reads", ""]]}}
    with spec_server(impl, kind, probe=probe, handler_base="StreamRequestHandler", serve=True, loop_may_die=True,
                     hooks={"handle_error": "observe_quiet"}) as served:
        sock = clients.connect(served.address, family)
        try:
            clients.sendall(sock, b"request\n")
            served.log.wait_for(lambda events: steps(events, "readline"), timeouts.short(),
                                "the handler to read the request")
        finally:
            _vanish(sock, family)
        instrument.release(served.log, "gone")
        probe_reply = clients.roundtrip(served.address, family, disconnect.PROBE)
    events = served.events()
    # the first request's calls: those of its handler's thread (a server that runs its handlers
    # in threads may interleave the next client's; one that does not runs them in turn)
    first = {e.get("tid") for e in steps(events, "readline", request=1)}
    calls = [{"call": e["call"], "exc_type": e.get("exc_type")} for e in events
             if e.get("kind") == "wfile" and (not first or e.get("tid") in first)]
    errors = [call["exc_info"]["type"] for call in hook_calls(events, "handle_error")]
    died = served.serve_error
    subject = [step for step in calls if step.get("call") != "write"][:2]
    observe("writer_calls", calls)
    observe("handle_error_calls", errors)
    observe("probe_reply", probe_reply)
    verify(not died, "serve_forever after the vanished client", "still running", died)
    # the premise: a buffered wfile (wbufsize 64 KiB), whose short write() sends nothing, so only
    # finish()'s flush meets the vanished client; a write() that raised was sent at once (HANDLER-008's)
    raised = [step for step in calls if step.get("call") == "write" and step.get("exc_type")]
    prerequisites.premise("wfile_buffered", not raised, f"with wbufsize 65536, wfile.write() raised {raised}")
    flush = subject[0] if subject else None
    verify(flush is not None and flush["call"] == "flush", "finish()'s first call on wfile", "flush()", subject)
    verify(flush.get("exc_type") is not None, "the final flush to a vanished client",
           "an OSError (the test's precondition)", flush)
    after = subject[1] if len(subject) > 1 else None
    verify(after is not None and after["call"] == "close", "what finish() did after the failed flush",
           "went on to wfile.close() (the flush error was swallowed)", subject)
    verify_equal("the next client's echo", disconnect.PROBE, probe_reply)


# --------------------------------------------------------------------------- accept after RST


@check("DISCONNECT-006", PLATFORM, topic="accept_after_rst",
       clause="a connection reset while still in the accept backlog: Linux and macOS accept it, "
              "Windows may fail accept() with 10054, FreeBSD with ECONNABORTED; get_request "
              "errors are swallowed and the server serves the next client "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L312-L315, "
              "docs/platform-knowledge.md#accept_after_rst]")
@pytest.mark.parametrize("kind", INET_IN_THREAD)
def test_accept_after_reset_in_backlog(impl, ss, observe, kind):
    """A client that connects and resets before accept() does not stop the server."""
    require_kind(ss, kind)
    # get_request holds its first call until released: the dead client's handshake completes
    # in the listen backlog, it aborts, and only then is it accepted.  The handler knows the
    # dead client by its address (a dead_client event), not by arriving first: where accept()
    # fails for the reset connection (Windows: WSAECONNRESET) the probe is the first handler.
    hooks = dict(disconnect.SERVER_HOOKS, get_request="hold_once")
    with spec_server(impl, kind, probe={"handle": ["backlog_observer"]}, hooks=hooks,
                     handler_base="StreamRequestHandler", serve=True, loop_may_die=True) as served:
        log = served.log
        dead = clients.connect(served.address, "inet")
        try:
            log.append(kind="dead_client", address=list(dead.getsockname()))
            log.wait_for(lambda events: any(e.get("kind") == "hold" for e in events), timeouts.short(),
                         "serve_forever to take the pending connection")
        finally:
            _vanish(dead, "inet")
            instrument.release(log, "get_request")
        try:
            probe = clients.roundtrip(served.address, "inet", disconnect.PROBE)
        except (OSError, EOFError, timeouts.HarnessTimeout) as exc:
            probe = exception_fields(exc)  # not served: an observation, the check fails below
        try:
            log.wait_for(lambda events: disconnect.get_request_errors(events) or sum(
                1 for e in events if e.get("kind") == "hook_end" and e.get("hook") == "shutdown_request") >= 2,
                timeouts.short(), "the dead connection to be accepted or refused")
        except timeouts.HarnessTimeout:
            pass
    events = served.events()
    died = served.serve_error
    dead_events = [e for e in events if e.get("role") == "dead"]
    accept_errors = disconnect.get_request_errors(events)
    handle_errors = [e.get("exc_type") for e in disconnect.handle_errors(events)]
    started = [e for e in dead_events if e.get("kind") == "start"]
    if started:
        summary = "accepted"
    elif accept_errors:
        summary = exception_summary({"exception": accept_errors[0].get("exc_type"),
                                     "errno": accept_errors[0].get("errno"),
                                     "winerror": accept_errors[0].get("winerror"),
                                     "errno_name": accept_errors[0].get("errno_name")})
    else:
        summary = "not accepted"
    observe("client_address_seen", started[0].get("client") if started else None)
    observe("handler_saw", [e for e in dead_events if e.get("kind") == "recv"])
    observe("accept_errors", accept_errors)
    observe("handle_error_calls", handle_errors)
    observe("probe_reply", probe)
    observe("serve_forever_died", died)
    observe.summary(summary)
    verify(not died, "serve_forever after the dead connection", "still running", died)
    verify_equal("the next client's echo after a reset in the backlog", disconnect.PROBE, probe)


# --------------------------------------------------------------------------- half-close, partial line, UDP


@check("DISCONNECT-007", REQUIRED,
       clause="after the client's shutdown(SHUT_WR) the handler reads b'' and can still reply; "
              "the client reads the whole reply "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L516, "
              "docs/platform-knowledge.md#half_close]")
@pytest.mark.parametrize("kind", STREAM_KINDS)
def test_half_close_reply_delivered(impl, ss, observe, kind):
    """A client that half-closes still receives the full reply."""
    require_kind(ss, kind)
    result = scenario(impl, "half_close", kind)
    _observe_scenario(observe, result)
    client = result.get("client_side") or {}
    verify(client.get("reply_received") is True, "the half-closed client's reply",
           repr(disconnect.REPLY), {"reply": client.get("reply"), "error": client.get("reply_error")})
    verify_equal("what the handler read after SHUT_WR", "b''", recv_summary(result.get("server_recv")))


@check("DISCONNECT-008", REQUIRED,
       clause="a client that closes mid-line: StreamRequestHandler.rfile.readline() returns the "
              "incomplete line at end of stream, and the server goes on "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L811, "
              "https://docs.python.org/3/library/io.html#io.IOBase.readline]")
@pytest.mark.parametrize("kind", IN_THREAD_STREAM)
def test_partial_line_at_end_of_stream(impl, ss, observe, kind):
    """readline() returns the half line a vanished client sent, without error."""
    require_kind(ss, kind)
    result = scenario(impl, "partial_send", kind)
    _observe_scenario(observe, result)
    seen = result.get("server_recv") or {}
    verify_equal("what rfile.readline() returned", repr(disconnect.PARTIAL), seen.get("result"))
    verify(seen.get("line_complete") is False and not seen.get("exception"), "the line", "incomplete, no error",
           seen)
    verify(result.get("next_client_served") is True, "the next client", "served", result.get("probe_error"))


@check("DISCONNECT-009", PLATFORM, topic="udp_dead_port",
       clause="a UDP reply to a vanished client: Windows raises WSAECONNRESET on the next "
              "recvfrom, POSIX reports nothing; get_request swallows it and the next datagram is "
              "served [docs/platform-knowledge.md#udp_dead_port, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
@pytest.mark.parametrize("kind", DGRAM_IN_THREAD)
def test_udp_reply_to_dead_port(impl, ss, observe, kind):
    """After replying to a closed port the datagram server serves the next client."""
    require_kind(ss, kind)
    result = scenario(impl, "udp_dead_port", kind)
    _observe_scenario(observe, result)
    observe("get_request_errors", result.get("get_request_errors"))
    errors = result.get("get_request_errors") or []
    observe.summary(exception_summary(errors[0]) if errors else "no error")
    verify(result.get("serve_forever_died") is None, "serve_forever after the dead-port reply", "still running",
           result.get("serve_forever_died"))
    verify(result.get("next_client_served") is True, "the next datagram client", "served",
           {"probe_reply": result.get("probe_reply"), "probe_error": result.get("probe_error")})
