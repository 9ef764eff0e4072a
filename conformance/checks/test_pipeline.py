"""PIPELINE-*: what one request goes through on a synchronous server.

``handle_request()`` (and each iteration of ``serve_forever``) takes a
request through ``get_request -> verify_request -> process_request ->
finish_request (the handler) -> shutdown_request -> close_request``, with
``handle_error`` for exceptions.  Each check describes its server as a spec
(:mod:`harness.serving.spec_server`): the implementation's ``TCPServer``
whose hooks *observe* (each call is recorded with its arguments, then the
implementation's own method runs, so the observed order is the
implementation's; ``handle_error`` records ``sys.exc_info()`` instead of
printing) and a *probe* handler that records the request, client address
and server it got, then replies or raises.  Objects are compared by ``ref``
(their identity in the implementation's process), so the same check runs
in-process and through the subject agent.

Every client connects *before* ``handle_request()`` runs: the connection
completes in the listen backlog, so ``handle_request()`` finds it ready and
cannot block; it still runs bounded.  Replies and EOF are read with a
deadline and judged by ``verify`` (a missing EOF is a FAIL, not a TIMEOUT).
"""

from __future__ import annotations

import re
import socket

import pytest

from conformance.api import REQUIRED, VERSION, check, verify, verify_equal
from conformance.tools.roundtrip import read_to_eof
from harness.core import prerequisites, timeouts
from harness.serving import servers
from harness.serving.spec_server import (
    ConstructionError,
    as_address,
    as_bytes,
    count,
    hook_calls,
    order,
    spec_server,
    steps,
)

PIPELINE_HOOKS = ("get_request", "verify_request", "process_request", "finish_request",
                  "shutdown_request", "close_request")
#: the probe handler records the request, client address and server it got
RECORDS = [["fact", "attributes"]]


def _raises(exc_type: str, message: str) -> dict:
    return {"handle": RECORDS + [["raise", {"type": exc_type, "message": message}]]}


def _server(impl, probe, hooks=PIPELINE_HOOKS, quiet_errors=True, class_name="TCPServer", **actions):
    """A TCPServer spec on loopback whose ``hooks`` observe; handle_error records instead of printing."""
    spec_hooks = {hook: "observe" for hook in hooks}
    if quiet_errors:
        spec_hooks["handle_error"] = "observe_quiet"
    spec_hooks.update(actions)
    return spec_server(impl, class_name, probe=probe, hooks=spec_hooks, handler_base="BaseRequestHandler")


def _client(server):
    return socket.create_connection(server.address, timeout=timeouts.short())


def _handler_saw(events, index=0):
    """What the ``index``-th handler recorded: request, client_address, server (described)."""
    found = [e.get("value") for e in steps(events, "fact", at="handle")]
    return found[index] if len(found) > index else None


def _raised(events):
    """The exception the probe handler raised (its step event), or None."""
    return next((e for e in steps(events, "raise") if e.get("exc_type")), None)


def _summary(call):
    return f"{call.exc_type}: {call.exc_message}" if call.error else None


@check("PIPELINE-001", REQUIRED, clause="handle_request() runs get_request, verify_request, "
                                        "process_request (finish_request, shutdown_request, "
                                        "close_request) in that order "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L326, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L520]")
def test_pipeline_order(impl, observe):
    """The hooks run in the documented order around the handler; handle_request() returns None."""
    with _server(impl, {"handle": RECORDS}) as server:
        with _client(server):
            result = server.handle_request()
    found = order(server.events(), *PIPELINE_HOOKS)
    observe("order", found)
    observe("handle_request_returned", repr(result.value))
    verify_equal("pipeline order", ["get_request", "verify_request", "process_request", "finish_request", "handler",
                                    "shutdown_request", "close_request"], found)
    verify(result.value is None and result.error is None, "handle_request() return value after a request", None,
           result.error or repr(result.value))


