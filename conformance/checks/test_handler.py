"""HANDLER-*: the request handler classes and their documented contract.

Handlers are subclasses of the implementation's own ``BaseRequestHandler``,
``StreamRequestHandler`` and ``DatagramRequestHandler`` that record what
they see (their steps, attributes, socket options, what their file
objects are and do) into plain lists and dicts of the check; the server is
the synchronous ``TCPServer``/``UDPServer`` served by ``serve_in_thread``,
with ``handle_error`` overridden to record instead of print.  Buffering is
proved by what the client can read and when: "nothing yet" is one
``timeouts.absence()`` window while the handler is parked on an event the
check controls, so the handler cannot have reached ``finish()``.

Clauses: CPython's handler classes (Lib/socketserver.py at v3.13.0) and the
documentation of ``BaseRequestHandler``, ``StreamRequestHandler``
(``rbufsize``, ``wbufsize``, ``timeout``, ``disable_nagle_algorithm``) and
``DatagramRequestHandler``.
"""

from __future__ import annotations

import builtins
import io
import select
import socket
import struct
import sys
import threading

import pytest

from conformance.api import REQUIRED, VERSION, check, verify, verify_equal
from harness.clients import bounded as clients
from harness.core import addresses, timeouts
from harness.core.timeouts import HarnessTimeout
from harness.serving.servers import build_server, serve_in_thread

