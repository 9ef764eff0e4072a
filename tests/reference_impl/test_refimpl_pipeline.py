"""The request pipeline, the servers' socket handling and the handlers.

Each test drives a synchronous server with ``handle_request()`` in a
helper thread (bounded by ``timeouts.short()``) while the test thread is
the client, so a broken implementation fails with ``HarnessTimeout``
instead of hanging.  Each test names the CPython method whose behaviour
it checks (Lib/socketserver.py at v3.13.0).
"""

from __future__ import annotations

import errno
import io
import os
import socket
import sys
import tempfile

import pytest

import reference_impl
from harness.core import timeouts
from harness.core.capabilities import caps

LOCAL = ("127.0.0.1", 0)


def _client(address, family=socket.AF_INET):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeouts.short())
    sock.connect(address)
    return sock


def _read_to_eof(sock):
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


# -- handler lifecycle ------------------------------------------------------------


class _Lifecycle(reference_impl.BaseRequestHandler):
    fail_in = None

    def setup(self):
        self.log = [("setup", self.request, self.client_address, self.server)]
        if self.fail_in == "setup":
            raise ValueError("setup")

    def handle(self):
        self.log.append("handle")
        if self.fail_in == "handle":
            raise ValueError("handle")

    def finish(self):
        self.log.append("finish")
        type(self).last_log = self.log


def test_handler_runs_setup_handle_finish_in_order():
    """BaseRequestHandler.__init__: attributes are set before setup(); then handle(), then finish()."""
    _Lifecycle.fail_in = None
    handler = _Lifecycle("REQ", "ADDR", "SRV")
    assert handler.log == [("setup", "REQ", "ADDR", "SRV"), "handle", "finish"]


def test_finish_runs_when_handle_raises():
    _Lifecycle.fail_in = "handle"
    with pytest.raises(ValueError, match="handle"):
        _Lifecycle("REQ", "ADDR", "SRV")
    assert _Lifecycle.last_log[1:] == ["handle", "finish"]


def test_nothing_runs_after_setup_raises():
    class Handler(_Lifecycle):
        fail_in = "setup"

        def finish(self):  # must not be reached
            raise AssertionError("finish ran after setup failed")

    with pytest.raises(ValueError, match="setup"):
        Handler("REQ", "ADDR", "SRV")


# -- the pipeline ---------------------------------------------------------------


class _Recording(reference_impl.TCPServer):
    def __init__(self, *args, **kwargs):
        self.events = []
        super().__init__(*args, **kwargs)

    def verify_request(self, request, client_address):
        self.events.append("verify")
        return getattr(self, "allow", True)

    def handle_error(self, request, client_address):
        self.events.append(("handle_error", sys.exc_info()[0]))

    def shutdown_request(self, request):
        self.events.append("shutdown_request")
        super().shutdown_request(request)


class _Raising(reference_impl.BaseRequestHandler):
    def handle(self):
        self.server.events.append("handler")
        exc = self.server.exception_to_raise
        if exc is not None:
            raise exc("from the handler")


def test_refused_request_is_shut_down_once_and_never_handled(in_thread):
    """BaseServer._handle_request_noblock: verify_request false -> no handler, one shutdown_request, client sees EOF."""
    server = _Recording(LOCAL, _Raising)
    server.allow = False
    server.exception_to_raise = None
    try:
        with _client(server.server_address) as client:
            in_thread(server.handle_request).result(timeouts.short(), "handle_request")
            assert _read_to_eof(client) == b""
    finally:
        server.server_close()
    assert server.events == ["verify", "shutdown_request"]


def test_handler_exception_goes_to_handle_error_then_shutdown(in_thread, roundtrip):
    """BaseServer._handle_request_noblock: Exception -> handle_error, then shutdown_request; the server stays usable."""
    server = _Recording(LOCAL, _Raising)
    server.exception_to_raise = ValueError
    try:
        for _ in range(2):
            with _client(server.server_address) as client:
                result = in_thread(server.handle_request).result(timeouts.short(), "handle_request")
                assert _read_to_eof(client) == b""
            assert result is None
    finally:
        server.server_close()
    one = ["verify", "handler", ("handle_error", ValueError), "shutdown_request"]
    assert server.events == one + one


