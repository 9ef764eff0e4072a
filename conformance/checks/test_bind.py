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

import errno
import os
import socket

import pytest

from conformance.api import PLATFORM, REQUIRED, VERSION, check, require_attr, verify, verify_equal
from conformance.tools.handlers import recording_class, recording_handler
from conformance.tools.recorder import Recorder
from conformance.tools.roundtrip import read_to_eof
from conformance.tools.running import owned
from harness.core import addresses, timeouts
from harness.core.observations import summary
from harness.serving.servers import build_server, call_bounded, open_fds, run_handle_request

SERVER_KINDS = [pytest.param("TCPServer", id="tcp"), pytest.param("UDPServer", id="udp")]


class _Injected(Exception):
    """Raised by a hook on purpose."""


class _ListenSpy:
    """Stands in for ``server.socket`` and records ``listen`` calls."""

    def __init__(self, sock, calls):
        self._sock = sock
        self._calls = calls

    def listen(self, *args):
        self._calls.append(args)
        return self._sock.listen(*args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _listen_calls(server):
    """Run ``server_activate()`` with the listen spy; (calls, error)."""
    calls = []
    real = server.socket
    server.socket = _ListenSpy(real, calls)
    error = None
    try:
        call_bounded(server.server_activate, budget=timeouts.short(), what="server.server_activate()")
    except Exception as exc:  # observed, not fatal: the check judges the calls
        error = exc
    finally:
        server.socket = real
    return calls, error


def _sockopt(sock, name):
    return sock.getsockopt(socket.SOL_SOCKET, getattr(socket, name))


def _socket_fds():
    fds = open_fds()
    if fds is None:
        return None
    return {fd for fd, target in fds.items() if "socket" in target or target == "?"}


@check("BIND-001", REQUIRED, clause="with bind_and_activate=True, __init__ calls server_bind() "
                                    "then server_activate() "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_init_binds_then_activates(ss, observe, kind):
    """The constructor calls server_bind() before server_activate()."""
    recorder = Recorder()
    cls = recording_class(getattr(ss, kind), recorder, ("server_bind", "server_activate"))
    error = None
    server = None
    try:
        server = cls(("127.0.0.1", 0), ss.BaseRequestHandler)
    except Exception as exc:  # the order is judged first; a failure is reported after
        error = exc
    order = recorder.names()
    observe("order", order)
    verify_equal("hooks called by the constructor", ["server_bind", "server_activate"], order)
    verify(error is None, "constructor", "no exception", summary(error) if error else None)
    with owned(server):
        observe("server_address", server.server_address)


@check("BIND-002", REQUIRED, clause="with bind_and_activate=False the socket is created but not "
                                    "bound, and server_address keeps the constructor argument "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_no_bind_and_activate(ss, observe, kind):
    """bind_and_activate=False leaves the socket unbound and server_address unchanged."""
    recorder = Recorder()
    cls = recording_class(getattr(ss, kind), recorder, ("server_bind", "server_activate"))
    address = ("127.0.0.1", 0)
    with owned(cls(address, ss.BaseRequestHandler, bind_and_activate=False)) as server:
        bound = server.socket.getsockname()
        observe("hooks_called", recorder.names())
        observe("server_address", server.server_address)
        observe("socket_name", bound)
        verify_equal("hooks called with bind_and_activate=False", [], recorder.names())
        verify_equal("server_address before server_bind()", address, tuple(server.server_address))
        verify_equal("port of the unbound socket (getsockname)", 0, bound[1])
        verify(server.socket.fileno() >= 0, "the socket", "created (fileno >= 0)", server.socket.fileno())


@check("BIND-003", REQUIRED, clause="with bind_and_activate=False, calling server_bind() and "
                                    "server_activate() later gives a working server "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
def test_manual_bind_and_activate(ss, observe):
    """A server built unbound works after explicit server_bind() and server_activate()."""
    recorder = Recorder()
    handler = recording_handler(ss, recorder, "replies", reply=b"late")
    with owned(ss.TCPServer(("127.0.0.1", 0), handler, bind_and_activate=False)) as server:
        server.server_bind()
        observe("server_address", server.server_address)
        verify(server.server_address[1] != 0, "server_address port after server_bind()", "non-zero",
               server.server_address)
        verify_equal("server_address after server_bind()", tuple(server.socket.getsockname()),
                     tuple(server.server_address))
        server.server_activate()
        with socket.create_connection(server.server_address, timeout=timeouts.short()) as client:
            run_handle_request(server)
            reply = read_to_eof(client, timeouts.short())
        observe("reply", reply)
        verify_equal("reply from the late-activated server", b"late", reply["data"])


@check("BIND-004", REQUIRED, clause="server_bind() stores socket.getsockname() in server_address; "
                                    "port 0 becomes the real port "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L463-L474]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_port_zero_replaced(ss, observe, kind):
    """Port 0 is replaced by the bound port and server_address == socket.getsockname()."""
    with owned(getattr(ss, kind)(("127.0.0.1", 0), ss.BaseRequestHandler)) as server:
        name = server.socket.getsockname()
        observe("server_address", server.server_address)
        observe("getsockname", name)
        verify(server.server_address[1] != 0, "server_address port", "non-zero", server.server_address)
        verify_equal("server_address vs socket.getsockname()", tuple(name), tuple(server.server_address))


@check("BIND-005", REQUIRED, clause="TCPServer.server_activate() calls listen(request_queue_size) "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L476-L482]")
def test_tcp_listens_with_queue_size(ss, observe):
    """server_activate() listens with the (subclass's) request_queue_size."""

    class Server(ss.TCPServer):
        request_queue_size = 3

    with owned(Server(("127.0.0.1", 0), ss.BaseRequestHandler, bind_and_activate=False)) as server:
        server.server_bind()
        calls, error = _listen_calls(server)
        observe("listen_calls", calls)
        verify(error is None, "server_activate()", "no exception", summary(error) if error else None)
        verify_equal("listen() calls made by server_activate()", [(3,)], calls)
        if hasattr(socket, "SO_ACCEPTCONN"):
            try:
                accepting = _sockopt(server.socket, "SO_ACCEPTCONN")
            except OSError:
                accepting = None  # not readable on this OS
            observe("SO_ACCEPTCONN", accepting)
            verify(accepting in (None,) or accepting != 0, "SO_ACCEPTCONN after server_activate()",
                   "non-zero", accepting)


@check("BIND-006", REQUIRED, clause="UDPServer.server_activate() does not listen "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L539-L541]")
def test_udp_does_not_listen(ss, observe):
    """UDPServer.server_activate() never calls listen()."""
    with owned(ss.UDPServer(("127.0.0.1", 0), ss.BaseRequestHandler, bind_and_activate=False)) as server:
        server.server_bind()
        calls, error = _listen_calls(server)
        observe("listen_calls", calls)
        observe("error", summary(error) if error else None)
        verify_equal("listen() calls made by UDPServer.server_activate()", [], calls)
        verify(error is None, "UDPServer.server_activate()", "no exception", summary(error) if error else None)


@check("BIND-007", REQUIRED, clause="allow_reuse_address=True sets SO_REUSEADDR; the default "
                                    "leaves it 0 "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L469-L470]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_allow_reuse_address_sets_option(ss, observe, kind):
    """SO_REUSEADDR is set exactly when allow_reuse_address is true."""
    base = getattr(ss, kind)
    reuse = type("Reuse" + kind, (base,), {"allow_reuse_address": True})
    with owned(base(("127.0.0.1", 0), ss.BaseRequestHandler)) as plain, \
            owned(reuse(("127.0.0.1", 0), ss.BaseRequestHandler)) as reusing:
        default_value = _sockopt(plain.socket, "SO_REUSEADDR")
        reuse_value = _sockopt(reusing.socket, "SO_REUSEADDR")
    observe("SO_REUSEADDR", {"default": default_value, "allow_reuse_address": reuse_value})
    verify_equal("SO_REUSEADDR with the default allow_reuse_address", 0, default_value)
    verify(reuse_value != 0, "SO_REUSEADDR with allow_reuse_address=True", "non-zero", reuse_value)


@check("BIND-008", REQUIRED, clause="with the defaults, a second server on the same live port "
                                    "fails with OSError (EADDRINUSE) "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L463-L474]")
def test_second_server_on_live_port(ss, observe):
    """A second TCPServer on a port that is listening raises EADDRINUSE."""
    with owned(ss.TCPServer(("127.0.0.1", 0), ss.BaseRequestHandler)) as first:
        error = None
        second = None
        try:
            second = ss.TCPServer(first.server_address, ss.BaseRequestHandler)
        except OSError as exc:
            error = exc
        if second is not None:
            call_bounded(second.server_close, budget=timeouts.short(), what="second.server_close()")
        observe("second_server", summary(error) if error else "bound")
        verify(error is not None, "second server on a live port", "OSError", "bound")
        verify_equal("errno of the second bind", errno.EADDRINUSE, error.errno)


def _rebind_after_time_wait(ss, reuse: bool):
    """Serve one request (the server closes first: TIME_WAIT on its side),
    close the server, bind a new one on the same port.  Returns the summary."""
    cls = type("TimeWaitServer", (ss.TCPServer,), {"allow_reuse_address": reuse})
    recorder = Recorder()
    with owned(cls(("127.0.0.1", 0), recording_handler(ss, recorder, "replies", reply=b"x"))) as old:
        address = old.server_address
        with socket.create_connection(address, timeout=timeouts.short()) as client:
            run_handle_request(old)
            read_to_eof(client, timeouts.short())  # the server closed first
    try:
        new = cls(address, ss.BaseRequestHandler)
    except OSError as exc:
        return summary(exc), exc
    call_bounded(new.server_close, budget=timeouts.short(), what="new.server_close()")
    return "rebound", None


@check("BIND-009", PLATFORM, topic="reuse_addr",
       clause="rebinding a port whose connections are in TIME_WAIT depends on the OS without "
              "SO_REUSEADDR; with allow_reuse_address on both servers it succeeds "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L469-L470, "
              "docs/platform-knowledge.md#reuse_addr]")
def test_rebind_time_wait(ss, observe):
    """Rebinding a port with TIME_WAIT connections: OS-dependent by default, allowed with reuse."""
    default_summary, default_error = _rebind_after_time_wait(ss, reuse=False)
    observe("default", default_summary)
    observe.summary(default_summary)
    verify(default_error is None or isinstance(default_error, OSError), "default rebind failure",
           "an OSError or success", default_summary)
    reuse_summary, _ = _rebind_after_time_wait(ss, reuse=True)
    observe("allow_reuse_address", reuse_summary)
    verify_equal("rebind with allow_reuse_address=True on both servers", "rebound", reuse_summary)


@check("BIND-010", VERSION, requires=("reuse_port",),
       clause="allow_reuse_port=True sets SO_REUSEPORT (API 3.11+); earlier APIs ignore it "
              "[bpo-16594, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L471-L472]")
def test_allow_reuse_port(ss, impl, observe):
    """SO_REUSEPORT follows allow_reuse_port from API 3.11 on and stays 0 before."""
    reuse = type("ReusePortServer", (ss.TCPServer,), {"allow_reuse_port": True})
    with owned(ss.TCPServer(("127.0.0.1", 0), ss.BaseRequestHandler)) as plain, \
            owned(reuse(("127.0.0.1", 0), ss.BaseRequestHandler)) as reusing:
        default_value = _sockopt(plain.socket, "SO_REUSEPORT")
        reuse_value = _sockopt(reusing.socket, "SO_REUSEPORT")
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
def test_ipv6_subclass(ss, observe):
    """An AF_INET6 subclass binds ::1, reports a 4-tuple address and serves a client."""
    recorder = Recorder()
    cls = type("IPv6Server", (ss.TCPServer,), {"address_family": socket.AF_INET6})
    try:
        server = cls(("::1", 0), recording_handler(ss, recorder, "replies", reply=b"v6"))
    except OSError as exc:
        observe("error", exc)
        verify(False, "binding ('::1', 0) with address_family=AF_INET6", "success", summary(exc))
    with owned(server):
        observe("server_address", server.server_address)
        verify(len(server.server_address) == 4, "server_address", "a 4-tuple", server.server_address)
        verify(server.server_address[0] == "::1" and server.server_address[1] != 0,
               "server_address host and port", "('::1', non-zero port, ...)", server.server_address)
        with socket.create_connection(server.server_address[:2], timeout=timeouts.short()) as client:
            run_handle_request(server)
            reply = read_to_eof(client, timeouts.short())
        observe("client_address", recorder.first("handler")["client_address"])
        verify_equal("reply over IPv6", b"v6", reply["data"])


@check("BIND-012", REQUIRED, clause="an AF_INET server given an IPv6 literal raises "
                                    "(socket.gaierror); address_family is never guessed "
                                    "[bpo-20215, "
                                    "https://docs.python.org/3/library/socketserver.html#socketserver.BaseServer.address_family]")
def test_inet_server_rejects_ipv6_literal(ss, observe):
    """TCPServer(('::1', 0)) raises OSError instead of switching family."""
    server = None
    error = None
    try:
        server = ss.TCPServer(("::1", 0), ss.BaseRequestHandler)
    except OSError as exc:
        error = exc
    if server is not None:
        observe("family", int(server.socket.family))
        call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
    observe("error", summary(error) if error else None)
    verify(error is not None, "TCPServer(('::1', 0))", "an OSError (gaierror)", "a bound server")


@check("BIND-013", REQUIRED, clause="TCPServer((host, -1)) raises OverflowError and closes its "
                                    "socket [bpo-22435, "
                                    "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
def test_failed_bind_leaks_no_socket(ss, observe):
    """A constructor whose bind fails closes the socket it created."""
    captured = []

    class Server(ss.TCPServer):
        def server_bind(self):
            captured.append(self.socket)
            super().server_bind()

    before = _socket_fds()
    error = None
    new_fds = None
    try:
        Server(("127.0.0.1", -1), ss.BaseRequestHandler)
    except OverflowError as exc:
        error = exc
        after = _socket_fds()
        if before is not None and after is not None:
            new_fds = sorted(after - before)
    observe("error", summary(error) if error else None)
    observe("new_socket_fds", new_fds)
    verify(isinstance(error, OverflowError), "TCPServer(('127.0.0.1', -1))", "OverflowError", error)
    verify(captured, "server_bind()", "called", captured)
    observe("socket_fileno_after", captured[0].fileno())
    verify_equal("fileno() of the socket after the failed constructor", -1, captured[0].fileno())
    verify(not new_fds, "socket descriptors left open", "none", new_fds)


@check("BIND-014", REQUIRED, clause="if server_bind() or server_activate() raises, __init__ calls "
                                    "server_close() and re-raises "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450-L461]")
@pytest.mark.parametrize("hook", ["server_bind", "server_activate"])
def test_failed_hook_closes_server(ss, observe, hook):
    """An exception from a constructor hook closes the server and propagates unchanged."""
    closed = []
    marker = _Injected(f"{hook} failed on purpose")

    def failing(self):
        raise marker

    def server_close(self):
        closed.append(self.socket)
        ss.TCPServer.server_close(self)

    cls = type("FailingServer", (ss.TCPServer,), {hook: failing, "server_close": server_close})
    error = None
    try:
        server = cls(("127.0.0.1", 0), ss.BaseRequestHandler)
    except timeouts.HarnessTimeout:
        raise  # the harness gave up waiting: a hang, not an observation
    except BaseException as exc:  # judged below
        error = exc
    else:
        call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
    observe("error", summary(error) if error is not None else None)
    observe("server_close_calls", len(closed))
    verify(error is marker, "exception from the constructor", "the hook's exception, unchanged",
           repr(error))
    verify_equal("server_close() calls by the failed constructor", 1, len(closed))
    verify_equal("fileno() of the socket after the failed constructor", -1, closed[0].fileno())


@check("BIND-015", REQUIRED, clause="server_close() closes the socket (fileno() == -1) and may be "
                                    "called again "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L484-L490]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_server_close_idempotent(ss, observe, kind):
    """server_close() closes the socket; a second call raises nothing."""
    server = getattr(ss, kind)(("127.0.0.1", 0), ss.BaseRequestHandler)
    call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
    observe("fileno_after_close", server.socket.fileno())
    verify_equal("socket.fileno() after server_close()", -1, server.socket.fileno())
    error = None
    try:
        call_bounded(server.server_close, budget=timeouts.short(), what="second server.server_close()")
    except Exception as exc:
        error = exc
    observe("second_close", summary(error) if error else "ok")
    verify(error is None, "second server_close()", "no exception", summary(error) if error else None)


@check("BIND-016", REQUIRED, clause="fileno() returns the listening socket's descriptor "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L492-L498]")
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_fileno_is_socket_fileno(ss, observe, kind):
    """server.fileno() == server.socket.fileno()."""
    with owned(getattr(ss, kind)(("127.0.0.1", 0), ss.BaseRequestHandler)) as server:
        observe("fileno", server.fileno())
        observe("socket.fileno", server.socket.fileno())
        verify_equal("server.fileno() vs server.socket.fileno()", server.socket.fileno(), server.fileno())


@check("BIND-017", REQUIRED, requires=("af_unix",),
       clause="UnixStreamServer/UnixDatagramServer.server_close() does not unlink the socket path "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L484-L490]")
@pytest.mark.parametrize("kind", [pytest.param("UnixStreamServer", id="stream"),
                                  pytest.param("UnixDatagramServer", id="dgram")])
def test_unix_server_close_keeps_path(ss, observe, kind):
    """The AF_UNIX socket file survives server_close()."""
    require_attr(ss, kind)
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "bind017")
        server = build_server(ss, kind, ss.BaseRequestHandler, path)  # a class that cannot be built: UNIX-001
        try:
            existed = os.path.exists(path)
        finally:
            call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
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
def test_listen_backlog(ss, observe):
    """Clients beyond the backlog are dropped or refused by the OS; the server recovers."""
    queue_size = 3
    limit = 8
    recorder = Recorder()

    class Server(ss.TCPServer):
        request_queue_size = queue_size
        timeout = timeouts.short()  # handle_request never blocks past the budget

    with owned(Server(("127.0.0.1", 0), recording_handler(ss, recorder, "returns"))) as server:
        connected, first_failure = [], None
        try:
            for _ in range(limit):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.settimeout(timeouts.absence())
                try:
                    sock.connect(server.server_address)
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
            for _ in connected:
                run_handle_request(server)
        finally:
            for sock in connected:
                sock.close()
        verify(len(connected) >= queue_size, "connections completed before accept()",
               f">= request_queue_size ({queue_size})", len(connected))
        with socket.create_connection(server.server_address, timeout=timeouts.short()) as late:
            mine = late.getsockname()
            for _ in range(3):
                run_handle_request(server)
                if any(info["client_address"] == mine for info in recorder.infos("handler")):
                    break
            served = any(info["client_address"] == mine for info in recorder.infos("handler"))
        observe("served_after_overflow", served)
        verify(served, "a client after the backlog drained", "served", served)
