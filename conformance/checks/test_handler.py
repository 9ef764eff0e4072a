"""HANDLER-*: the request handler classes and their documented contract.

Each check describes its server as a spec (:mod:`harness.serving.spec_server`):
the synchronous ``TCPServer``/``UDPServer`` of the implementation, its
``handle_error`` recording instead of printing, and a *probe* handler on the
implementation's own ``BaseRequestHandler``, ``StreamRequestHandler`` or
``DatagramRequestHandler`` whose ``setup``/``handle``/``finish`` run named
steps (read a line, write, close ``wfile``, raise) and record what they see
(the calls in order, what ``readline()`` and ``write()`` returned, socket
options, what the file objects are) in the event log.  The same body runs
in-process and through the subject agent.  Buffering is proved by what the
client can read and when: "nothing yet" is one ``timeouts.absence()`` window
while the handler is parked on a release the check controls, so the handler
cannot have reached ``finish()``.

Clauses: CPython's handler classes (Lib/socketserver.py at v3.13.0) and the
documentation of ``BaseRequestHandler``, ``StreamRequestHandler``
(``rbufsize``, ``wbufsize``, ``timeout``, ``disable_nagle_algorithm``) and
``DatagramRequestHandler``.
"""

from __future__ import annotations

import socket
import struct

import pytest

from conformance.api import REQUIRED, VERSION, check, verify, verify_equal
from harness.clients import bounded as clients
from harness.core import prerequisites, timeouts
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument, servers
from harness.serving.spec_server import (
    ConstructionError,
    as_address,
    as_bytes,
    fact,
    hook_calls,
    run_datagram_handler,
    spec_server,
    step_values,
    steps,
)