def test_exiting_exception_propagates_without_handle_error(in_thread):
    """BaseServer._handle_request_noblock: SystemExit -> shutdown_request, then it escapes handle_request."""
    server = _Recording(LOCAL, _Raising)
    server.exception_to_raise = SystemExit
    try:
        with _client(server.server_address):
            with pytest.raises(SystemExit):
                in_thread(server.handle_request).result(timeouts.short(), "handle_request")
    finally:
        server.server_close()
    assert server.events == ["verify", "handler", "shutdown_request"]


def test_get_request_oserror_is_swallowed(in_thread):
    """BaseServer._handle_request_noblock: an OSError from get_request drops the request silently."""

    class Server(_Recording):
        def get_request(self):
            request, address = super().get_request()
            request.close()
            raise OSError(errno.ECONNABORTED, "simulated")

    server = Server(LOCAL, _Raising)
    server.exception_to_raise = None
    try:
        with _client(server.server_address):
            result = in_thread(server.handle_request).result(timeouts.short(), "handle_request")
    finally:
        server.server_close()
    assert result is None
    assert server.events == []


def test_default_handle_error_output(in_thread, capsys):
    """BaseServer.handle_error: dashed frame, 'Exception occurred ... from <addr>', traceback; stderr only."""
    server = reference_impl.TCPServer(LOCAL, _Raising)
    server.events = []
    server.exception_to_raise = ValueError
    try:
        with _client(server.server_address) as client:
            peer = client.getsockname()
            in_thread(server.handle_request).result(timeouts.short(), "handle_request")
    finally:
        server.server_close()
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == "-" * 40
    assert lines[1] == f"Exception occurred during processing of request from {peer!r}"
    assert lines[2] == "Traceback (most recent call last):"
    assert "ValueError: from the handler" in captured.err
    assert lines[-1] == "-" * 40


# -- construction, binding, closing ---------------------------------------------


def test_constructor_binds_and_reads_the_real_address():
    """TCPServer.server_bind/TCPServer.server_activate/TCPServer.fileno: port 0 is replaced; the socket listens; fileno() is its fd."""
    with reference_impl.TCPServer(LOCAL, _Raising) as server:
        assert server.server_address == server.socket.getsockname()
        assert server.server_address[1] != 0
        assert server.fileno() == server.socket.fileno()
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)


def test_bind_and_activate_false():
    """TCPServer.__init__: the socket exists but is unbound; server_address is kept."""
    server = reference_impl.TCPServer(("127.0.0.1", 0), _Raising, bind_and_activate=False)
    try:
        assert server.server_address == ("127.0.0.1", 0)
        assert server.socket.getsockname() == ("0.0.0.0", 0)
        server.server_bind()
        server.server_activate()
        assert server.server_address[1] != 0
    finally:
        server.server_close()


def test_failed_constructor_closes_its_socket():
    """TCPServer.__init__: bind failure -> server_close() -> re-raise (bpo-22435)."""
    closed = []

    class Server(reference_impl.TCPServer):
        def server_close(self):
            closed.append(self.socket)
            super().server_close()

    with pytest.raises(OverflowError):
        Server(("127.0.0.1", -1), _Raising)
    assert len(closed) == 1 and closed[0].fileno() == -1


def test_context_manager_closes_and_does_not_swallow():
    """BaseServer.__exit__/TCPServer.server_close: __enter__ returns the server; __exit__ closes; exceptions propagate."""
    with pytest.raises(KeyError):
        with reference_impl.TCPServer(LOCAL, _Raising) as server:
            entered = server
            raise KeyError("inside")
    assert entered is server
    assert server.socket.fileno() == -1
    server.server_close()  # again: harmless


