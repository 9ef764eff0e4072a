"""BIND-*: constructing a server, binding and activating its socket, closing it.

The constructor of ``TCPServer`` (and so of every socket server) creates the
socket, then with ``bind_and_activate`` calls ``server_bind()`` and
``server_activate()``; a failure in either closes the server before the
exception propagates.  These checks observe that sequence by overriding the
hooks in subclasses, read the socket options the class attributes promise
with ``getsockopt``, and spy on ``listen`` by swapping ``server.socket`` for
a recording proxy between a manual ``server_bind()`` and
``server_activate()`` (a ``socket.socket`` has ``__slots__``, so its methods
cannot be patched on the instance).

Rebinding a port the kit was given for port 0 is the point of the reuse
checks; every other address is loopback with port 0.  The OS-dependent parts
(TIME_WAIT rebinding, the listen backlog) are PLATFORM checks that record the
OS's answer and fail only on what every OS must agree on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket

import pytest

from conformance.api import PLATFORM, REQUIRED, VERSION, check, require_attr, verify, verify_equal
from conformance.tools.lab import lab
from conformance.tools.roundtrip import read_to_eof
from harness.core import prerequisites, timeouts
from harness.core.observations import summary
from harness.serving import servers

SERVER_KINDS = [pytest.param("TCPServer", id="tcp"), pytest.param("UDPServer", id="udp")]
#: A handler that records its request and does nothing (``respond``, agent.BEHAVIOURS).
SILENT = {"behaviour": "respond", "handler_base": "BaseRequestHandler", "options": {"reply": "none"}}
CONSTRUCTION_HOOKS = {"server_bind": "record", "server_activate": "record"}


def _replying(text):
    """A ``BaseRequestHandler`` that sends ``text`` without reading (then the server closes)."""
    return {"behaviour": "respond", "handler_base": "BaseRequestHandler",
            "options": {"read": "none", "reply": "fixed", "text": text}}


def _said(error):
    return error.summary() if error is not None else None


def _facts_of_new(impl, kind):
    """The facts of a fresh ``kind`` server (read before it is closed)."""
    with lab(impl) as made_lab:
        return made_lab.build(kind, **SILENT).built().facts()


def _hooks_called(made_lab):
    return [event["hook"] for event in made_lab.events(kind="hook")]


@check("BIND-001", REQUIRED, clause="with bind_and_activate=True, __init__ calls server_bind() "
                                    "then server_activate() "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_init_binds_then_activates(impl, observe, kind):
    """The constructor calls server_bind() before server_activate()."""
    with lab(impl) as made_lab:
        made = made_lab.build(kind, hooks=CONSTRUCTION_HOOKS, **SILENT)
        order = _hooks_called(made_lab)  # the order is judged first; a failure is reported after
        observe("order", order)
        verify_equal("hooks called by the constructor", ["server_bind", "server_activate"], order)
        verify(made.error is None, "constructor", "no exception", _said(made.error))
        observe("server_address", made.server.facts().server_address)


@check("BIND-002", REQUIRED, clause="with bind_and_activate=False the socket is created but not "
                                    "bound, and server_address keeps the constructor argument "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_no_bind_and_activate(impl, observe, kind):
    """bind_and_activate=False leaves the socket unbound and server_address unchanged."""
    address = ("127.0.0.1", 0)
    with lab(impl) as made_lab:
        server = made_lab.build(kind, hooks=CONSTRUCTION_HOOKS, bind_and_activate=False, **SILENT).built()
        facts = server.facts()
        bound = facts.sockname
        observe("hooks_called", _hooks_called(made_lab))
        observe("server_address", facts.server_address)
        observe("socket_name", bound)
        verify_equal("hooks called with bind_and_activate=False", [], _hooks_called(made_lab))
        verify_equal("server_address before server_bind()", address, tuple(facts.server_address))
        verify_equal("port of the unbound socket (getsockname)", 0, bound[1])
        verify(facts.fileno >= 0, "the socket", "created (fileno >= 0)", facts.fileno)


@check("BIND-003", REQUIRED, clause="with bind_and_activate=False, calling server_bind() and "
                                    "server_activate() later gives a working server "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
def test_manual_bind_and_activate(impl, observe):
    """A server built unbound works after explicit server_bind() and server_activate()."""
    with lab(impl) as made_lab:
        server = made_lab.build("TCPServer", bind_and_activate=False, **_replying("late")).built()
        server.invoke("server_bind").result()
        facts = server.facts()
        observe("server_address", facts.server_address)
        verify(facts.server_address[1] != 0, "server_address port after server_bind()", "non-zero",
               facts.server_address)
        verify_equal("server_address after server_bind()", tuple(facts.sockname), tuple(facts.server_address))
        server.invoke("server_activate").result()
        with socket.create_connection(facts.server_address, timeout=timeouts.short()) as client:
            server.invoke("handle_request").result()
            reply = read_to_eof(client, timeouts.short(), served=server)
        observe("reply", reply)
        verify_equal("reply from the late-activated server", b"late", reply["data"])


@check("BIND-004", REQUIRED, clause="server_bind() stores socket.getsockname() in server_address; "
                                    "port 0 becomes the real port "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L463-L474]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_port_zero_replaced(impl, observe, kind):
    """Port 0 is replaced by the bound port and server_address == socket.getsockname()."""
    facts = _facts_of_new(impl, kind)
    observe("server_address", facts.server_address)
    observe("getsockname", facts.sockname)
    verify(facts.server_address[1] != 0, "server_address port", "non-zero", facts.server_address)
    verify_equal("server_address vs socket.getsockname()", tuple(facts.sockname), tuple(facts.server_address))


def _activate_spied(server):
    """``server_bind()``, then ``server_activate()`` with ``listen`` recorded: (calls, error)."""
    server.invoke("server_bind").result()
    invoked = server.invoke("server_activate", spy_listen=True)
    return invoked.listen_calls, invoked.error


@check("BIND-005", REQUIRED, clause="TCPServer.server_activate() calls listen(request_queue_size) "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L476-L482]")
def test_tcp_listens_with_queue_size(impl, observe):
    """server_activate() listens with the (subclass's) request_queue_size."""
    with lab(impl) as made_lab:
        server = made_lab.build("TCPServer", attrs={"request_queue_size": 3}, bind_and_activate=False, **SILENT).built()
        calls, error = _activate_spied(server)
        observe("listen_calls", calls)
        verify(error is None, "server_activate()", "no exception", _said(error))
        verify_equal("listen() calls made by server_activate()", [(3,)], calls)
        accepting = server.facts(sockopts=["SO_ACCEPTCONN"]).sockopt("SO_ACCEPTCONN")
        if isinstance(accepting, dict):
            accepting = None  # not readable on this OS
        if hasattr(socket, "SO_ACCEPTCONN"):
            observe("SO_ACCEPTCONN", accepting)
            verify(accepting in (None,) or accepting != 0, "SO_ACCEPTCONN after server_activate()",
                   "non-zero", accepting)


@check("BIND-006", REQUIRED, clause="UDPServer.server_activate() does not listen "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L539-L541]")
def test_udp_does_not_listen(impl, observe):
    """UDPServer.server_activate() never calls listen()."""
    with lab(impl) as made_lab:
        server = made_lab.build("UDPServer", bind_and_activate=False, **SILENT).built()
        calls, error = _activate_spied(server)
        observe("listen_calls", calls)
        observe("error", _said(error))
        verify_equal("listen() calls made by UDPServer.server_activate()", [], calls)
        verify(error is None, "UDPServer.server_activate()", "no exception", _said(error))


def _option_with_and_without(impl, kind, attr, option):
    """``option`` on a plain ``kind`` server and on one with ``attr = True``."""
    values = []
    with lab(impl) as made_lab:
        for attrs in ({}, {attr: True}):
            server = made_lab.build(kind, attrs=attrs, **SILENT).built()
            values.append(server.facts(sockopts=[option]).sockopt(option))
    return values


@check("BIND-007", REQUIRED, clause="allow_reuse_address=True sets SO_REUSEADDR; the default "
                                    "leaves it 0 "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L469-L470]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_allow_reuse_address_sets_option(impl, observe, kind):
    """SO_REUSEADDR is set exactly when allow_reuse_address is true."""
    default_value, reuse_value = _option_with_and_without(impl, kind, "allow_reuse_address", "SO_REUSEADDR")
    observe("SO_REUSEADDR", {"default": default_value, "allow_reuse_address": reuse_value})
    verify_equal("SO_REUSEADDR with the default allow_reuse_address", 0, default_value)
    verify(reuse_value != 0, "SO_REUSEADDR with allow_reuse_address=True", "non-zero", reuse_value)


@check("BIND-008", REQUIRED, clause="with the defaults, a second server on the same live port "
                                    "fails with OSError (EADDRINUSE) "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L463-L474]")
def test_second_server_on_live_port(impl, observe):
    """A second TCPServer on a port that is listening raises EADDRINUSE."""
    with lab(impl) as made_lab:
        first = made_lab.build("TCPServer", **SILENT)
        if first.error is not None:
            first.error.raise_again()
        second = made_lab.build("TCPServer", address=made_lab.like(first.server), **SILENT)
        if second.server is not None:
            second.server.close()
        error = second.error and second.error.unless_os_error()
        observe("second_server", _said(error) if error else "bound")
        verify(error is not None, "second server on a live port", "OSError", "bound")
        verify_equal("errno of the second bind", errno.EADDRINUSE, error.errno)


def _rebind_after_time_wait(impl, reuse: bool):
    """Serve one request (the server closes first: TIME_WAIT on its side),
    close the server, bind a new one on the same port.  Returns the summary."""
    attrs = {"allow_reuse_address": reuse}
    with lab(impl) as made_lab:
        old = made_lab.build("TCPServer", attrs=attrs, **_replying("x"))
        if old.error is not None:
            old.error.raise_again()
        address = old.server.facts().server_address
        with socket.create_connection(address, timeout=timeouts.short()) as client:
            old.server.invoke("handle_request").result()
            read_to_eof(client, timeouts.short(), served=old.server)  # the server closed first
        old.server.close()
        new = made_lab.build("TCPServer", attrs=attrs, address={"host": address[0], "port": address[1]}, **SILENT)
        if new.error is not None:
            return new.error.unless_os_error().summary(), new.error
        new.server.close()
    return "rebound", None


@check("BIND-009", PLATFORM, topic="reuse_addr",
       clause="rebinding a port whose connections are in TIME_WAIT depends on the OS without "
              "SO_REUSEADDR; with allow_reuse_address on both servers it succeeds "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L469-L470, "
              "docs/platform-knowledge.md#reuse_addr]")
def test_rebind_time_wait(impl, observe):
    """Rebinding a port with TIME_WAIT connections: OS-dependent by default, allowed with reuse."""
    default_summary, default_error = _rebind_after_time_wait(impl, reuse=False)
    observe("default", default_summary)
    observe.summary(default_summary)
    verify(default_error is None or default_error.os_error, "default rebind failure",
           "an OSError or success", default_summary)
    reuse_summary, _ = _rebind_after_time_wait(impl, reuse=True)
    observe("allow_reuse_address", reuse_summary)
    verify_equal("rebind with allow_reuse_address=True on both servers", "rebound", reuse_summary)


@check("BIND-010", VERSION, requires=("reuse_port",),
       clause="allow_reuse_port=True sets SO_REUSEPORT (API 3.11+); earlier APIs ignore it "
              "[bpo-16594, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L471-L472]")
def test_allow_reuse_port(impl, observe):
    """SO_REUSEPORT follows allow_reuse_port from API 3.11 on and stays 0 before."""
    default_value, reuse_value = _option_with_and_without(impl, "TCPServer", "allow_reuse_port", "SO_REUSEPORT")
    observe("SO_REUSEPORT", {"default": default_value, "allow_reuse_port": reuse_value})
    verify_equal("SO_REUSEPORT with the default allow_reuse_port", 0, default_value)
    if impl.api_at_least(3, 11):
        observe.expected("allow_reuse_port", "non-zero")
        verify(reuse_value != 0, f"SO_REUSEPORT with allow_reuse_port=True at API {impl.api_version}",
               "non-zero", reuse_value)
    else:
        observe.expected("allow_reuse_port", 0)
        verify_equal(f"SO_REUSEPORT with allow_reuse_port=True at API {impl.api_version}", 0, reuse_value)


@check("BIND-011", REQUIRED, requires=("ipv6",),
       clause="a subclass with address_family=AF_INET6 binds ('::1', 0) and reports a 4-tuple "
              "[https://docs.python.org/3/library/socketserver.html#socketserver.BaseServer.address_family]")
def test_ipv6_subclass(impl, observe):
    """An AF_INET6 subclass binds ::1, reports a 4-tuple address and serves a client."""
    with lab(impl) as made_lab:
        made = made_lab.build("TCPServer", family="inet6", **_replying("v6"))
        if made.error is not None:
            observe("error", made.error.unless_os_error().text)
            verify(False, "binding ('::1', 0) with address_family=AF_INET6", "success", made.error.summary())
        address = made.server.facts().server_address
        observe("server_address", address)
        verify(len(address) == 4, "server_address", "a 4-tuple", address)
        verify(address[0] == "::1" and address[1] != 0,
               "server_address host and port", "('::1', non-zero port, ...)", address)
        with socket.create_connection(address[:2], timeout=timeouts.short()) as client:
            made.server.invoke("handle_request").result()
            reply = read_to_eof(client, timeouts.short(), served=made.server)
        responses = made_lab.responses()
        observe("client_address", responses[0]["client_address"] if responses else None)
        verify_equal("reply over IPv6", b"v6", reply["data"])


@check("BIND-012", REQUIRED, clause="an AF_INET server given an IPv6 literal raises "
                                    "(socket.gaierror); address_family is never guessed "
                                    "[bpo-20215, "
                                    "https://docs.python.org/3/library/socketserver.html#socketserver.BaseServer.address_family]")
def test_inet_server_rejects_ipv6_literal(impl, observe):
    """TCPServer(('::1', 0)) raises OSError instead of switching family."""
    with lab(impl) as made_lab:
        made = made_lab.build("TCPServer", address={"host": "::1", "port": 0}, **SILENT)
        if made.server is not None:
            observe("family", made.server.facts().socket["family"])
            made.server.close()
    error = made.error and made.error.unless_os_error()
    observe("error", _said(error))
    verify(error is not None, "TCPServer(('::1', 0))", "an OSError (gaierror)", "a bound server")


@check("BIND-013", REQUIRED, clause="TCPServer((host, -1)) raises OverflowError and closes its "
                                    "socket [bpo-22435, "
                                    "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
def test_failed_bind_leaks_no_socket(impl, observe):
    """A constructor whose bind fails closes the socket it created."""
    with lab(impl) as made_lab:
        made = made_lab.build("TCPServer", address={"host": "127.0.0.1", "port": -1},
                              hooks={"server_bind": "record"}, count_fds=True, **SILENT)
    error = made.error
    if error is not None and not error.is_a("OverflowError"):
        error.raise_again()
    new_fds = made.new_socket_fds if error is not None else None
    observe("error", _said(error))
    observe("new_socket_fds", new_fds)
    verify(error is not None and error.is_a("OverflowError"), "TCPServer(('127.0.0.1', -1))", "OverflowError",
           _said(error) if error is not None else None)
    verify(made.hook_sockets, "server_bind()", "called", made.hook_sockets)
    observe("socket_fileno_after", made.hook_sockets[0])
    verify_equal("fileno() of the socket after the failed constructor", -1, made.hook_sockets[0])
    verify(not new_fds, "socket descriptors left open", "none", new_fds)


@check("BIND-014", REQUIRED, clause="if server_bind() or server_activate() raises, __init__ calls "
                                    "server_close() and re-raises "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
@pytest.mark.parametrize("hook", ["server_bind", "server_activate"])
def test_failed_hook_closes_server(impl, observe, hook):
    """An exception from a constructor hook closes the server and propagates unchanged."""
    with lab(impl) as made_lab:
        made = made_lab.build("TCPServer", hooks={hook: "raise", "server_close": "record"}, **SILENT)
        closes = len(made_lab.events(kind="hook", hook="server_close"))
    error = made.error
    observe("error", _said(error))
    observe("server_close_calls", closes)
    verify(error is not None and error.injected, "exception from the constructor",
           "the hook's exception, unchanged", error.text if error is not None else None)
    verify_equal("server_close() calls by the failed constructor", 1, closes)
    verify_equal("fileno() of the socket after the failed constructor", -1, made.hook_sockets[-1])


@check("BIND-015", REQUIRED, clause="server_close() closes the socket (fileno() == -1) and may be "
                                    "called again "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L484-L490]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_server_close_idempotent(impl, observe, kind):
    """server_close() closes the socket; a second call raises nothing."""
    with lab(impl) as made_lab:
        server = made_lab.build(kind, **SILENT).built()
        server.close()
        fileno = server.facts().fileno
        observe("fileno_after_close", fileno)
        verify_equal("socket.fileno() after server_close()", -1, fileno)
        error = server.invoke("server_close").error
    observe("second_close", _said(error) if error else "ok")
    verify(error is None, "second server_close()", "no exception", _said(error))


@check("BIND-016", REQUIRED, clause="fileno() returns the listening socket's descriptor "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L492-L498]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_fileno_is_socket_fileno(impl, observe, kind):
    """server.fileno() == server.socket.fileno()."""
    facts = _facts_of_new(impl, kind)
    observe("fileno", facts.server_fileno)
    observe("socket.fileno", facts.fileno)
    verify_equal("server.fileno() vs server.socket.fileno()", facts.fileno, facts.server_fileno)


@check("BIND-017", REQUIRED, requires=("af_unix",),
       clause="UnixStreamServer/UnixDatagramServer.server_close() does not unlink the socket path "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L484-L490]")
@pytest.mark.parametrize("kind", [pytest.param("UnixStreamServer", id="stream"),
                                  pytest.param("UnixDatagramServer", id="dgram")])
def test_unix_server_close_keeps_path(ss, impl, observe, kind):
    """The AF_UNIX socket file survives server_close()."""
    require_attr(ss, kind)
    with lab(impl) as made_lab:
        path = os.path.join(made_lab.directory, "bind017")
        # a class that cannot be built: UNIX-001
        server = made_lab.build(kind, address={"path": "bind017"}, checked=True, **SILENT).built()
        existed = os.path.exists(path)
        server.close()
        left = os.path.exists(path)
        if left:
            os.unlink(path)
    observe("path_after_bind", existed)
    observe("path_after_close", left)
    verify(existed, "socket file after binding", "exists", existed)
    verify(left, "socket file after server_close()", "still exists (not unlinked)", left)


@check("BIND-018", PLATFORM, topic="backlog_overflow",
       clause="at least request_queue_size connections complete before accept(); what happens to "
              "the next ones depends on the OS "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L476-L482, "
              "docs/platform-knowledge.md#backlog_overflow]")
def test_listen_backlog(impl, observe):
    """Clients beyond the backlog are dropped or refused by the OS; the server recovers."""
    queue_size = 3
    limit = 8
    # handle_request never blocks past the budget
    with lab(impl) as made_lab:
        server = made_lab.build("TCPServer", attrs={"request_queue_size": queue_size, "timeout": timeouts.short()},
                                **SILENT).built()
        address = server.facts().server_address
        broken = prerequisites.unreachable(address)  # a forgotten port 0: BIND-004's, not the backlog's
        if broken is not None:
            raise broken
        connected, first_failure = [], None
        try:
            for _ in range(limit):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.settimeout(timeouts.absence())
                try:
                    sock.connect(address)
                except OSError as exc:
                    sock.close()
                    first_failure = exc
                    break
                connected.append(sock)
            observe("connected_before_accept", len(connected))
            if first_failure is None:
                outcome = f"all {limit} connected"
            elif isinstance(first_failure, socket.timeout):
                outcome = "TimeoutError"  # socket.timeout is its own class before 3.10
            else:
                outcome = summary(first_failure)
            observe("next_connect", outcome)
            observe.summary(outcome)
            ours = [sock.getsockname() for sock in connected]
            for _ in connected:  # until every connected client was served (slow-serve: one call
                # may serve several, SERVE-009's; each further call then waited out its timeout)
                served_now = [info["client_address"] for info in made_lab.responses()]
                if all(any(address == mine for address in served_now) for mine in ours):
                    break
                server.invoke("handle_request").result()
        finally:
            for sock in connected:
                sock.close()
        verify(len(connected) >= queue_size, "connections completed before accept()",
               f">= request_queue_size ({queue_size})", len(connected))
        # the late client is told apart by its client_address: get_request()'s (PIPELINE-013, coll-handler)
        broken = servers.class_finding(impl, "TCPServer",
                                       lambda cls: prerequisites.handler_arguments(cls, "client_address_is_peer"))
        if broken is not None:
            raise broken
        with socket.create_connection(address, timeout=timeouts.short()) as late:
            mine = late.getsockname()

            def served():
                return any(info["client_address"] == mine for info in made_lab.responses())

            for _ in range(3):
                server.invoke("handle_request").result()
                # a handler that handle_request() did not wait for (one in a thread of its own,
                # CONCURRENCY-001's) records a moment later: bounded, at once when it already did
                with contextlib.suppress(timeouts.HarnessTimeout):
                    timeouts.wait_until(served, timeouts.absence(), "the late client's handler")
                if served():
                    break
            was_served = served()
        observe("served_after_overflow", was_served)
        verify(was_served, "a client after the backlog drained", "served", was_served)