LARGE = bytes(range(256)) * (4 * 1024 * 1024 // 256)  # 4 MiB, position-dependent content


def _server(impl, probe, class_name="TCPServer", handler_base="StreamRequestHandler"):
    """A served ``class_name`` with a ``probe`` handler whose handle_error records instead of printing."""
    return spec_server(impl, class_name, probe=probe, handler_base=handler_base, serve=True,
                       hooks={"handle_error": "observe_quiet"})


def _errors(events):
    """The exceptions handle_error got: ``sys.exc_info()`` as the subject saw it."""
    return [call["exc_info"] for call in hook_calls(events, "handle_error")]


def _verify_reported(impl, expected, errors):
    """The exception types handle_error() got are ``expected``; where they are not, and the probes
    found that this TCPServer's handle_error() does not see the handler's exception (PIPELINE-015's),
    PRECONDITION_FAILED naming that owner (coll-handler)."""
    found = [e["type"] for e in errors]
    broken = servers.class_finding(impl, "TCPServer", prerequisites.error_reporting)
    if broken is not None and found != expected:
        raise broken
    verify_equal("exceptions reported to handle_error", expected, found)


def _calls(events):
    """The handler methods entered, in order, each with its request number: ``setup1``..."""
    return [f"{e['at']}{e['request']}" for e in events if e.get("kind") == "call"]


def _value(events, step, index=0):
    found = step_values(events, step)
    return found[index] if len(found) > index else None


def _wait_step(server, step, what):
    server.log.wait_for(lambda events: steps(events, step), timeouts.short(), what)


@check("HANDLER-001", REQUIRED,
       clause="BaseRequestHandler.__init__ calls setup(), handle(), then finish() "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
@pytest.mark.parametrize("base_name", ["BaseRequestHandler", "StreamRequestHandler"])
def test_lifecycle_order(impl, observe, base_name):
    """A handler's setup, handle and finish run once each, in that order."""
    # read the request: closing with unread data resets the client
    with _server(impl, {"handle": [["recv", 64], ["sendall", "ok"]]}, handler_base=base_name) as server:
        reply = clients.roundtrip(server.address, payload=b"x")
    found = [e["at"] for e in server.events() if e.get("kind") == "call"]
    observe("steps", found)
    verify_equal("reply", b"ok", reply)
    verify_equal("handler steps", ["setup", "handle", "finish"], found)


@check("HANDLER-002", REQUIRED,
       clause="finish() is called in a finally: it runs even when handle() raises "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
def test_finish_runs_when_handle_raises(impl, observe):
    """finish() runs after handle() raised, and the exception reaches handle_error."""
    probe = {"setup": [], "handle": [["raise", {"type": "ValueError", "message": "handle failed on purpose"}]],
             "finish": []}
    with _server(impl, probe, handler_base="BaseRequestHandler") as server:
        reply = clients.roundtrip(server.address, payload=b"")  # nothing unread when the server closes
    events = server.events()
    found = [e["at"] for e in events if e.get("kind") == "call"]
    errors = _errors(events)
    observe("steps", found)
    observe("handle_error", errors)
    verify_equal("handler steps", ["setup", "handle", "finish"], found)
    _verify_reported(impl, ["ValueError"], errors)
    verify_equal("reply (EOF)", b"", reply)


@check("HANDLER-003", REQUIRED,
       clause="if setup() raises, neither handle() nor finish() runs "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
def test_nothing_runs_after_setup_raises(impl, observe):
    """When setup() raises, handle() and finish() are skipped; the next request is served normally."""
    probe = {"setup": {"first": [["raise", {"type": "ValueError", "message": "setup failed on purpose"}]],
                       "rest": []},
             "handle": [["sendall", "ok"]], "finish": []}
    with _server(impl, probe, handler_base="BaseRequestHandler") as server:
        first = clients.roundtrip(server.address, payload=b"")  # nothing unread when the server closes
        second = clients.roundtrip(server.address, payload=b"")
    events = server.events()
    errors = _errors(events)
    observe("steps", _calls(events))
    observe("handle_error", errors)
    verify_equal("handler steps for two requests", ["setup1", "setup2", "handle2", "finish2"], _calls(events))
    verify_equal("replies", (b"", b"ok"), (first, second))
    _verify_reported(impl, ["ValueError"], errors)


@check("HANDLER-004", REQUIRED,
       clause="BaseRequestHandler sets request, client_address and server before calling setup() "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
def test_attributes_set_before_setup(impl, observe):
    """In setup(), request is the connection, client_address the client's address, server the server."""
    probe = {"setup": [["fact", "attributes"], ["fact", "peer"]], "handle": [["sendall", "ok"]]}
    with _server(impl, probe, handler_base="BaseRequestHandler") as server:
        with clients.connect(server.address) as sock:
            client_name = sock.getsockname()
            sock.shutdown(socket.SHUT_WR)
            reply = clients.recv_until_eof(sock)
    events = server.events()
    seen = fact(events, "attributes") or {}
    absent = [name for name in ("request", "client_address", "server")
              if not isinstance(seen.get(name), (dict, list)) or seen[name] == {"absent": True}]
    observe("absent_in_setup", absent)
    observe("client_address", seen.get("client_address"))
    verify_equal("reply", b"ok", reply)
    verify(not absent, "attributes available in setup()", "request, client_address, server", absent)
    verify_equal("request.getpeername() in setup (the client's socket)", client_name, as_address(fact(events, "peer")))
    # the handler sets what it is given: a server that gives it another client_address (get_request,
    # PIPELINE-013's) or another server (finish_request, PIPELINE-014's) is not this clause's (coll-handler)
    if as_address(seen["client_address"]) != client_name or seen["server"].get("ref") != server.ref:
        broken = servers.class_finding(impl, "TCPServer", prerequisites.handler_arguments)
        if broken is not None:
            raise broken
    verify_equal("client_address in setup", client_name, as_address(seen["client_address"]))
    verify(seen["server"].get("ref") == server.ref, "server attribute in setup", "the server instance",
           seen["server"])


@check("HANDLER-005", REQUIRED,
       clause="StreamRequestHandler: rfile is makefile('rb', rbufsize), buffered by default; "
              "readline works "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L804-L815]")
def test_rfile_is_a_buffered_reader(impl, observe):
    """rfile is a buffered binary reader whose readline splits lines without losing data."""
    probe = {"handle": [["fact", "rfile"], "readline", "readline", "read", ["write_reads", "|"]]}
    with _server(impl, probe) as server:
        reply = clients.roundtrip(server.address, payload=b"one\ntwo\nthree")
    events = server.events()
    rfile = fact(events, "rfile") or {}
    lines = [as_bytes(v) for v in step_values(events, "readline") + step_values(events, "read")]
    observe("rfile_type", rfile.get("type"))
    observe("lines", lines)
    verify(rfile.get("buffered_io"), "rfile", "an io.BufferedIOBase (buffered reader)", rfile.get("type"))
    verify_equal("readline, readline, read", [b"one\n", b"two\n", b"three"], lines)
    verify_equal("reply", b"one\n|two\n|three", reply)


@check("HANDLER-006", VERSION,
       clause="wbufsize == 0: wfile is an io.BufferedIOBase whose write() sends at once "
              "(sendall), returns len(data) and needs no flush; wfile.fileno() == "
              "request.fileno() (3.6+) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L828-L845, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L812-L813]")
def test_unbuffered_wfile(impl, observe):
    """A wfile with wbufsize 0 sends on write() without flush and returns the byte count."""
    # the client answers only once "ping" arrived: no flush was needed.  wbufsize is set to 0
    # (its default, which API-016 owns): the clause is about that value, whatever the default
    probe = {"attrs": {"wbufsize": 0},
             "handle": [["fact", "wfile"], ["write", "ping\n"], ["settimeout", "medium"], "readline"]}
    with _server(impl, probe) as server:
        with clients.connect(server.address) as sock:
            try:
                ping = clients.recv_line(sock)
            except HarnessTimeout:
                ping = None
            if ping:
                clients.sendall(sock, b"ack\n")
            sock.shutdown(socket.SHUT_WR)
            clients.recv_until_eof(sock)
    events = server.events()
    wfile = fact(events, "wfile") or {}
    returned = _value(events, "write")
    observe("wfile_type", wfile.get("type"))
    observe("write_returned", returned)
    observe("client_received_before_flush", ping)
    if not impl.api_at_least(3, 6):
        return
    verify_equal("what the client received before the handler flushed or returned", b"ping\n", ping)
    verify_equal("the client's answer read by the handler", b"ack\n", as_bytes(_value(events, "readline")))
    verify_equal("wfile.write(b'ping\\n') return value", 5, returned)
    verify(wfile.get("buffered_io"), "wfile", "an io.BufferedIOBase", wfile.get("type"))
    verify(wfile.get("fileno_matches") is True, "wfile.fileno()", "request.fileno()", wfile.get("fileno_matches"))


SMALL_BUFFER = 32 * 1024


@check("HANDLER-007", REQUIRED,
       clause="with wbufsize == 0 a write() is a full sendall: a 4 MiB write is delivered "
              "completely, also on a connection with a timeout (bpo-26721) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L828-L845]")
def test_large_write_is_complete(impl, observe):
    """One 4 MiB wfile.write() on a connection with a timeout reaches the client whole."""
    # A timeout puts the socket in non-blocking mode underneath, where a single send()
    # may write only part of a large buffer.  Small buffers on both ends: a single
    # send() of 4 MiB then cannot be absorbed by the kernel at once, so a write() that
    # is not a full sendall is caught every time, not only under load.
    probe = {"attrs": {"timeout": "medium"}, "handle": [["sndbuf", SMALL_BUFFER], ["write_pattern", len(LARGE)]]}
    with _server(impl, probe) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            sock.settimeout(timeouts.short())
            sock.connect(server.address)
            sock.shutdown(socket.SHUT_WR)
            data = clients.recv_until_eof(sock, timeouts.medium())
    returned = _value(server.events(), "write_pattern")
    observe("received_bytes", len(data))
    observe("write_returned", returned)
    verify_equal("bytes received", len(LARGE), len(data))
    verify(data == LARGE, "content received", "the 4 MiB pattern intact", "corrupted")
    # a count short of the whole is a write() that was not a full sendall (this clause); a
    # write() that returns no count at all breaks HANDLER-006's clause (3.6+), not this one
    if impl.api_at_least(3, 6):
        prerequisites.premise("write_returns_count", isinstance(returned, int),
                              f"wfile.write() of 4 MiB returned {returned!r}")
    verify_equal("wfile.write() return value", len(LARGE), returned)


@check("HANDLER-008", REQUIRED,
       clause="with wbufsize != 0 wfile is makefile('wb', wbufsize): writes are buffered and "
              "finish() flushes them "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L812-L815, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
def test_buffered_wfile_flushes_in_finish(impl, observe):
    """A small write to a buffered wfile reaches the client only after the handler finishes."""
    _check_buffered_until_finish(impl, observe, 8192)


def _check_buffered_until_finish(impl, observe, buffer_size):
    """100 bytes written with ``wbufsize = buffer_size`` arrive only after finish()."""
    probe = {"attrs": {"wbufsize": buffer_size}, "handle": [["write", "x" * 100], ["wait_release", "checked"]]}
    with _server(impl, probe) as server:
        with clients.connect(server.address) as sock:
            try:
                _wait_step(server, "write", "the handler's write")
                sock.settimeout(timeouts.absence())
                try:
                    early = sock.recv(1000)
                except socket.timeout:
                    early = None
            finally:
                instrument.release(server.log, "checked")
            data = clients.recv_until_eof(sock)
    observe("received_while_handler_ran", early)
    observe("received_after_finish", len(data))
    verify(early is None, "bytes received before finish()", "none (buffered)", early)
    verify_equal("bytes received after finish()", b"x" * 100, data)


@check("HANDLER-009", REQUIRED,
       clause="StreamRequestHandler.setup: request.settimeout(timeout) when timeout is not None "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L804-L815]")
@pytest.mark.parametrize("timeout", [None, 7.5], ids=["timeout=None", "timeout=7.5"])
def test_handler_timeout_applied(impl, observe, timeout):
    """The handler's timeout attribute becomes the connection's socket timeout."""
    probe = {"attrs": {"timeout": timeout}, "handle": [["fact", "gettimeout"], "read", ["write", "ok"]]}
    with _server(impl, probe) as server:
        reply = clients.roundtrip(server.address, payload=b"x")
    seen = fact(server.events(), "gettimeout")
    observe("gettimeout", seen)
    verify_equal("reply", b"ok", reply)
    verify_equal("request.gettimeout() in handle()", timeout, seen)


@check("HANDLER-010", REQUIRED,
       clause="StreamRequestHandler.setup sets TCP_NODELAY when disable_nagle_algorithm "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L804-L815]")
@pytest.mark.parametrize("flag", [False, True], ids=["disable_nagle_algorithm=False", "disable_nagle_algorithm=True"])
def test_disable_nagle_algorithm(impl, observe, flag):
    """TCP_NODELAY on the connection follows disable_nagle_algorithm."""
    probe = {"attrs": {"disable_nagle_algorithm": flag}, "handle": [["fact", "nodelay"], "read", ["write", "ok"]]}
    with _server(impl, probe) as server:
        reply = clients.roundtrip(server.address, payload=b"x")
    nodelay = fact(server.events(), "nodelay")
    observe("TCP_NODELAY", nodelay)
    verify_equal("reply", b"ok", reply)
    verify_equal("TCP_NODELAY set", flag, bool(nodelay))


@check("HANDLER-011", REQUIRED,
       clause="StreamRequestHandler.finish swallows OSError from the final flush and still closes "
              "wfile (client gone, bpo-14574); the server keeps serving "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
def test_finish_survives_flush_error(impl, observe):
    """A buffered reply to a client that reset the connection: wfile still closed, the server serves on."""
    # the first request resets; its 100 bytes are buffered, so only finish()'s flush sends them
    probe = {"attrs": {"wbufsize": 8192},
             "handle": {"first": ["readline", ["wait_release", "reset"], "readable", ["write", "x" * 100]],
                        "rest": ["readline", ["write", "served\n"]]},
             "finish": {"first": [["base", {"after": ["wfile_closed"]}]]}}
    with _server(impl, probe) as server:
        with clients.connect(server.address) as sock:
            clients.sendall(sock, b"go\n")
            try:
                _wait_step(server, "readline", "the handler to read the request")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                sock.close()  # RST
                instrument.release(server.log, "reset")
        following = clients.roundtrip(server.address, payload=b"next\n")
    events = server.events()
    finished = [e for e in events if e.get("kind") == "call_end" and e.get("at") == "finish" and e["request"] == 1]
    finish = (finished[0].get("exc_type") or "returned") if finished else None
    closed = fact(events, "wfile_closed", request=1)
    errors = _errors(events)
    observe("reset_arrived", _value(events, "readable"))
    observe("finish", finish)
    observe("wfile_closed_after_finish", closed)
    observe("handle_error", errors)
    observe("next_client", following)
    # CPython: the flush error is swallowed, then wfile.close() flushes the
    # still-buffered bytes again and raises (EPIPE); that goes to handle_error.
    verify(closed is True, "wfile after finish() despite the failed flush", "closed", closed)
    non_os = [e["type"] for e in errors if not e.get("os_error")]
    broken = servers.class_finding(impl, "TCPServer", prerequisites.error_reporting)  # coll-handler: PIPELINE-015's
    if broken is not None and non_os:
        raise broken
    verify(not non_os, "exceptions reported to handle_error", "only OSError subclasses", errors)
    verify_equal("reply to the next client", b"served\n", following)


@check("HANDLER-012", REQUIRED,
       clause="rbufsize = 0 gives an unbuffered rfile that still supports readline and read "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L804-L815]")
def test_unbuffered_rfile_reads(impl, observe):
    """With rbufsize=0, rfile.readline() and read() return the client's data."""
    probe = {"attrs": {"rbufsize": 0}, "handle": ["readline", "readline", ["write_reads", "|"]]}
    with _server(impl, probe) as server:
        reply = clients.roundtrip(server.address, payload=b"hello\nworld\n")
    lines = [as_bytes(v) for v in step_values(server.events(), "readline")]
    observe("lines", lines)
    verify_equal("rfile.readline() twice", [b"hello\n", b"world\n"], lines)
    verify_equal("reply", b"hello\n|world\n", reply)


@check("HANDLER-013", REQUIRED,
       clause="DatagramRequestHandler: request is (data, socket); rfile reads the datagram; wfile "
              "is a BytesIO whose content finish() sends back "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847-L858]")
def test_datagram_handler_request_and_files(impl, observe):
    """A datagram handler sees (data, server socket), reads data from rfile and replies via wfile."""
    probe = {"handle": [["fact", "datagram_request"], "read", ["fact", "wfile"], ["write", "re:"],
                        ["write_reads", ""]]}
    with _server(impl, probe, class_name="UDPServer", handler_base="DatagramRequestHandler") as server:
        try:
            reply = clients.roundtrip(server.address, payload=b"datagram", dgram=True)
        except HarnessTimeout:
            reply = None
    events = server.events()
    seen = fact(events, "datagram_request") or {}
    wfile = fact(events, "wfile") or {}
    observe("handler_saw", {"request": seen, "rfile": _value(events, "read"), "wfile_type": wfile.get("type")})
    verify(seen.get("is_tuple"), "request", "a (data, socket) tuple", seen.get("is_tuple"))
    verify_equal("request[0]", b"datagram", as_bytes(seen.get("data")))
    if not seen.get("socket_is_server_socket"):  # compared with self.server.socket: PIPELINE-014's server
        broken = servers.class_finding(impl, "UDPServer",
                                       lambda cls: prerequisites.handler_arguments(cls, "handler_gets_server"))
        if broken is not None:
            raise broken
    verify(seen.get("socket_is_server_socket"), "request[1]", "the server's socket", False)
    verify_equal("rfile.read()", b"datagram", as_bytes(_value(events, "read")))
    verify(wfile.get("bytesio"), "wfile", "an io.BytesIO", wfile.get("type"))
    verify_equal("reply", b"re:datagram", reply)


@check("HANDLER-014", REQUIRED,
       clause="DatagramRequestHandler.finish always sends wfile's content, even when empty "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847-L858]")
@pytest.mark.parametrize("written", [b"", b"answer"], ids=["nothing written", "reply written"])
def test_datagram_finish_sends_wfile(impl, observe, written):
    """A DatagramRequestHandler built directly sends exactly what was written, b'' included."""
    with clients.dgram_client("inet") as client:
        ran = run_datagram_handler(impl, {"handle": [["write", written.decode("latin-1")]]}, b"request",
                                   client.getsockname())
        try:
            data, sender = clients.recvfrom(client)
        except HarnessTimeout:
            data, sender = None, None
    observe("received", data)
    if ran["error"] is not None:  # the handler's own constructor raised: it propagates, as in-process
        raise RuntimeError(f"{impl.name}'s DatagramRequestHandler(request, client_address, None) raised: "
                           f"{ran['error']['exception']['exc']}")
    verify_equal("datagram received by the client", written, data)
    verify_equal("sender (the request's socket)", as_address(ran["socket_name"]), sender)


@check("HANDLER-015", REQUIRED,
       clause="finish_request calls RequestHandlerClass(request, client_address, server): any "
              "callable is accepted "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L360-L362]")
def test_any_callable_handler(impl, observe):
    """A plain function works as RequestHandlerClass."""
    try:
        with _server(impl, {"function": True, "handle": [["recv", 64], ["sendall", "called"]]}) as server:
            reply = clients.roundtrip(server.address, payload=b"x")
    except ConstructionError as exc:  # an implementation that insists on a class
        observe("construction", str(exc))
        verify(False, "server construction with a function as handler", "accepted", str(exc))
    calls = [e["args"] for e in server.events() if e.get("kind") == "function"]
    observe("reply", reply)
    verify_equal("reply from the function", b"called", reply)
    verify(len(calls) == 1 and calls[0][2].get("ref") == server.ref, "function arguments",
           "(request, client_address, server)", calls)


@check("HANDLER-016", REQUIRED,
       clause="StreamRequestHandler.finish() flushes and closes wfile only if it is still open: "
              "handle() may close self.wfile itself "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
@pytest.mark.parametrize("wbufsize", [0, 8192], ids=["wbufsize=0", "wbufsize=8192"])
def test_handle_may_close_wfile(impl, observe, wbufsize):
    """A handler that closes wfile itself: the client gets what was written, handle_error is not called."""
    probe = {"attrs": {"wbufsize": wbufsize},
             "handle": ["readline", ["write", "hi"], "close_wfile", ["fact", "wfile_closed"]]}
    with _server(impl, probe) as server:
        reply = clients.roundtrip(server.address, payload=b"go\n")
        following = clients.roundtrip(server.address, payload=b"again\n")
    events = server.events()
    errors = _errors(events)
    observe("reply", reply)
    observe("handle_error", errors)
    verify_equal("wfile.closed after close() in handle()", True, fact(events, "wfile_closed"))
    verify_equal("bytes received by the client", b"hi", reply)
    verify_equal("exceptions reported to handle_error", [], [e["type"] for e in errors])
    verify_equal("reply to the next client", b"hi", following)


@check("HANDLER-017", REQUIRED,
       clause="with wbufsize == 0 wfile is a writable binary file: writable() is true and "
              "io.TextIOWrapper can write through it "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L828-L845]")
def test_unbuffered_wfile_is_writable(impl, observe):
    """The default wfile says it is writable, and text written through io.TextIOWrapper reaches the client."""
    with _server(impl, {"handle": [["fact", "wfile"], ["textio", "txt"]]}) as server:
        reply = clients.roundtrip(server.address, payload=b"")
    events = server.events()
    writable = (fact(events, "wfile") or {}).get("writable")
    errors = _errors(events)
    observe("writable", writable)
    observe("reply", reply)
    observe("handle_error", errors)
    verify_equal("wfile.writable()", True, writable)
    verify_equal("exceptions reported to handle_error", [], [e["type"] for e in errors])
    verify_equal("text received through io.TextIOWrapper(wfile)", b"txt", reply)


@check("HANDLER-018", REQUIRED,
       clause="wbufsize is makefile()'s buffering: -1 (negative) means a buffer of the default "
              "size, so writes reach the client only when finish() flushes "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L812-L815, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
def test_negative_wbufsize_buffers(impl, observe):
    """With wbufsize = -1 a small write reaches the client only after the handler finishes."""
    _check_buffered_until_finish(impl, observe, -1)