def test_reuse_address_option():
    """TCPServer.server_bind: allow_reuse_address sets SO_REUSEADDR; by default a live port cannot be rebound."""
    with reference_impl.TCPServer(LOCAL, _Raising) as first:
        assert first.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        with pytest.raises(OSError) as info:
            reference_impl.TCPServer(first.server_address, _Raising)
        assert info.value.errno == errno.EADDRINUSE

    class Reusing(reference_impl.TCPServer):
        allow_reuse_address = True

    with Reusing(LOCAL, _Raising) as server:
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0


def test_reuse_port_option():
    """TCPServer.server_bind: allow_reuse_port sets SO_REUSEPORT where it exists."""
    if not caps().reuse_port:
        pytest.skip("SO_REUSEPORT unavailable")

    class Reusing(reference_impl.TCPServer):
        allow_reuse_port = True

    with Reusing(LOCAL, _Raising) as server:
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
    with reference_impl.TCPServer(LOCAL, _Raising) as server:
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0


def test_ipv6_subclass():
    """TCPServer.address_family: address_family = AF_INET6 binds ::1 and reports a 4-tuple."""
    if not caps().ipv6:
        pytest.skip("no IPv6 loopback")

    class Server6(reference_impl.TCPServer):
        address_family = socket.AF_INET6

    with Server6(("::1", 0), _Raising) as server:
        assert len(server.server_address) == 4 and server.server_address[0] == "::1"


def test_udp_server_never_closes_its_shared_socket():
    """TCPServer.server_activate/UDPServer.close_request: no listen(); shutdown_request/close_request leave the socket open."""
    with reference_impl.UDPServer(LOCAL, _Raising) as server:
        assert not server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        request = (b"data", server.socket)
        server.shutdown_request(request)
        server.close_request(request)
        assert server.socket.fileno() != -1


def test_unix_server_close_keeps_the_path():
    """TCPServer.server_close: UnixStreamServer.server_close() does not unlink its socket file."""
    if not caps().af_unix:
        pytest.skip("AF_UNIX unavailable")
    directory = tempfile.mkdtemp(prefix="ss")  # mode 0700
    path = os.path.join(directory, "s")
    try:
        server = reference_impl.UnixStreamServer(path, _Raising)
        assert server.server_address == path
        server.server_close()
        assert os.path.exists(path)
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(directory)


# -- StreamRequestHandler ---------------------------------------------------------


def test_unbuffered_wfile_sends_at_once_and_counts_bytes(in_thread):
    """_SocketWriter: wbufsize 0 -> BufferedIOBase, write() = sendall, returns len, no flush needed."""
    seen = {}

    class Handler(reference_impl.StreamRequestHandler):
        def handle(self):
            seen["wfile"] = self.wfile
            seen["filenos"] = (self.wfile.fileno(), self.request.fileno())
            seen["sent"] = self.wfile.write(b"first\n")
            seen["ack"] = self.rfile.readline()  # sent only after "first" arrived
            seen["sent_view"] = self.wfile.write(memoryview(b"second\n"))

    server = reference_impl.TCPServer(LOCAL, Handler)
    try:
        with _client(server.server_address) as client:
            call = in_thread(server.handle_request)
            with client.makefile("rb") as reader:
                assert reader.readline() == b"first\n"
                client.sendall(b"ack\n")
                assert reader.read() == b"second\n"
            call.result(timeouts.short(), "handle_request")
    finally:
        server.server_close()
    assert isinstance(seen["wfile"], io.BufferedIOBase)
    assert seen["filenos"][0] == seen["filenos"][1]
    assert seen["sent"] == len(b"first\n") and seen["sent_view"] == len(b"second\n")
    assert seen["ack"] == b"ack\n"
    assert seen["wfile"].closed  # finish() closed it