@check("PIPELINE-002", REQUIRED, clause="a TCP request gets shutdown(SHUT_WR) and is closed after "
                                        "the handler, so the client reads b'' "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L326, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L520]")
def test_request_half_closed_then_closed(impl, observe):
    """The client reads EOF even while a dup of the request socket lives: SHUT_WR was sent."""
    # the dup keeps the connection open past close(), until the server is torn down
    with _server(impl, {"handle": RECORDS + ["dup", ["sendall", "reply"]]}) as server:
        with _client(server) as client:
            server.handle_request()
            # a plain server's handle_request() returns after its handler (CONCURRENCY-001's)
            waited = any(e.get("kind") == "call_end" and e.get("at") == "finish" for e in server.events())
            reply = read_to_eof(client, timeouts.absence())
        seen = _handler_saw(server.events())
        fileno = server.ref_call(seen["request"], "fileno") if seen else None
    observe("reply", reply)
    observe("request_fileno_after", fileno)
    if not waited and (reply["data"] != b"reply" or not reply["eof"] or fileno != -1):  # coll-handler
        prerequisites.premise("plain_handler_in_loop", False, "handle_request() returned before its handler's "
                                                              "finish() did")
    verify_equal("data the client read", b"reply", reply["data"])
    verify(reply["eof"], "EOF at the client while a duplicate of the request socket is open",
           "EOF (SHUT_WR sent)", reply["error"])
    verify_equal("request socket fileno() after handle_request()", -1, fileno)


@check("PIPELINE-003", REQUIRED, clause="a false verify_request() means no handler, "
                                        "shutdown_request() exactly once, and the client reads "
                                        "b'' [bpo-26309, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L326]")
def test_verify_request_false(impl, observe):
    """A rejected request is shut down once and never reaches the handler."""
    with _server(impl, {"handle": RECORDS}, verify_request="observe_deny") as server:
        with _client(server) as client:
            server.handle_request()
            reply = read_to_eof(client, timeouts.absence())
    events = server.events()
    observe("calls", order(events, *PIPELINE_HOOKS, "handle_error"))
    observe("reply", reply)
    verify_equal("handler instantiations", 0, count(events, "handler"))
    verify_equal("process_request() calls", 0, count(events, "process_request"))
    verify_equal("shutdown_request() calls", 1, count(events, "shutdown_request"))
    verify(reply["eof"] and reply["data"] == b"", "client read", "b'' (EOF)", reply)


@check("PIPELINE-004", REQUIRED, clause="an OSError from get_request() is swallowed: "
                                        "handle_request() returns None; neither handle_error() "
                                        "nor the handler runs "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L312-L315]")
def test_get_request_oserror_swallowed(impl, observe):
    """A failing accept drops that request silently and the server serves the next one."""
    # get_request accepts, closes the connection and raises OSError(ECONNABORTED) the first time
    with _server(impl, {"handle": RECORDS}, hooks=("verify_request",), get_request="fail_once") as server:
        with _client(server):
            # serve-dead: a second get_request() in this call decides at once: it retried instead
            # of returning (with no client left, that retry would block out the whole budget)
            result = server.handle_request(until={"hook": "get_request", "calls": 2})
        first = order(server.events(), "get_request", "verify_request", "handle_error")
        if result.returned:
            with _client(server):
                server.handle_request()
    observe("first_request_calls", first)
    observe("handle_request_returned", repr(result.value) if result.returned else "still running")
    verify(result.returned, "handle_request() after get_request() raised OSError", "returned",
           f"still running, get_request() called again: {first}")
    verify(result.value is None and result.error is None, "handle_request() after get_request() raised", None,
           _summary(result) or repr(result.value))
    verify_equal("calls after get_request() raised OSError", ["get_request"], first)
    verify_equal("handlers run (the second request only)", 1, count(server.events(), "handler"))


@check("PIPELINE-005", REQUIRED, clause="an Exception in the handler leads to "
                                        "handle_error(request, client_address), then "
                                        "shutdown_request(); handle_request() returns normally "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321]")