INET = addresses.loopback("inet")
LARGE = bytes(range(256)) * (4 * 1024 * 1024 // 256)  # 4 MiB, position-dependent content


def _is_oserror_name(name):
    cls = getattr(builtins, name, None)
    return isinstance(cls, type) and issubclass(cls, OSError)


def _server(ss, handler, errors=None, class_name="TCPServer", **attrs):
    """A server of ``class_name`` whose handle_error records (exception type, message)."""
    errors = [] if errors is None else errors

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        errors.append((type(exc).__name__, str(exc)))

    return build_server(ss, class_name, handler, INET, handle_error=handle_error, **attrs)


@check("HANDLER-001", REQUIRED,
       clause="BaseRequestHandler.__init__ calls setup(), handle(), then finish() "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
@pytest.mark.parametrize("base_name", ["BaseRequestHandler", "StreamRequestHandler"])
def test_lifecycle_order(ss, observe, base_name):
    """A handler's setup, handle and finish run once each, in that order."""
    steps = []
    base = getattr(ss, base_name)

    class Handler(base):
        def setup(self):
            steps.append("setup")
            base.setup(self)

        def handle(self):
            steps.append("handle")
            self.request.recv(64)  # read the request: closing with unread data resets the client
            self.request.sendall(b"ok")

        def finish(self):
            steps.append("finish")
            base.finish(self)

    with serve_in_thread(_server(ss, Handler)) as served:
        reply = clients.roundtrip(served.address, payload=b"x")
    observe("steps", steps)
    verify_equal("reply", b"ok", reply)
    verify_equal("handler steps", ["setup", "handle", "finish"], steps)


@check("HANDLER-002", REQUIRED,
       clause="finish() is called in a finally: it runs even when handle() raises "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
def test_finish_runs_when_handle_raises(ss, observe):
    """finish() runs after handle() raised, and the exception reaches handle_error."""
    steps = []
    errors = []

    class Handler(ss.BaseRequestHandler):
        def setup(self):
            steps.append("setup")

        def handle(self):
            steps.append("handle")
            raise ValueError("handle failed on purpose")

        def finish(self):
            steps.append("finish")

    with serve_in_thread(_server(ss, Handler, errors)) as served:
        reply = clients.roundtrip(served.address, payload=b"")  # nothing unread when the server closes
    observe("steps", steps)
    observe("handle_error", errors)
    verify_equal("handler steps", ["setup", "handle", "finish"], steps)
    verify_equal("exceptions reported to handle_error", ["ValueError"], [kind for kind, _ in errors])
    verify_equal("reply (EOF)", b"", reply)


@check("HANDLER-003", REQUIRED,
       clause="if setup() raises, neither handle() nor finish() runs "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
def test_nothing_runs_after_setup_raises(ss, observe):
    """When setup() raises, handle() and finish() are skipped; the next request is served normally."""
    steps = []
    errors = []
    count = []

    class Handler(ss.BaseRequestHandler):
        def setup(self):
            count.append(1)
            steps.append(f"setup{len(count)}")
            if len(count) == 1:
                raise ValueError("setup failed on purpose")

        def handle(self):
            steps.append(f"handle{len(count)}")
            self.request.sendall(b"ok")

        def finish(self):
            steps.append(f"finish{len(count)}")

    with serve_in_thread(_server(ss, Handler, errors)) as served:
        first = clients.roundtrip(served.address, payload=b"")  # nothing unread when the server closes
        second = clients.roundtrip(served.address, payload=b"")
    observe("steps", steps)
    observe("handle_error", errors)
    verify_equal("handler steps for two requests", ["setup1", "setup2", "handle2", "finish2"], steps)
    verify_equal("replies", (b"", b"ok"), (first, second))
    verify_equal("exceptions reported to handle_error", ["ValueError"], [kind for kind, _ in errors])


@check("HANDLER-004", REQUIRED,
       clause="BaseRequestHandler sets request, client_address and server before calling setup() "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L755-L763]")
def test_attributes_set_before_setup(ss, observe):
    """In setup(), request is the connection, client_address the client's address, server the server."""
    seen = {}
    missing = object()

    class Handler(ss.BaseRequestHandler):
        def setup(self):
            for name in ("request", "client_address", "server"):
                seen[name] = getattr(self, name, missing)
            seen["peer"] = self.request.getpeername() if seen["request"] is not missing else None

        def handle(self):
            self.request.sendall(b"ok")

    server = _server(ss, Handler)
    with serve_in_thread(server) as served:
        with clients.connect(served.address) as sock:
            client_name = sock.getsockname()
            sock.shutdown(socket.SHUT_WR)
            reply = clients.recv_until_eof(sock)
    absent = [name for name in ("request", "client_address", "server") if seen.get(name, missing) is missing]
    observe("absent_in_setup", absent)
    observe("client_address", seen.get("client_address"))
    verify_equal("reply", b"ok", reply)
    verify(not absent, "attributes available in setup()", "request, client_address, server", absent)
    verify_equal("request.getpeername() in setup (the client's socket)", client_name, seen.get("peer"))
    verify_equal("client_address in setup", client_name, tuple(seen["client_address"]))
    verify(seen["server"] is server, "server attribute in setup", "the server instance", seen["server"])


@check("HANDLER-005", REQUIRED,
       clause="StreamRequestHandler: rfile is makefile('rb', rbufsize), buffered by default; "
              "readline works "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L804-L815]")
def test_rfile_is_a_buffered_reader(ss, observe):
    """rfile is a buffered binary reader whose readline splits lines without losing data."""
    seen = {}

    class Handler(ss.StreamRequestHandler):
        def handle(self):
            seen["buffered"] = isinstance(self.rfile, io.BufferedIOBase)
            seen["type"] = type(self.rfile).__name__
            lines = [self.rfile.readline(), self.rfile.readline(), self.rfile.read()]
            seen["lines"] = lines
            self.wfile.write(b"|".join(lines))

    with serve_in_thread(_server(ss, Handler)) as served:
        reply = clients.roundtrip(served.address, payload=b"one\ntwo\nthree")
    observe("rfile_type", seen.get("type"))
    observe("lines", seen.get("lines"))
    verify(seen.get("buffered"), "rfile", "an io.BufferedIOBase (buffered reader)", seen.get("type"))
    verify_equal("readline, readline, read", [b"one\n", b"two\n", b"three"], seen.get("lines"))
    verify_equal("reply", b"one\n|two\n|three", reply)


@check("HANDLER-006", VERSION,
       clause="wbufsize == 0: wfile is an io.BufferedIOBase whose write() sends at once "
              "(sendall), returns len(data) and needs no flush; wfile.fileno() == "
              "request.fileno() (3.6+) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L828-L845, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L812-L813]")
def test_unbuffered_wfile(ss, impl, observe):
    """The default wfile sends on write() without flush and returns the byte count."""
    seen = {}

    class Handler(ss.StreamRequestHandler):
        def handle(self):
            seen["type"] = type(self.wfile).__name__
            seen["buffered_io"] = isinstance(self.wfile, io.BufferedIOBase)
            seen["fileno_matches"] = self.wfile.fileno() == self.request.fileno()
            seen["returned"] = self.wfile.write(b"ping\n")
            # the client answers only once "ping" arrived: no flush was needed
            self.request.settimeout(timeouts.medium())
            seen["ack"] = self.rfile.readline()

    with serve_in_thread(_server(ss, Handler)) as served:
        with clients.connect(served.address) as sock:
            try:
                ping = clients.recv_line(sock)
            except HarnessTimeout:
                ping = None
            if ping:
                clients.sendall(sock, b"ack\n")
            sock.shutdown(socket.SHUT_WR)
            clients.recv_until_eof(sock)
    observe("wfile_type", seen.get("type"))
    observe("write_returned", seen.get("returned"))
    observe("client_received_before_flush", ping)
    if not impl.api_at_least(3, 6):
        return
    verify_equal("what the client received before the handler flushed or returned", b"ping\n", ping)
    verify_equal("the client's answer read by the handler", b"ack\n", seen.get("ack"))
    verify_equal("wfile.write(b'ping\\n') return value", 5, seen.get("returned"))
    verify(seen.get("buffered_io"), "wfile", "an io.BufferedIOBase", seen.get("type"))
    verify(seen.get("fileno_matches"), "wfile.fileno()", "request.fileno()", seen.get("fileno_matches"))


SMALL_BUFFER = 32 * 1024


@check("HANDLER-007", REQUIRED,
       clause="with wbufsize == 0 a write() is a full sendall: a 4 MiB write is delivered "
              "completely, also on a connection with a timeout (bpo-26721) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L828-L845]")
def test_large_write_is_complete(ss, observe):
    """One 4 MiB wfile.write() on a connection with a timeout reaches the client whole."""
    seen = {}

    class Handler(ss.StreamRequestHandler):
        # a timeout puts the socket in non-blocking mode underneath, where a
        # single send() may write only part of a large buffer
        timeout = timeouts.medium()

        def handle(self):
            # Small buffers on both ends: a single send() of 4 MiB then cannot
            # be absorbed by the kernel at once, so a write() that is not a
            # full sendall is caught every time, not only under load.
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            seen["returned"] = self.wfile.write(LARGE)

    with serve_in_thread(_server(ss, Handler)) as served:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            sock.settimeout(timeouts.short())
            sock.connect(served.address)
            sock.shutdown(socket.SHUT_WR)
            data = clients.recv_until_eof(sock, timeouts.medium())
    observe("received_bytes", len(data))
    observe("write_returned", seen.get("returned"))
    verify_equal("bytes received", len(LARGE), len(data))
    verify(data == LARGE, "content received", "the 4 MiB pattern intact", "corrupted")
    verify_equal("wfile.write() return value", len(LARGE), seen.get("returned"))


@check("HANDLER-008", REQUIRED,
       clause="with wbufsize != 0 wfile is makefile('wb', wbufsize): writes are buffered and "
              "finish() flushes them "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L812-L815, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
def test_buffered_wfile_flushes_in_finish(ss, observe):
    """A small write to a buffered wfile reaches the client only after the handler finishes."""
    _check_buffered_until_finish(ss, observe, 8192)


def _check_buffered_until_finish(ss, observe, buffer_size):
    """100 bytes written with ``wbufsize = buffer_size`` arrive only after finish()."""
    written = threading.Event()
    checked = threading.Event()

    class Handler(ss.StreamRequestHandler):
        wbufsize = buffer_size

        def handle(self):
            self.wfile.write(b"x" * 100)
            written.set()
            checked.wait(timeouts.short())

    with serve_in_thread(_server(ss, Handler)) as served:
        with clients.connect(served.address) as sock:
            try:
                timeouts.wait_event(written, timeouts.short(), "the handler's write")
                sock.settimeout(timeouts.absence())
                try:
                    early = sock.recv(1000)
                except socket.timeout:
                    early = None
            finally:
                checked.set()
            data = clients.recv_until_eof(sock)
    observe("received_while_handler_ran", early)
    observe("received_after_finish", len(data))
    verify(early is None, "bytes received before finish()", "none (buffered)", early)
    verify_equal("bytes received after finish()", b"x" * 100, data)


@check("HANDLER-009", REQUIRED,
       clause="StreamRequestHandler.setup: request.settimeout(timeout) when timeout is not None "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L804-L815]")
@pytest.mark.parametrize("timeout", [None, 7.5], ids=["timeout=None", "timeout=7.5"])
def test_handler_timeout_applied(ss, observe, timeout):
    """The handler's timeout attribute becomes the connection's socket timeout."""
    seen = {}

    class Handler(ss.StreamRequestHandler):
        def handle(self):
            seen["gettimeout"] = self.request.gettimeout()
            self.rfile.read()
            self.wfile.write(b"ok")

    Handler.timeout = timeout
    with serve_in_thread(_server(ss, Handler)) as served:
        reply = clients.roundtrip(served.address, payload=b"x")
    observe("gettimeout", seen.get("gettimeout"))
    verify_equal("reply", b"ok", reply)
    verify_equal("request.gettimeout() in handle()", timeout, seen.get("gettimeout"))


@check("HANDLER-010", REQUIRED,
       clause="StreamRequestHandler.setup sets TCP_NODELAY when disable_nagle_algorithm "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L804-L815]")
@pytest.mark.parametrize("flag", [False, True], ids=["disable_nagle_algorithm=False", "disable_nagle_algorithm=True"])
def test_disable_nagle_algorithm(ss, observe, flag):
    """TCP_NODELAY on the connection follows disable_nagle_algorithm."""
    seen = {}

    class Handler(ss.StreamRequestHandler):
        disable_nagle_algorithm = flag

        def handle(self):
            seen["nodelay"] = self.request.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.rfile.read()
            self.wfile.write(b"ok")

    with serve_in_thread(_server(ss, Handler)) as served:
        reply = clients.roundtrip(served.address, payload=b"x")
    observe("TCP_NODELAY", seen.get("nodelay"))
    verify_equal("reply", b"ok", reply)
    verify_equal("TCP_NODELAY set", flag, bool(seen.get("nodelay")))


@check("HANDLER-011", REQUIRED,
       clause="StreamRequestHandler.finish swallows OSError from the final flush and still closes "
              "wfile (client gone, bpo-14574); the server keeps serving "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
def test_finish_survives_flush_error(ss, observe):
    """A buffered reply to a client that reset the connection: wfile still closed, the server serves on."""
    got = threading.Event()
    reset = threading.Event()
    seen = {}
    errors = []

    class Handler(ss.StreamRequestHandler):
        wbufsize = 8192

        def handle(self):
            if self.rfile.readline() != b"go\n":
                self.wfile.write(b"served\n")
                return
            got.set()
            reset.wait(timeouts.short())
            readable, _, _ = select.select([self.request], [], [], timeouts.short())
            seen["reset_arrived"] = bool(readable)
            self.wfile.write(b"x" * 100)  # buffered: only finish()'s flush sends it
            self.reset_by_client = True

        def finish(self):
            if not getattr(self, "reset_by_client", False):
                return ss.StreamRequestHandler.finish(self)
            try:
                ss.StreamRequestHandler.finish(self)
            except BaseException as exc:
                seen["finish"] = type(exc).__name__
                raise
            else:
                seen["finish"] = "returned"
            finally:
                seen["wfile_closed"] = self.wfile.closed

    with serve_in_thread(_server(ss, Handler, errors)) as served:
        with clients.connect(served.address) as sock:
            clients.sendall(sock, b"go\n")
            try:
                timeouts.wait_event(got, timeouts.short(), "the handler to read the request")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                sock.close()  # RST
                reset.set()
        following = clients.roundtrip(served.address, payload=b"next\n")
    observe("reset_arrived", seen.get("reset_arrived"))
    observe("finish", seen.get("finish"))
    observe("wfile_closed_after_finish", seen.get("wfile_closed"))
    observe("handle_error", errors)
    observe("next_client", following)
    # CPython: the flush error is swallowed, then wfile.close() flushes the
    # still-buffered bytes again and raises (EPIPE); that goes to handle_error.
    verify(seen.get("wfile_closed"), "wfile after finish() despite the failed flush", "closed",
           seen.get("wfile_closed"))
    non_os = [kind for kind, _ in errors if not _is_oserror_name(kind)]
    verify(not non_os, "exceptions reported to handle_error", "only OSError subclasses", errors)
    verify_equal("reply to the next client", b"served\n", following)


@check("HANDLER-012", REQUIRED,
       clause="rbufsize = 0 gives an unbuffered rfile that still supports readline and read "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L804-L815]")
def test_unbuffered_rfile_reads(ss, observe):
    """With rbufsize=0, rfile.readline() and read() return the client's data."""
    seen = {}

    class Handler(ss.StreamRequestHandler):
        rbufsize = 0

        def handle(self):
            lines = [self.rfile.readline(), self.rfile.readline()]
            seen["lines"] = lines
            self.wfile.write(b"|".join(lines))

    with serve_in_thread(_server(ss, Handler)) as served:
        reply = clients.roundtrip(served.address, payload=b"hello\nworld\n")
    observe("lines", seen.get("lines"))
    verify_equal("rfile.readline() twice", [b"hello\n", b"world\n"], seen.get("lines"))
    verify_equal("reply", b"hello\n|world\n", reply)


@check("HANDLER-013", REQUIRED,
       clause="DatagramRequestHandler: request is (data, socket); rfile reads the datagram; wfile "
              "is a BytesIO whose content finish() sends back "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847-L858]")
def test_datagram_handler_request_and_files(ss, observe):
    """A datagram handler sees (data, server socket), reads data from rfile and replies via wfile."""
    seen = {}

    class Handler(ss.DatagramRequestHandler):
        def handle(self):
            request = self.request
            seen["is_tuple"] = isinstance(request, tuple) and len(request) == 2
            seen["data"] = request[0] if seen["is_tuple"] else None
            seen["socket_is_server_socket"] = seen["is_tuple"] and request[1] is self.server.socket
            seen["rfile"] = self.rfile.read()
            seen["wfile_type"] = type(self.wfile).__name__
            seen["wfile_bytesio"] = isinstance(self.wfile, io.BytesIO)
            self.wfile.write(b"re:" + seen["rfile"])

    server = _server(ss, Handler, class_name="UDPServer")
    with serve_in_thread(server) as served:
        try:
            reply = clients.roundtrip(served.address, payload=b"datagram", dgram=True)
        except HarnessTimeout:
            reply = None
    observe("handler_saw", seen)
    verify(seen.get("is_tuple"), "request", "a (data, socket) tuple", seen.get("is_tuple"))
    verify_equal("request[0]", b"datagram", seen.get("data"))
    verify(seen.get("socket_is_server_socket"), "request[1]", "the server's socket", False)
    verify_equal("rfile.read()", b"datagram", seen.get("rfile"))
    verify(seen.get("wfile_bytesio"), "wfile", "an io.BytesIO", seen.get("wfile_type"))
    verify_equal("reply", b"re:datagram", reply)


@check("HANDLER-014", REQUIRED,
       clause="DatagramRequestHandler.finish always sends wfile's content, even when empty "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847-L858]")
@pytest.mark.parametrize("written", [b"", b"answer"], ids=["nothing written", "reply written"])
def test_datagram_finish_sends_wfile(ss, observe, written):
    """A DatagramRequestHandler built directly sends exactly what was written, b'' included."""

    class Handler(ss.DatagramRequestHandler):
        def handle(self):
            self.wfile.write(written)

    with clients.dgram_client("inet") as server_side, clients.dgram_client("inet") as client:
        server_name = server_side.getsockname()
        Handler((b"request", server_side), client.getsockname(), None)
        try:
            data, sender = clients.recvfrom(client)
        except HarnessTimeout:
            data, sender = None, None
    observe("received", data)
    verify_equal("datagram received by the client", written, data)
    verify_equal("sender (the request's socket)", server_name, sender)


@check("HANDLER-015", REQUIRED,
       clause="finish_request calls RequestHandlerClass(request, client_address, server): any "
              "callable is accepted "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L360-L362]")
def test_any_callable_handler(ss, observe):
    """A plain function works as RequestHandlerClass."""
    calls = []

    def handler(request, client_address, server):
        calls.append((client_address, server))
        request.recv(64)
        request.sendall(b"called")

    try:
        server = _server(ss, handler)
    except Exception as exc:  # an implementation that insists on a class
        observe("construction", repr(exc))
        verify(False, "server construction with a function as handler", "accepted", repr(exc))
    with serve_in_thread(server) as served:
        reply = clients.roundtrip(served.address, payload=b"x")
    observe("reply", reply)
    verify_equal("reply from the function", b"called", reply)
    verify(len(calls) == 1 and calls[0][1] is server, "function arguments", "(request, client_address, server)",
           calls)


@check("HANDLER-016", REQUIRED,
       clause="StreamRequestHandler.finish() flushes and closes wfile only if it is still open: "
              "handle() may close self.wfile itself "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
@pytest.mark.parametrize("wbufsize", [0, 8192], ids=["wbufsize=0", "wbufsize=8192"])
def test_handle_may_close_wfile(ss, observe, wbufsize):
    """A handler that closes wfile itself: the client gets what was written, handle_error is not called."""
    errors = []
    seen = {}

    class Handler(ss.StreamRequestHandler):
        def handle(self):
            self.rfile.readline()
            self.wfile.write(b"hi")
            self.wfile.close()
            seen["closed_in_handle"] = self.wfile.closed

    Handler.wbufsize = wbufsize
    with serve_in_thread(_server(ss, Handler, errors)) as served:
        reply = clients.roundtrip(served.address, payload=b"go\n")
        following = clients.roundtrip(served.address, payload=b"again\n")
    observe("reply", reply)
    observe("handle_error", errors)
    verify_equal("wfile.closed after close() in handle()", True, seen.get("closed_in_handle"))
    verify_equal("bytes received by the client", b"hi", reply)
    verify_equal("exceptions reported to handle_error", [], errors)
    verify_equal("reply to the next client", b"hi", following)


@check("HANDLER-017", REQUIRED,
       clause="with wbufsize == 0 wfile is a writable binary file: writable() is true and "
              "io.TextIOWrapper can write through it "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L828-L845]")
def test_unbuffered_wfile_is_writable(ss, observe):
    """The default wfile says it is writable, and text written through io.TextIOWrapper reaches the client."""
    seen = {}
    errors = []

    class Handler(ss.StreamRequestHandler):
        def handle(self):
            seen["writable"] = self.wfile.writable()
            text = io.TextIOWrapper(self.wfile, encoding="utf-8", write_through=True)
            try:
                seen["returned"] = text.write("txt")
                text.flush()
            finally:
                text.detach()  # wfile is finish()'s to close
            seen["closed_after_detach"] = self.wfile.closed

    with serve_in_thread(_server(ss, Handler, errors)) as served:
        reply = clients.roundtrip(served.address, payload=b"")
    observe("writable", seen.get("writable"))
    observe("reply", reply)
    observe("handle_error", errors)
    verify_equal("wfile.writable()", True, seen.get("writable"))
    verify_equal("exceptions reported to handle_error", [], errors)
    verify_equal("text received through io.TextIOWrapper(wfile)", b"txt", reply)


@check("HANDLER-018", REQUIRED,
       clause="wbufsize is makefile()'s buffering: -1 (negative) means a buffer of the default "
              "size, so writes reach the client only when finish() flushes "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L812-L815, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L817-L826]")
def test_negative_wbufsize_buffers(ss, observe):
    """With wbufsize = -1 a small write reaches the client only after the handler finishes."""
    _check_buffered_until_finish(ss, observe, -1)
