"""PIPELINE-*: what one request goes through on a synchronous server.

``handle_request()`` (and each iteration of ``serve_forever``) takes a
request through ``get_request -> verify_request -> process_request ->
finish_request (the handler) -> shutdown_request -> close_request``, with
``handle_error`` for exceptions.  The checks override these hooks in a
subclass of the implementation's ``TCPServer`` that records each call and
then calls the implementation's own method, so the observed order is the
implementation's.

Every client connects *before* ``handle_request()`` runs: the connection
completes in the listen backlog, so ``handle_request()`` finds it ready and
cannot block; it still runs bounded (``run_handle_request``).  Replies and
EOF are read with a deadline and judged by ``verify`` (a missing EOF is a
FAIL, not a TIMEOUT).
"""

from __future__ import annotations

import contextlib
import errno
import io
import socket
import sys

import pytest

from conformance.api import REQUIRED, VERSION, check, verify, verify_equal
from conformance.tools.handlers import recording_class, recording_handler
from conformance.tools.recorder import Recorder
from conformance.tools.roundtrip import read_to_eof
from conformance.tools.running import LoopThread, owned
from harness.core import timeouts
from harness.core.observations import summary
from harness.serving.servers import call_bounded, run_handle_request

PIPELINE_HOOKS = ("get_request", "verify_request", "process_request", "finish_request",
                  "shutdown_request", "close_request")


class _Boom(Exception):
    """A handler's ordinary exception, raised on purpose."""


def _server(ss, recorder, handler, hooks=PIPELINE_HOOKS, quiet_errors=True, **attrs):
    """A recording TCPServer on loopback; handle_error records instead of printing."""
    cls = recording_class(ss.TCPServer, recorder, hooks)
    namespace = dict(attrs)
    if quiet_errors:
        def handle_error(self, request, client_address):
            recorder.add("handle_error", request=request, client_address=client_address,
                         exc_info=sys.exc_info())
        namespace["handle_error"] = handle_error
    if namespace:
        cls = type(cls.__name__, (cls,), namespace)
    return cls(("127.0.0.1", 0), handler)


def _client(server):
    return socket.create_connection(server.server_address, timeout=timeouts.short())


@check("PIPELINE-001", REQUIRED, clause="handle_request() runs get_request, verify_request, "
                                        "process_request (finish_request, shutdown_request, "
                                        "close_request) in that order "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L326, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L520]")
def test_pipeline_order(ss, observe):
    """The hooks run in the documented order around the handler; handle_request() returns None."""
    recorder = Recorder()
    with owned(_server(ss, recorder, recording_handler(ss, recorder))) as server:
        with _client(server):
            result = run_handle_request(server)
    order = recorder.names(*PIPELINE_HOOKS, "handler")
    observe("order", order)
    observe("handle_request_returned", repr(result))
    verify_equal("pipeline order", ["get_request", "verify_request", "process_request", "finish_request", "handler",
                         "shutdown_request", "close_request"], order)
    verify(result is None, "handle_request() return value after a request", None, repr(result))


@check("PIPELINE-002", REQUIRED, clause="a TCP request gets shutdown(SHUT_WR) and is closed after "
                                        "the handler, so the client reads b'' "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L326, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L520]")
def test_request_half_closed_then_closed(ss, observe):
    """The client reads EOF even while a dup of the request socket lives: SHUT_WR was sent."""
    recorder = Recorder()
    duplicates = []

    class Handler(ss.BaseRequestHandler):
        def handle(self):
            recorder.add("handler", request=self.request)
            duplicates.append(self.request.dup())  # keeps the connection open past close()
            self.request.sendall(b"reply")

    with owned(_server(ss, recorder, Handler)) as server:
        try:
            with _client(server) as client:
                run_handle_request(server)
                reply = read_to_eof(client, timeouts.absence())
        finally:
            for dup in duplicates:
                dup.close()
    request = recorder.first("handler")["request"]
    observe("reply", reply)
    observe("request_fileno_after", request.fileno())
    verify_equal("data the client read", b"reply", reply["data"])
    verify(reply["eof"], "EOF at the client while a duplicate of the request socket is open",
           "EOF (SHUT_WR sent)", reply["error"])
    verify_equal("request socket fileno() after handle_request()", -1, request.fileno())