def test_handler_exception_to_handle_error(impl, observe):
    """A handler's Exception goes to handle_error, then the request is shut down."""
    with _server(impl, _raises("Boom", "pipeline-005")) as server:
        with _client(server) as client:
            result = server.handle_request()
            reply = read_to_eof(client, timeouts.absence())
    found = order(server.events(), "handle_error", "shutdown_request")
    observe("order", found)
    observe("propagated", _summary(result))
    verify(result.error is None, "exception out of handle_request()", "none", _summary(result))
    verify(result.value is None, "handle_request() return value", None, repr(result.value))
    verify_equal("order after a handler exception", ["handler", "handle_error", "shutdown_request"], found)
    verify(reply["eof"], "client after the failed request", "EOF", reply)


@check("PIPELINE-006", REQUIRED, clause="after a handler exception the server remains usable: the "
                                        "listening socket stays open and the next request is "
                                        "served "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321]")
def test_server_survives_handler_exception(impl, observe):
    """The request after a failing one is served normally."""
    probe = {"handle": {"first": RECORDS + [["raise", {"type": "Boom", "message": "pipeline-006"}]],
                        "rest": RECORDS + [["sendall", "second"]]}}
    with _server(impl, probe) as server:
        with _client(server):
            server.handle_request()
        fileno = server.invoke("fileno").value
        observe("listening_fileno_after_error", fileno)
        verify(isinstance(fileno, int) and fileno >= 0, "listening socket after a handler exception", "open", fileno)
        with _client(server) as client:
            server.handle_request()
            reply = read_to_eof(client, timeouts.short(), served=server)
    observe("second_reply", reply)
    verify_equal("reply to the request after the failed one", b"second", reply["data"])


@check("PIPELINE-007", REQUIRED, clause="handle_error() receives the failed request object and "
                                        "its client address "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321]")
def test_handle_error_arguments(impl, observe):
    """handle_error gets the same request object and client_address the handler got."""
    with _server(impl, _raises("Boom", "pipeline-007")) as server:
        with _client(server) as client:
            mine = client.getsockname()
            server.handle_request()
    events = server.events()
    seen = _handler_saw(events)
    reported = next(iter(hook_calls(events, "handle_error")), None)
    observe("handler_client_address", seen["client_address"] if seen else None)
    observe("handle_error_client_address", reported["args"][1] if reported else None)
    verify(seen is not None, "the handler", "called with request, client_address, server", seen)
    verify(reported is not None, "handle_error()", "called", None)
    verify(reported["args"][0].get("ref") == seen["request"].get("ref"), "request passed to handle_error()",
           "the handler's request object", reported["args"][0])
    verify_equal("client_address passed to handle_error()", as_address(seen["client_address"]),
                 as_address(reported["args"][1]))
    verify_equal("client_address vs the client's getsockname()", tuple(mine), as_address(seen["client_address"]))


@check("PIPELINE-008", VERSION, clause="SystemExit/KeyboardInterrupt in the handler: "
                                       "shutdown_request() runs, the exception propagates out of "
                                       "handle_request(), handle_error() is not called (3.6+) "
                                       "[bpo-23430, "
                                       "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L322-L324]")
@pytest.mark.parametrize("exc_type", ["SystemExit", "KeyboardInterrupt"], ids=["SystemExit", "KeyboardInterrupt"])
def test_base_exception_propagates_from_handle_request(impl, observe, exc_type):
    """A handler's BaseException shuts the request down and leaves handle_request()."""
    with _server(impl, _raises(exc_type, "pipeline-008")) as server:
        with _client(server) as client:
            result = server.handle_request()
            reply = read_to_eof(client, timeouts.absence())
    events = server.events()
    raised = _raised(events)
    observe("propagated", result.exc_type)
    observe("calls", order(events, "handle_error", "shutdown_request", handler="handler"))
    verify_equal("shutdown_request() calls", 1, count(events, "shutdown_request"))
    verify(reply["eof"], "client after the request", "EOF", reply)
    if impl.api_at_least(3, 6):
        observe.expected("propagated", exc_type)
        verify(result.error is not None and raised is not None
               and result.error["exception"]["ref"] == raised["exc_ref"],
               "exception out of handle_request()", f"the handler's {exc_type}", _summary(result))
        verify_equal("handle_error() calls", 0, count(events, "handle_error"))
    else:
        observe.expected("propagated", None)
        verify(result.error is None, "exception out of handle_request() (API < 3.6)", None, _summary(result))
        verify_equal("handle_error() calls (API < 3.6)", 1, count(events, "handle_error"))


