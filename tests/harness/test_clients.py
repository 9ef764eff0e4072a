"""harness.clients.bounded: every helper is bounded and times out as HarnessTimeout."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from harness.clients import bounded as clients
from harness.clients.bounded import ConnectionClosed
from harness.core import addresses, clock, timeouts
from harness.core.timeouts import HarnessTimeout

needs_unix = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="AF_UNIX absent")


@pytest.fixture
def fast():
    saved = timeouts._multiplier
    timeouts.set_multiplier(0.2, export=False)
    yield timeouts.short()
    timeouts.set_multiplier(saved, export=False)


class Peer:
    """A raw one-connection TCP peer scripted by a function (bounded)."""

    def __init__(self, script):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(timeouts.short())
        self.address = self.listener.getsockname()
        self.done = threading.Event()
        self.received = b""
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _run(self, script):
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(timeouts.short())
                script(self, conn)
        finally:
            self.done.set()

    def close(self):
        self.done.wait(timeouts.short())
        self.listener.close()


def test_harness_timeout_is_not_a_socket_timeout():
    assert not issubclass(HarnessTimeout, socket.timeout)


def test_stream_roundtrip_sends_shut_wr_and_reads_to_eof():
    def script(peer, conn):
        data = b""
        while True:
            chunk = conn.recv(100)
            if not chunk:
                break  # only the client's SHUT_WR gets us here
            data += chunk
        peer.received = data
        conn.sendall(data[::-1])

    peer = Peer(script)
    assert clients.roundtrip(peer.address, "inet", b"hello") == b"olleh"
    peer.close()
    assert peer.received == b"hello"


def test_recv_until_eof_times_out_within_budget(fast):
    release = threading.Event()
    peer = Peer(lambda p, conn: release.wait(timeouts.short()))
    start = clock.now()
    with clients.connect(peer.address, "inet") as sock:
        with pytest.raises(HarnessTimeout, match="close the connection"):
            clients.recv_until_eof(sock, 0.3)
    elapsed = clock.now() - start
    release.set()
    peer.close()
    assert 0.3 <= elapsed < 0.3 + timeouts.short()


def test_recv_exactly_reports_what_came_before_eof():
    peer = Peer(lambda p, conn: conn.sendall(b"abc"))
    with clients.connect(peer.address, "inet") as sock:
        with pytest.raises(ConnectionClosed) as info:
            clients.recv_exactly(sock, 5)
    peer.close()
    assert info.value.data == b"abc"


def test_recv_exactly_and_recv_line_consume_no_more_than_asked():
    peer = Peer(lambda p, conn: conn.sendall(b"one\ntwo\nrest"))
    with clients.connect(peer.address, "inet") as sock:
        deadline = timeouts.Deadline(timeouts.short(), "test")
        assert clients.recv_line(sock, deadline) == b"one\n"
        assert clients.recv_exactly(sock, 4, deadline) == b"two\n"
        assert clients.recv_until_eof(sock, deadline) == b"rest"
    peer.close()


def test_recv_line_times_out(fast):
    release = threading.Event()
    peer = Peer(lambda p, conn: (conn.sendall(b"partial"), release.wait(timeouts.short())))
    with clients.connect(peer.address, "inet") as sock:
        with pytest.raises(HarnessTimeout, match="partial"):
            clients.recv_line(sock, 0.2)
    release.set()
    peer.close()


def test_an_expired_deadline_fails_before_blocking():
    peer = Peer(lambda p, conn: None)
    deadline = timeouts.Deadline(0.0, "nothing")
    with clients.connect(peer.address, "inet") as sock:
        with pytest.raises(HarnessTimeout):
            clients.recv_some(sock, deadline)
    peer.close()


def test_connection_errors_pass_through_unchanged():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()  # bound, not listening: refused
        with pytest.raises(ConnectionRefusedError):
            clients.connect(address, "inet")


def _udp_echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(timeouts.short())

    def run():
        with sock:
            try:
                data, sender = sock.recvfrom(1000)
            except socket.timeout:
                return
            sock.sendto(data.upper(), sender)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return sock.getsockname(), thread


def test_udp_roundtrip():
    address, thread = _udp_echo()
    assert clients.roundtrip(address, "inet", b"ping", dgram=True) == b"PING"
    thread.join(timeouts.short())


def test_udp_roundtrip_times_out_without_reply(fast):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        start = clock.now()
        with pytest.raises(HarnessTimeout, match="datagram"):
            clients.roundtrip(silent.getsockname(), "inet", b"x", dgram=True, timeout=0.2)
        assert clock.now() - start < 0.2 + timeouts.short()


@needs_unix
def test_unix_dgram_client_binds_its_own_path_and_cleans_up():
    with addresses.private_dir() as directory:
        with clients.dgram_client("unix", directory) as sock:
            path = sock.getsockname()
            assert os.path.dirname(path) == directory
            assert os.path.exists(path)
        assert not os.path.exists(path)
        assert addresses.socket_files(directory) == []
    with clients.dgram_client("unix") as sock:
        own_dir = os.path.dirname(sock.getsockname())
        assert own_dir in addresses.live_private_dirs()
    assert not os.path.exists(own_dir)


@needs_unix
def test_unix_stream_and_dgram_roundtrips():
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "srv")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(path)
        server.settimeout(timeouts.short())

        def run():
            with server:
                data, sender = server.recvfrom(100)
                server.sendto(data + b"!", sender)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert clients.roundtrip(path, "unix", b"hi", dgram=True) == b"hi!"
        thread.join(timeouts.short())


def test_unix_client_refused_when_af_unix_absent():
    from harness.core import capabilities

    with capabilities.simulate_absent("af_unix"):
        with pytest.raises(addresses.UnsupportedFeature):
            with clients.dgram_client("unix"):
                pass
        with pytest.raises(addresses.UnsupportedFeature):
            clients.connect("/nonexistent", "unix")