@check("PIPELINE-003", REQUIRED, clause="a false verify_request() means no handler, "
                                        "shutdown_request() exactly once, and the client reads "
                                        "b'' [bpo-26309, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L326]")
def test_verify_request_false(ss, observe):
    """A rejected request is shut down once and never reaches the handler."""
    recorder = Recorder()

    def verify_request(self, request, client_address):
        recorder.add("verify_request")
        return False

    with owned(_server(ss, recorder, recording_handler(ss, recorder), verify_request=verify_request)) as server:
        with _client(server) as client:
            run_handle_request(server)
            reply = read_to_eof(client, timeouts.absence())
    observe("calls", recorder.names())
    observe("reply", reply)
    verify_equal("handler instantiations", 0, recorder.count("handler"))
    verify_equal("process_request() calls", 0, recorder.count("process_request"))
    verify_equal("shutdown_request() calls", 1, recorder.count("shutdown_request"))
    verify(reply["eof"] and reply["data"] == b"", "client read", "b'' (EOF)", reply)


@check("PIPELINE-004", REQUIRED, clause="an OSError from get_request() is swallowed: "
                                        "handle_request() returns None; neither handle_error() "
                                        "nor the handler runs "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L312-L315]")
def test_get_request_oserror_swallowed(ss, observe):
    """A failing accept drops that request silently and the server serves the next one."""
    recorder = Recorder()
    state = {"fail": True}

    def get_request(self):
        recorder.add("get_request")
        request, client_address = ss.TCPServer.get_request(self)
        if state.pop("fail", False):
            request.close()
            raise OSError(errno.ECONNABORTED, "injected accept failure")
        return request, client_address

    handler = recording_handler(ss, recorder)
    with owned(_server(ss, recorder, handler, hooks=("verify_request",), get_request=get_request)) as server:
        with _client(server):
            result = run_handle_request(server)
        first = recorder.names()
        with _client(server):
            run_handle_request(server)
    observe("first_request_calls", first)
    observe("handle_request_returned", repr(result))
    verify(result is None, "handle_request() after get_request() raised", None, repr(result))
    verify_equal("calls after get_request() raised OSError", ["get_request"], first)
    verify_equal("handlers run (the second request only)", 1, recorder.count("handler"))


@check("PIPELINE-005", REQUIRED, clause="an Exception in the handler leads to "
                                        "handle_error(request, client_address), then "
                                        "shutdown_request(); handle_request() returns normally "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321]")
def test_handler_exception_to_handle_error(ss, observe):
    """A handler's Exception goes to handle_error, then the request is shut down."""
    recorder = Recorder()
    handler = recording_handler(ss, recorder, "raises", exc=_Boom("pipeline-005"))
    error = None
    with owned(_server(ss, recorder, handler)) as server:
        with _client(server) as client:
            try:
                result = run_handle_request(server)
            except timeouts.HarnessTimeout:
                raise  # handle_request() hung: TIMEOUT, not an observation
            except Exception as exc:  # judged below
                error, result = exc, None
            reply = read_to_eof(client, timeouts.absence())
    order = recorder.names("handler", "handle_error", "shutdown_request")
    observe("order", order)
    observe("propagated", summary(error) if error else None)
    verify(error is None, "exception out of handle_request()", "none", summary(error) if error else None)
    verify(result is None, "handle_request() return value", None, repr(result))
    verify_equal("order after a handler exception", ["handler", "handle_error", "shutdown_request"], order)
    verify(reply["eof"], "client after the failed request", "EOF", reply)


@check("PIPELINE-006", REQUIRED, clause="after a handler exception the server remains usable: the "
                                        "listening socket stays open and the next request is "
                                        "served "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321]")
def test_server_survives_handler_exception(ss, observe):
    """The request after a failing one is served normally."""
    recorder = Recorder()
    state = {"raise": True}

    class Handler(ss.BaseRequestHandler):
        def handle(self):
            recorder.add("handler")
            if state.pop("raise", False):
                raise _Boom("pipeline-006")
            self.request.sendall(b"second")

    with owned(_server(ss, recorder, Handler)) as server:
        with _client(server):
            run_handle_request(server)
        fileno = server.socket.fileno()
        observe("listening_fileno_after_error", fileno)
        verify(fileno >= 0, "listening socket after a handler exception", "open", fileno)
        with _client(server) as client:
            run_handle_request(server)
            reply = read_to_eof(client, timeouts.short())
    observe("second_reply", reply)
    verify_equal("reply to the request after the failed one", b"second", reply["data"])