@check("PIPELINE-009", VERSION, clause="a handler's SystemExit propagates out of serve_forever() "
                                       "after shutdown_request(); handle_error() is not called "
                                       "(3.6+) "
                                       "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L322-L324]")
def test_base_exception_propagates_from_serve_forever(impl, observe):
    """serve_forever() ends with the handler's SystemExit."""
    with spec_server(impl, "TCPServer", probe=_raises("SystemExit", "pipeline-009"), serve=True, loop_may_end=True,
                     handler_base="BaseRequestHandler",
                     hooks={"shutdown_request": "observe", "handle_error": "observe_quiet"}) as server:
        with _client(server) as client:
            loop = server.join(timeouts.short())
            reply = read_to_eof(client, timeouts.absence())
    events = server.events()
    raised = _raised(events)
    error = loop["serve_error"]
    observe("serve_forever_ended", loop["ended"])
    observe("serve_forever_raised", error["exception"]["exc_type"] if error else None)
    observe("calls", order(events, "handle_error", "shutdown_request"))
    verify_equal("shutdown_request() calls", 1, count(events, "shutdown_request"))
    verify(reply["eof"], "client after the request", "EOF", reply)
    if impl.api_at_least(3, 6):
        verify(loop["ended"] and error is not None and raised is not None
               and error["exception"]["ref"] == raised["exc_ref"], "serve_forever() after the handler's SystemExit",
               "ended with that SystemExit", error if loop["ended"] else "still running")
        verify_equal("handle_error() calls", 0, count(events, "handle_error"))
    else:
        verify(not loop["ended"], "serve_forever() after a handler SystemExit (API < 3.6)", "still running",
               loop["ended"])
        verify_equal("handle_error() calls (API < 3.6)", 1, count(events, "handle_error"))


@check("PIPELINE-010", VERSION, clause="the default handle_error() prints '-'*40, 'Exception "
                                       "occurred during processing of request from <addr>' "
                                       "('happened' before 3.9), the traceback and '-'*40 to "
                                       "stderr, nothing to stdout "
                                       "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L372-L383]")
def test_default_handle_error_output(impl, observe):
    """The default handle_error() writes its framed report to stderr only."""
    with _server(impl, _raises("Boom", "pipeline-010 marker"), quiet_errors=False,
                 handle_error="observe_capture") as server:
        with _client(server) as client:
            mine = client.getsockname()
            server.handle_request()
    ended = [e for e in server.events() if e.get("kind") == "hook_end" and e.get("hook") == "handle_error"]
    lines = ended[0].get("stderr", []) if ended else []  # the captured text, as lines
    text = "\n".join(lines)
    out = "\n".join(ended[0].get("stdout", [])) if ended else ""
    word = "occurred" if impl.api_at_least(3, 9) else "happened"
    header = f"Exception {word} during processing of request from {mine!r}"
    # canonical: compared across runs and versions (docs/versions.md), so no client port, no
    # file paths or line numbers of the traceback, only the frame and where the report went
    def canonical(line: str) -> str:  # the exception's module differs in-process and in the agent
        return re.sub(r"^[\w.]+\.(\w+): ", r"\1: ", line.replace(repr(mine), "<client address>"))

    observe("stderr_frame", [("<traceback>" if line.startswith("Traceback") else canonical(line))
                             for line in lines if not line.startswith(" ")])
    observe("stdout", [canonical(line) for line in out.splitlines()][:5])
    observe.expected("header", header.replace(repr(mine), "<client address>"))
    verify(bool(ended), "handle_error()", "called", None)
    verify_equal("stdout written by handle_error()", "", out)
    verify(len(lines) >= 4, "stderr lines", ">= 4", len(lines))
    verify_equal("first stderr line", "-" * 40, lines[0])
    if lines[1] != header:  # it prints the client_address it was given: get_request()'s (coll-handler)
        broken = servers.class_finding(impl, "TCPServer",
                                       lambda cls: prerequisites.handler_arguments(cls, "client_address_is_peer"))
        if broken is not None:
            raise broken
    verify_equal("second stderr line", header, lines[1])
    verify("Traceback (most recent call last):" in text and "pipeline-010 marker" in text,
           "stderr", "the handler's traceback", text[-300:])
    verify_equal("last stderr line", "-" * 40, lines[-1])