def test_buffered_files_and_socket_options(in_thread):
    """StreamRequestHandler.setup/_SocketWriter: rbufsize/wbufsize choose the file types; timeout and TCP_NODELAY applied."""
    seen = {}

    class Handler(reference_impl.StreamRequestHandler):
        rbufsize = 0
        wbufsize = 4096
        timeout = timeouts.short()
        disable_nagle_algorithm = True

        def handle(self):
            seen["rfile"] = type(self.rfile)
            seen["wfile"] = type(self.wfile)
            seen["timeout"] = self.connection.gettimeout()
            seen["nodelay"] = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.wfile.write(b"buffered\n")  # reaches the client when finish() flushes

    server = reference_impl.TCPServer(LOCAL, Handler)
    try:
        with _client(server.server_address) as client:
            in_thread(server.handle_request).result(timeouts.short(), "handle_request")
            assert _read_to_eof(client) == b"buffered\n"
    finally:
        server.server_close()
    assert seen["rfile"] is socket.SocketIO
    assert seen["wfile"] is io.BufferedWriter
    assert seen["timeout"] == timeouts.short()
    assert seen["nodelay"] != 0


def test_handler_timeout_surfaces_through_handle_error(in_thread):
    """#62/7.7: StreamRequestHandler.timeout makes a silent client a TimeoutError."""

    class Handler(reference_impl.StreamRequestHandler):
        timeout = 0.05

        def handle(self):
            self.rfile.readline()

    server = _Recording(LOCAL, Handler)
    try:
        with _client(server.server_address):
            in_thread(server.handle_request).result(timeouts.short(), "handle_request")
    finally:
        server.server_close()
    assert ("handle_error", socket.timeout) in server.events


def test_finish_swallows_flush_errors_and_closes():
    """StreamRequestHandler.finish: an OSError from the final flush is ignored; both files are closed."""

    class Failing(io.BytesIO):
        def flush(self):
            raise BrokenPipeError(errno.EPIPE, "client gone")

    left, right = socket.socketpair()
    try:

        class Handler(reference_impl.StreamRequestHandler):
            def handle(self):
                self.wfile = Failing()
                type(self).files = (self.rfile, self.wfile)

        Handler(left, ("peer", 0), None)
        assert all(f.closed for f in Handler.files)
    finally:
        left.close()
        right.close()


# -- DatagramRequestHandler -------------------------------------------------------


def _udp_exchange(server, payload, in_thread):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(timeouts.short())
        client.bind(("127.0.0.1", 0))
        client.sendto(payload, server.server_address)
        in_thread(server.handle_request).result(timeouts.short(), "handle_request")
        return client.recvfrom(65536), client.getsockname()


def test_datagram_handler_always_replies(in_thread):
    """DatagramRequestHandler: request is (data, socket); an empty reply datagram goes out anyway."""
    seen = {}

    class Handler(reference_impl.DatagramRequestHandler):
        def handle(self):
            seen["packet"] = self.packet
            seen["read"] = self.rfile.read()
            seen["socket_is_server"] = self.socket is self.server.socket
            seen["client"] = self.client_address

    with reference_impl.UDPServer(LOCAL, Handler) as server:
        (reply, source), client_name = _udp_exchange(server, b"hello", in_thread)
    assert reply == b""
    assert source == server.server_address
    assert seen == {
        "packet": b"hello",
        "read": b"hello",
        "socket_is_server": True,
        "client": client_name,
    }


@pytest.mark.skipif(sys.platform == "win32", reason="Windows drops oversized datagrams (#67)")
def test_datagram_truncated_to_max_packet_size(in_thread):
    """UDPServer.get_request: payloads longer than max_packet_size are cut to it."""

    class Echo(reference_impl.DatagramRequestHandler):
        def handle(self):
            self.wfile.write(self.rfile.read())

    with reference_impl.UDPServer(LOCAL, Echo) as server:
        (reply, _source), _name = _udp_exchange(server, b"x" * 10000, in_thread)
    assert len(reply) == reference_impl.UDPServer.max_packet_size == 8192