@check("PIPELINE-007", REQUIRED, clause="handle_error() receives the failed request object and "
                                        "its client address "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321]")
def test_handle_error_arguments(ss, observe):
    """handle_error gets the same request object and client_address the handler got."""
    recorder = Recorder()
    handler = recording_handler(ss, recorder, "raises", exc=_Boom("pipeline-007"))
    with owned(_server(ss, recorder, handler)) as server:
        with _client(server) as client:
            mine = client.getsockname()
            run_handle_request(server)
    seen = recorder.first("handler")
    reported = recorder.first("handle_error")
    observe("handler_client_address", seen["client_address"])
    observe("handle_error_client_address", reported["client_address"] if reported else None)
    verify(reported is not None, "handle_error()", "called", None)
    verify(reported["request"] is seen["request"], "request passed to handle_error()",
           "the handler's request object", repr(reported["request"]))
    verify_equal("client_address passed to handle_error()", seen["client_address"], reported["client_address"])
    verify_equal("client_address vs the client's getsockname()", tuple(mine), tuple(seen["client_address"]))


@check("PIPELINE-008", VERSION, clause="SystemExit/KeyboardInterrupt in the handler: "
                                       "shutdown_request() runs, the exception propagates out of "
                                       "handle_request(), handle_error() is not called (3.6+) "
                                       "[bpo-23430, "
                                       "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L322-L324]")
@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt], ids=["SystemExit", "KeyboardInterrupt"])
def test_base_exception_propagates_from_handle_request(ss, impl, observe, exc_type):
    """A handler's BaseException shuts the request down and leaves handle_request()."""
    recorder = Recorder()
    marker = exc_type("pipeline-008")
    handler = recording_handler(ss, recorder, "raises", exc=marker)
    error = None
    with owned(_server(ss, recorder, handler)) as server:
        with _client(server) as client:
            try:
                run_handle_request(server)
            except BaseException as exc:  # SystemExit/KeyboardInterrupt are the observation
                if isinstance(exc, timeouts.HarnessTimeout):
                    raise
                error = exc
            reply = read_to_eof(client, timeouts.absence())
    observe("propagated", type(error).__name__ if error is not None else None)
    observe("calls", recorder.names("handle_error", "shutdown_request"))
    verify_equal("shutdown_request() calls", 1, recorder.count("shutdown_request"))
    verify(reply["eof"], "client after the request", "EOF", reply)
    if impl.api_at_least(3, 6):
        observe.expected("propagated", exc_type.__name__)
        verify(error is marker, "exception out of handle_request()", f"the handler's {exc_type.__name__}",
               repr(error))
        verify_equal("handle_error() calls", 0, recorder.count("handle_error"))
    else:
        observe.expected("propagated", None)
        verify(error is None, "exception out of handle_request() (API < 3.6)", None, repr(error))
        verify_equal("handle_error() calls (API < 3.6)", 1, recorder.count("handle_error"))


@check("PIPELINE-009", VERSION, clause="a handler's SystemExit propagates out of serve_forever() "
                                       "after shutdown_request(); handle_error() is not called "
                                       "(3.6+) "
                                       "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L322-L324]")
def test_base_exception_propagates_from_serve_forever(ss, impl, observe):
    """serve_forever() ends with the handler's SystemExit."""
    recorder = Recorder()
    marker = SystemExit("pipeline-009")
    handler = recording_handler(ss, recorder, "raises", exc=marker)
    with owned(_server(ss, recorder, handler, hooks=("shutdown_request",))) as server:
        with LoopThread(server, recorder=recorder) as loop:
            with _client(server) as client:
                ended = loop.returned_within(timeouts.short())
                reply = read_to_eof(client, timeouts.absence())
    observe("serve_forever_ended", ended)
    observe("serve_forever_raised", type(loop.error).__name__ if loop.error else None)
    observe("calls", recorder.names("handler", "handle_error", "shutdown_request"))
    verify_equal("shutdown_request() calls", 1, recorder.count("shutdown_request"))
    verify(reply["eof"], "client after the request", "EOF", reply)
    if impl.api_at_least(3, 6):
        verify(ended and loop.error is marker, "serve_forever() after the handler's SystemExit",
               "ended with that SystemExit", repr(loop.error) if ended else "still running")
        verify_equal("handle_error() calls", 0, recorder.count("handle_error"))
    else:
        verify(not ended, "serve_forever() after a handler SystemExit (API < 3.6)", "still running", ended)
        verify_equal("handle_error() calls (API < 3.6)", 1, recorder.count("handle_error"))