@check("PIPELINE-011", REQUIRED, clause="finish_request() calls RequestHandlerClass(request, "
                                        "client_address, server); any callable is accepted "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L360-L362]")
def test_handler_may_be_any_callable(impl, observe):
    """A plain function works as RequestHandlerClass and gets (request, client_address, server)."""
    try:
        with _server(impl, {"function": True, "handle": [["sendall", "from a function"]]}, hooks=()) as server:
            with _client(server) as client:
                mine = client.getsockname()
                server.handle_request()
                reply = read_to_eof(client, timeouts.short(), served=server)
    except ConstructionError as exc:  # only construction raises it: the function was refused, this clause's verdict
        verify(False, "server construction with a function as RequestHandlerClass", "accepted", str(exc))
    events = server.events()
    calls = [e["args"] for e in events if e.get("kind") == "function"]
    observe("calls", len(calls))
    observe("reply", reply)
    observe("handle_error", count(events, "handle_error"))
    verify_equal("calls of the function handler", 1, len(calls))
    request, client_address, passed_server = calls[0]
    verify(isinstance(request, dict) and request.get("socket"), "request argument", "a socket", request)
    verify_equal("client_address argument", tuple(mine), as_address(client_address))
    verify(isinstance(passed_server, dict) and passed_server.get("ref") == server.ref, "server argument",
           "the server", passed_server)
    verify_equal("reply written by the function", b"from a function", reply["data"])


@check("PIPELINE-012", REQUIRED, clause="BaseServer.process_request(): calls finish_request(), "
                                        "then shutdown_request() "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L343-L350]")
def test_process_request_default(impl, observe):
    """process_request() on an accepted request runs the handler, then shuts the request down."""
    hooks = ("finish_request", "shutdown_request", "close_request")
    with _server(impl, {"handle": RECORDS}, hooks=hooks) as server:
        with _client(server) as client:
            request, client_address = server.invoke("get_request").value
            try:
                server.invoke("process_request", {"ref": request["ref"]}, client_address)
            finally:
                server.ref_call(request, "close")
            reply = read_to_eof(client, timeouts.absence())
    found = order(server.events(), *hooks)
    observe("order", found)
    verify_equal("calls made by process_request()", ["finish_request", "handler", "shutdown_request", "close_request"],
                 found)
    verify(reply["eof"], "client after process_request()", "EOF", reply)