@check("PIPELINE-010", VERSION, clause="the default handle_error() prints '-'*40, 'Exception "
                                       "occurred during processing of request from <addr>' "
                                       "('happened' before 3.9), the traceback and '-'*40 to "
                                       "stderr, nothing to stdout "
                                       "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L372-L383]")
def test_default_handle_error_output(ss, impl, observe):
    """The default handle_error() writes its framed report to stderr only."""
    recorder = Recorder()
    handler = recording_handler(ss, recorder, "raises", exc=_Boom("pipeline-010 marker"))
    err, out = io.StringIO(), io.StringIO()
    with owned(_server(ss, recorder, handler, quiet_errors=False)) as server:
        with _client(server) as client:
            mine = client.getsockname()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                run_handle_request(server)
    text = err.getvalue()
    lines = text.splitlines()
    word = "occurred" if impl.api_at_least(3, 9) else "happened"
    header = f"Exception {word} during processing of request from {mine!r}"
    observe("stderr", text[:1500])
    observe("stdout", out.getvalue()[:500])
    observe.expected("header", header)
    verify_equal("stdout written by handle_error()", "", out.getvalue())
    verify(len(lines) >= 4, "stderr lines", ">= 4", len(lines))
    verify_equal("first stderr line", "-" * 40, lines[0])
    verify_equal("second stderr line", header, lines[1])
    verify("Traceback (most recent call last):" in text and "pipeline-010 marker" in text,
           "stderr", "the handler's traceback", text[-300:])
    verify_equal("last stderr line", "-" * 40, lines[-1])


@check("PIPELINE-011", REQUIRED, clause="finish_request() calls RequestHandlerClass(request, "
                                        "client_address, server); any callable is accepted "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L360-L362]")
def test_handler_may_be_any_callable(ss, observe):
    """A plain function works as RequestHandlerClass and gets (request, client_address, server)."""
    recorder = Recorder()
    calls = []

    def handler(sock, address, owner):  # positional use only: any parameter names work
        calls.append((sock, address, owner))
        sock.sendall(b"from a function")

    with owned(_server(ss, recorder, handler, hooks=())) as server:
        with _client(server) as client:
            mine = client.getsockname()
            run_handle_request(server)
            reply = read_to_eof(client, timeouts.short())
    observe("calls", len(calls))
    observe("reply", reply)
    observe("handle_error", recorder.count("handle_error"))
    verify_equal("calls of the function handler", 1, len(calls))
    request, client_address, passed_server = calls[0]
    verify(hasattr(request, "recv") and hasattr(request, "fileno"), "request argument", "a socket",
           repr(request))
    verify_equal("client_address argument", tuple(mine), tuple(client_address))
    verify(passed_server is server, "server argument", "the server", repr(passed_server))
    verify_equal("reply written by the function", b"from a function", reply["data"])


@check("PIPELINE-012", REQUIRED, clause="BaseServer.process_request(): calls finish_request(), "
                                        "then shutdown_request() "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L343-L350]")
def test_process_request_default(ss, observe):
    """process_request() on an accepted request runs the handler, then shuts the request down."""
    recorder = Recorder()
    hooks = ("finish_request", "shutdown_request", "close_request")
    with owned(_server(ss, recorder, recording_handler(ss, recorder), hooks=hooks)) as server:
        with _client(server) as client:
            request, client_address = call_bounded(server.get_request, what="server.get_request()")
            try:
                call_bounded(server.process_request, request, client_address, what="server.process_request()")
            finally:
                request.close()
            reply = read_to_eof(client, timeouts.absence())
    order = recorder.names("finish_request", "handler", "shutdown_request", "close_request")
    observe("order", order)
    verify_equal("calls made by process_request()", ["finish_request", "handler", "shutdown_request", "close_request"],
                 order)
    verify(reply["eof"], "client after process_request()", "EOF", reply)


@check("PIPELINE-013", REQUIRED, clause="get_request(): TCP returns (accepted socket, client "
                                        "address); UDP returns ((data, server socket), client "
                                        "address) "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L500-L506, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
@pytest.mark.parametrize("kind", [pytest.param("TCPServer", id="tcp"), pytest.param("UDPServer", id="udp")])
def test_get_request_shape(ss, observe, kind):
    """get_request() returns the request and the client's own address."""
    with owned(getattr(ss, kind)(("127.0.0.1", 0), ss.BaseRequestHandler)) as server:
        if kind == "TCPServer":
            with _client(server) as client:
                mine = client.getsockname()
                request, address = call_bounded(server.get_request, what="server.get_request()")
                with request:
                    peer = request.getpeername()
                observe("address", address)
                verify_equal("client address from get_request()", tuple(mine), tuple(address))
                verify_equal("getpeername() of the request socket", tuple(mine), tuple(peer))
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.bind(("127.0.0.1", 0))
                mine = client.getsockname()
                client.sendto(b"datagram", server.server_address)
                request, address = call_bounded(server.get_request, what="server.get_request()")
            observe("address", address)
            observe("request", [request[0], repr(request[1])])
            verify_equal("client address from get_request()", tuple(mine), tuple(address))
            verify_equal("request[0] (the datagram)", b"datagram", request[0])
            verify(request[1] is server.socket, "request[1]", "the server's socket", repr(request[1]))


@check("PIPELINE-014", REQUIRED, clause="the handler gets request, client_address and server: the "
                                        "server instance itself and the client's address "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
def test_handler_attributes(ss, observe):
    """The handler instance sees the accepted socket, the client's address and the server."""
    seen = {}

    class Handler(ss.BaseRequestHandler):
        def handle(self):
            seen["server"] = self.server
            seen["client_address"] = self.client_address
            seen["peer"] = self.request.getpeername()

    with owned(ss.TCPServer(("127.0.0.1", 0), Handler)) as server:
        with _client(server) as client:
            mine = client.getsockname()
            run_handle_request(server)
    observe("client_address", seen.get("client_address"))
    verify(seen.get("server") is server, "handler.server", "the server instance", repr(seen.get("server")))
    verify_equal("handler.client_address", tuple(mine), tuple(seen["client_address"]))
    verify_equal("handler.request.getpeername()", tuple(mine), tuple(seen["peer"]))


@check("PIPELINE-015", REQUIRED, clause="handle_error() runs while the exception is being "
                                        "handled, so sys.exc_info() (and traceback.print_exc()) "
                                        "see the handler's exception "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321]")
def test_handle_error_sees_exc_info(ss, observe):
    """Inside handle_error(), sys.exc_info() is the handler's exception."""
    recorder = Recorder()
    marker = _Boom("pipeline-015")
    with owned(_server(ss, recorder, recording_handler(ss, recorder, "raises", exc=marker))) as server:
        with _client(server):
            run_handle_request(server)
    reported = recorder.first("handle_error")
    verify(reported is not None, "handle_error()", "called", None)
    exc_type, exc_value, tb = reported["exc_info"]
    observe("exc_info_type", exc_type.__name__ if exc_type else None)
    verify(exc_value is marker, "sys.exc_info() in handle_error()", "the handler's exception", repr(exc_value))
    verify(tb is not None, "traceback in handle_error()", "present", tb)


@check("PIPELINE-016", REQUIRED, clause="verify_request(request, client_address) gets the request "
                                        "and address that the handler then receives "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L326, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L520]")
def test_verify_request_arguments(ss, observe):
    """verify_request() and the handler see the same request object and client address."""
    recorder = Recorder()

    def verify_request(self, request, client_address):
        recorder.add("verify_request", request=request, client_address=client_address)
        return True

    with owned(_server(ss, recorder, recording_handler(ss, recorder), hooks=(),
                       verify_request=verify_request)) as server:
        with _client(server) as client:
            mine = client.getsockname()
            run_handle_request(server)
    checked = recorder.first("verify_request")
    handled = recorder.first("handler")
    observe("verify_request_client_address", checked["client_address"] if checked else None)
    verify(checked is not None and handled is not None, "verify_request() and handler", "both called",
           recorder.names())
    verify(checked["request"] is handled["request"], "request passed to verify_request()",
           "the handler's request object", repr(checked["request"]))
    verify_equal("client_address passed to verify_request()", tuple(mine), tuple(checked["client_address"]))