@check("PIPELINE-013", REQUIRED, clause="get_request(): TCP returns (accepted socket, client "
                                        "address); UDP returns ((data, server socket), client "
                                        "address) "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L500-L506, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
@pytest.mark.parametrize("kind", [pytest.param("TCPServer", id="tcp"), pytest.param("UDPServer", id="udp")])
def test_get_request_shape(impl, observe, kind):
    """get_request() returns the request and the client's own address."""
    with spec_server(impl, kind, handler_base="BaseRequestHandler") as server:
        if kind == "TCPServer":
            with _client(server) as client:
                mine = client.getsockname()
                request, address = server.invoke("get_request").value
                server.ref_call(request, "close")
            observe("address", address)
            verify_equal("client address from get_request()", tuple(mine), as_address(address))
            verify_equal("getpeername() of the request socket", tuple(mine), as_address(request.get("peer")))
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.bind(("127.0.0.1", 0))
                mine = client.getsockname()
                client.sendto(b"datagram", server.address)
                request, address = server.invoke("get_request").value
            observe("address", address)
            observe("request", request)
            verify_equal("client address from get_request()", tuple(mine), as_address(address))
            verify(isinstance(request, list) and len(request) == 2, "request", "(data, socket)", request)
            verify_equal("request[0] (the datagram)", b"datagram", as_bytes(request[0]))
            verify(isinstance(request[1], dict) and request[1].get("is_server_socket"), "request[1]",
                   "the server's socket", request[1])


@check("PIPELINE-014", REQUIRED, clause="the handler gets request, client_address and server: the "
                                        "server instance itself and the client's address "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
def test_handler_attributes(impl, observe):
    """The handler instance sees the accepted socket, the client's address and the server."""
    with spec_server(impl, "TCPServer", probe={"handle": RECORDS + [["fact", "peer"]]},
                     handler_base="BaseRequestHandler") as server:
        with _client(server) as client:
            mine = client.getsockname()
            server.handle_request()
    events = server.events()
    seen = _handler_saw(events) or {}
    peer = _handler_saw(events, 1)
    observe("client_address", seen.get("client_address"))
    verify(isinstance(seen.get("server"), dict) and seen["server"].get("ref") == server.ref, "handler.server",
           "the server instance", seen.get("server"))
    verify_equal("handler.client_address", tuple(mine), as_address(seen.get("client_address")))
    verify_equal("handler.request.getpeername()", tuple(mine), as_address(peer))


@check("PIPELINE-015", REQUIRED, clause="handle_error() runs while the exception is being "
                                        "handled, so sys.exc_info() (and traceback.print_exc()) "
                                        "see the handler's exception "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L316-L321]")
def test_handle_error_sees_exc_info(impl, observe):
    """Inside handle_error(), sys.exc_info() is the handler's exception."""
    with _server(impl, _raises("Boom", "pipeline-015")) as server:
        with _client(server):
            server.handle_request()
    events = server.events()
    reported = next(iter(hook_calls(events, "handle_error")), None)
    raised = _raised(events)
    verify(reported is not None, "handle_error()", "called", None)
    exc_info = reported["exc_info"]
    observe("exc_info_type", exc_info["type"])
    verify(raised is not None and exc_info["ref"] == raised["exc_ref"], "sys.exc_info() in handle_error()",
           "the handler's exception", exc_info)
    verify(exc_info["traceback"], "traceback in handle_error()", "present", exc_info["traceback"])


@check("PIPELINE-016", REQUIRED, clause="verify_request(request, client_address) gets the request "
                                        "and address that the handler then receives "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L326, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L520]")
def test_verify_request_arguments(impl, observe):
    """verify_request() and the handler see the same request object and client address."""
    with _server(impl, {"handle": RECORDS}, hooks=(), verify_request="observe_accept") as server:
        with _client(server) as client:
            mine = client.getsockname()
            server.handle_request()
    events = server.events()
    checked = next(iter(hook_calls(events, "verify_request")), None)
    handled = _handler_saw(events)
    observe("verify_request_client_address", checked["args"][1] if checked else None)
    verify(checked is not None and handled is not None, "verify_request() and handler", "both called",
           order(events, "verify_request"))
    verify(checked["args"][0].get("ref") == handled["request"].get("ref"), "request passed to verify_request()",
           "the handler's request object", checked["args"][0])
    verify_equal("client_address passed to verify_request()", tuple(mine), as_address(checked["args"][1]))
