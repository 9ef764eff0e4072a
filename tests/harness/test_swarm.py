"""harness.clients.swarm: concurrent clients, verified echoes, bounded failure modes."""

from __future__ import annotations

import selectors
import socket
import socketserver
import sys
import time

import pytest

from harness.clients import swarm
from harness.clients.swarm import SwarmConfig, SwarmConfigError, run_swarm
from harness.core import addresses, capabilities
from harness.implementations import ImplementationError, resolve
from harness.serving import instrument, servers

needs_unix = pytest.mark.skipif(not capabilities.caps().af_unix, reason="AF_UNIX absent")
needs_ipv6 = pytest.mark.skipif(not capabilities.caps().ipv6, reason="IPv6 absent")

#: budgets for runs against servers that are broken or dead on purpose
SMALL = 0.5


def _modules():
    found = [pytest.param(socketserver, id="stdlib")]
    try:
        found.append(pytest.param(resolve("reference").module, id="reference"))
    except ImplementationError:  # pragma: no cover - while reference_impl is incomplete
        pass
    return found


@pytest.fixture
def private():
    with addresses.private_dir() as directory:
        yield directory


@pytest.fixture
def log(private):
    return instrument.EventLog.create(private)


def _serve(module, class_name, log, family="inet", private=None, behaviour="echo", handler=None, **attrs):
    dgram = addresses.is_datagram_class(class_name)
    if handler is None:
        base = getattr(module, "DatagramRequestHandler" if dgram else "StreamRequestHandler")
        handler = instrument.instrumented(base, behaviour, log)
    address = addresses.server_address_for(family, private)
    server = servers.build_server(module, class_name, handler, address, **attrs)
    return servers.serve_in_thread(server)


def _released_together(result) -> bool:
    connected = [c.connected_at for c in result.clients if c.connected_at is not None]
    sent = [c.first_sent_at for c in result.clients if c.first_sent_at is not None]
    return bool(connected) and bool(sent) and max(connected) <= min(sent)


# --------------------------------------------------------------------------- pure helpers


def test_messages_are_unique_sized_and_newline_terminated():
    seen = set()
    for client in range(30):
        for index in range(30):
            data = swarm.message(client, index, 64)
            assert len(data) == 64 and data.endswith(b"\n") and data.count(b"\n") == 1
            assert data.startswith(b"c%d-m%d-" % (client, index))
            seen.add(data)
    assert len(seen) == 900
    # too small for the header: the header and the newline, nothing else
    assert swarm.message(12, 3, 1) == b"c12-m3-\n"
    # the fill differs between clients even when the header is the same length
    assert swarm.message(1, 0, 40)[6:] != swarm.message(2, 0, 40)[6:]


def test_frame_length_ends_at_newline_or_expected_length():
    expected = swarm.message(0, 0, 20)
    assert swarm.frame_length(b"", expected) is None
    assert swarm.frame_length(expected[:10], expected) is None
    assert swarm.frame_length(expected + b"next", expected) == len(expected)
    assert swarm.frame_length(b"short\nrest", expected) == 6  # a shortened reply is still one reply
    no_newline = b"x" * (len(expected) + 5)
    assert swarm.frame_length(no_newline, expected) == len(expected)


def test_percentile_nearest_rank():
    assert swarm.percentile([], 0.5) is None
    assert swarm.percentile([3.0], 0.99) == 3.0
    values = [float(v) for v in range(1, 101)]
    assert swarm.percentile(values, 0.50) == 50.0
    assert swarm.percentile(values, 0.99) == 99.0
    assert swarm.percentile(list(reversed(values)), 1.0) == 100.0


@pytest.mark.parametrize("changes, words", [
    ({"clients": 0}, "clients"),
    ({"clients": swarm.MAX_CLIENTS + 1}, "clients"),
    ({"mode": "threads", "clients": swarm.MAX_THREAD_CLIENTS + 1}, "threads mode"),
    ({"kind": "seqpacket"}, "kind"),
    ({"mode": "asyncio"}, "mode"),
    ({"size": 0}, "size"),
    ({"messages": 0}, "messages"),
    ({"family": "appletalk"}, "appletalk"),
])
def test_invalid_configs_are_refused(changes, words):
    config = SwarmConfig(("127.0.0.1", 9), **changes)
    with pytest.raises(SwarmConfigError, match=words):
        run_swarm(config)


def test_unix_clients_refused_when_af_unix_is_absent():
    with capabilities.simulate_absent("af_unix"):
        with pytest.raises(SwarmConfigError, match="af_unix"):
            run_swarm(SwarmConfig("/tmp/nowhere", family="unix", clients=1))


# --------------------------------------------------------------------------- healthy servers


@pytest.mark.parametrize("module", _modules())
@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_threading_tcp_server_serves_every_client_released_together(module, mode, log):
    with _serve(module, "ThreadingTCPServer", log, daemon_threads=True) as served:
        result = run_swarm(SwarmConfig(served.address, "inet", clients=150, messages=3, size=100, mode=mode))
    summary = result.summary
    assert summary["served"] == 150, result.text()
    assert (summary["lost"], summary["corrupted"], summary["unsent"], summary["errors"]) == (0, 0, 0, {})
    assert summary["messages_ok"] == 450 and result.ok
    assert summary["bytes_sent"] == summary["bytes_received"] == 450 * 100
    assert _released_together(result), "a client sent before every connect had completed"
    assert all(len(c.latencies) == 3 for c in result.clients)
    assert summary["latency_p50"] <= summary["latency_p99"] <= summary["latency_max"]
    assert summary["connect_p50"] is not None and summary["messages_per_s"] > 0
    handles = instrument.intervals(log.read(), "handle")
    assert len(handles) >= 150  # (a connect abandoned after a very late SYN-ACK may add one)


def test_tcp_server_serialises_a_swarm_released_as_connected(log):
    with _serve(socketserver, "TCPServer", log) as served:
        result = run_swarm(SwarmConfig(served.address, "inet", clients=40, messages=2, release_together=False))
    assert result.ok, result.text()
    assert instrument.serialised(instrument.intervals(log.read(), "handle"))


def test_tcp_server_serves_clients_within_its_backlog_released_together(log):
    # one client in handle(), two waiting in the accept queue (backlog 5)
    with _serve(socketserver, "TCPServer", log) as served:
        result = run_swarm(SwarmConfig(served.address, "inet", clients=3, messages=2))
    assert result.ok, result.text()
    assert _released_together(result)


@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_udp_server_echoes_every_datagram(mode, log):
    with _serve(socketserver, "UDPServer", log) as served:
        result = run_swarm(SwarmConfig(served.address, "inet", "dgram", clients=40, messages=3, mode=mode))
    assert result.ok, result.text()
    assert result.summary["messages_ok"] == 120


@needs_ipv6
def test_ipv6_clients(log):
    with _serve(socketserver, "ThreadingTCPServer", log, family="inet6", daemon_threads=True) as served:
        result = run_swarm(SwarmConfig(served.address, "inet6", clients=30, messages=2))
    assert result.ok, result.text()


@needs_unix
@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_unix_stream_swarm(mode, private, log):
    with _serve(socketserver, "ThreadingUnixStreamServer", log, family="unix", private=private,
                daemon_threads=True) as served:
        result = run_swarm(SwarmConfig(served.address, "unix", clients=100, messages=2, mode=mode))
    assert result.ok, result.text()


@needs_unix
@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_unix_datagram_swarm_binds_private_client_paths(mode, private, log):
    before = set(addresses.live_private_dirs())
    with _serve(socketserver, "ThreadingUnixDatagramServer", log, family="unix", private=private,
                daemon_threads=True) as served:
        result = run_swarm(SwarmConfig(served.address, "unix", "dgram", clients=40, messages=2, mode=mode))
    assert result.ok, result.text()
    # the clients' 0700 directory is gone once the swarm returns
    assert set(addresses.live_private_dirs()) == before
    clients = [repr(e.get("client")) for e in log.read() if e.get("phase") == "setup" and e.get("edge") == "start"]
    assert len(clients) == 80 and all("ssc-swarm-" in c for c in clients)


# --------------------------------------------------------------------------- broken servers are reported


class _CorruptOddClients(socketserver.StreamRequestHandler):
    """Echo, but swap the case of one payload byte for odd-numbered clients."""

    def handle(self):
        for _ in range(100):
            line = self.rfile.readline()
            if not line:
                return
            client = int(line[1 : line.index(b"-")])
            if client % 2:
                line = line[:-2] + line[-2:-1].swapcase() + line[-1:]
            self.wfile.write(line)


class _DropSecondMessage(socketserver.StreamRequestHandler):
    """Echo the first line, swallow the second (no reply), close at EOF."""

    def handle(self):
        for index in range(100):
            line = self.rfile.readline()
            if not line:
                return
            if index != 1:
                self.wfile.write(line)


class _CloseAfterFirst(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())


class _DatagramDropSecond(socketserver.BaseRequestHandler):
    """(DatagramRequestHandler.finish would send an empty reply: this sends none.)"""

    def handle(self):
        data, sock = self.request
        if b"-m1-" not in data:
            sock.sendto(data, self.client_address)


@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_corrupting_server_is_reported_as_corrupted(mode, log):
    with _serve(socketserver, "ThreadingTCPServer", log, handler=_CorruptOddClients,
                daemon_threads=True) as served:
        result = run_swarm(SwarmConfig(served.address, "inet", clients=20, messages=3, mode=mode))
    summary = result.summary
    assert not result.ok
    assert summary["corrupted"] == 10 * 3 and summary["lost"] == 0
    assert summary["served"] == 10 and summary["messages_ok"] == 30
    sample = next(c.corruption_sample for c in result.clients if c.corrupted)
    assert sample["expected"] != sample["received"]


@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_server_that_drops_a_message_is_reported_as_lost(mode, log):
    with _serve(socketserver, "ThreadingTCPServer", log, handler=_DropSecondMessage,
                daemon_threads=True) as served:
        start = time.monotonic()
        result = run_swarm(SwarmConfig(served.address, "inet", clients=10, messages=3, mode=mode,
                                       reply_timeout=SMALL))
        elapsed = time.monotonic() - start
    summary = result.summary
    assert (summary["lost"], summary["corrupted"], summary["unsent"], summary["served"]) == (10, 0, 10, 0)
    assert summary["errors"] == {"TimeoutError (recv)": 10}
    assert elapsed < SMALL + 5  # bounded by the reply timeout, not by the budget


@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_server_that_closes_early_gives_eof_and_lost_messages(mode, log):
    with _serve(socketserver, "ThreadingTCPServer", log, handler=_CloseAfterFirst,
                daemon_threads=True) as served:
        result = run_swarm(SwarmConfig(served.address, "inet", clients=10, messages=3, mode=mode))
    summary = result.summary
    assert summary["messages_ok"] == 10 and summary["lost"] == 10 and summary["unsent"] == 10
    assert summary["errors"] == {"EOF (recv)": 10}


@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_lost_datagrams_are_counted_and_the_client_goes_on(mode, log):
    with _serve(socketserver, "UDPServer", log, handler=_DatagramDropSecond) as served:
        result = run_swarm(SwarmConfig(served.address, "inet", "dgram", clients=10, messages=3, mode=mode,
                                       reply_timeout=SMALL))
    summary = result.summary
    assert (summary["messages_ok"], summary["lost"], summary["unsent"]) == (20, 10, 0)
    assert summary["errors"] == {}


class _DatagramSlowSerial(socketserver.BaseRequestHandler):
    """A slow server: each reply costs SMALL / 4 (the handler's own work, as a fork per
    datagram costs a ForkingUDPServer on a loaded machine); client 3's datagram gets none."""

    def handle(self):
        data, sock = self.request
        time.sleep(SMALL / 4)  # the cost being modelled, not a synchronisation
        if not data.startswith(b"c3-"):
            sock.sendto(data, self.client_address)


@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_a_slow_datagram_server_still_answering_loses_nothing(mode, log):
    """Ten datagrams released together against a serial server that needs SMALL / 4 per
    reply: the last replies come ~2.5 reply timeouts after their sends.  They are late for a
    per-message deadline but not lost: the server never fell silent for a reply timeout.
    Client 3's datagram, never answered, is lost once the server has been silent for one."""
    with _serve(socketserver, "UDPServer", log, handler=_DatagramSlowSerial) as served:
        start = time.monotonic()
        result = run_swarm(SwarmConfig(served.address, "inet", "dgram", clients=10, messages=1, mode=mode,
                                       reply_timeout=SMALL))
        elapsed = time.monotonic() - start
    summary = result.summary
    assert (summary["messages_ok"], summary["lost"], summary["errors"]) == (9, 1, {}), result.text()
    assert max(max(c.latencies) for c in result.clients if c.latencies) > SMALL, "the server was not slow"
    assert elapsed < 10 * SMALL / 4 + SMALL + 5  # bounded by the server's silence, not by the budget


@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_dead_server_gives_errors_not_a_hang(mode):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    address = probe.getsockname()
    probe.close()  # nobody listens there now
    start = time.monotonic()
    result = run_swarm(SwarmConfig(address, "inet", clients=50, messages=2, mode=mode))
    assert time.monotonic() - start < 5
    summary = result.summary
    assert summary["connected"] == 0 and summary["unsent"] == 100
    (key, count), = summary["errors"].items()
    assert count == 50 and key.startswith("ConnectionRefusedError") and key.endswith("(connect)")
    error = result.clients[0].error
    assert error.errno is not None and error.errno_name == "ECONNREFUSED"
    assert result.clients[0].connect_attempts == 3  # refused attempts are retried, then given up


@pytest.mark.parametrize("mode", ["selectors", "threads"])
def test_server_that_never_reads_is_bounded_by_the_reply_timeout(mode):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel completes handshakes; nobody ever accepts or reads
    try:
        start = time.monotonic()
        result = run_swarm(SwarmConfig(listener.getsockname(), "inet", clients=4, messages=2, mode=mode,
                                       reply_timeout=SMALL))
        elapsed = time.monotonic() - start
    finally:
        listener.close()
    summary = result.summary
    assert summary["connected"] == 4 and summary["lost"] == 4 and summary["unsent"] == 4
    assert summary["errors"] == {"TimeoutError (recv)": 4}
    assert elapsed < SMALL + 5


def test_full_backlog_that_is_never_drained_times_out_connects_within_the_budget():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # Linux queues 1, macOS 128; the rest of the SYNs are dropped
    try:
        start = time.monotonic()
        result = run_swarm(SwarmConfig(listener.getsockname(), "inet", clients=200, messages=1,
                                       connect_timeout=SMALL, reply_timeout=SMALL, budget=6 * SMALL))
        elapsed = time.monotonic() - start
    finally:
        listener.close()
    summary = result.summary
    assert elapsed < 6 * SMALL + 5
    assert summary["served"] == 0 and summary["unsent"] == 200
    # the connect phase never ends: clients the budget never reached are recorded, not forgotten
    assert sum(summary["errors"].values()) == 200
    assert set(summary["errors"]) <= {"TimeoutError (connect)", "HarnessTimeout (connect)",
                                      "HarnessTimeout (connected)"}
    if sys.platform == "linux":  # Linux drops the SYNs that overflow the queue, silently
        timed_out = [c for c in result.clients if c.error.key() == "TimeoutError (connect)"]
        assert timed_out and any(c.connect_attempts > 1 for c in timed_out), "a dropped SYN must be retried"


def test_budget_exhaustion_is_recorded_per_client():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        result = run_swarm(SwarmConfig(listener.getsockname(), "inet", clients=3, messages=2,
                                       reply_timeout=30, budget=SMALL))
    finally:
        listener.close()
    assert result.summary["errors"] == {"HarnessTimeout (receiving)": 3}
    assert result.wall_time < SMALL + 5


# --------------------------------------------------------------------------- selector plan (Windows branch)


def test_selector_plan_without_poll_uses_select_in_chunks():
    with capabilities.simulate_absent("poll"):
        plan = swarm.selector_plan()
    assert plan.selector_class is selectors.SelectSelector
    assert plan.chunk == swarm.SELECT_CHUNK <= 512
    native = swarm.selector_plan()
    if capabilities.caps().poll:
        assert native.chunk is None and native.selector_class is selectors.DefaultSelector


def test_chunked_select_loops_share_one_release_gate(log):
    with capabilities.simulate_absent("poll"):
        with _serve(socketserver, "ThreadingTCPServer", log, daemon_threads=True) as served:
            result = run_swarm(SwarmConfig(served.address, "inet", clients=120, messages=2, selector_chunk=50))
    assert result.ok, result.text()
    assert result.summary["selector"] == "SelectSelector" and result.summary["loops"] == 3
    assert _released_together(result), "a chunk started sending before the others had connected"


def test_chunked_loops_still_report_a_dead_server():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    address = probe.getsockname()
    probe.close()
    with capabilities.simulate_absent("poll"):
        result = run_swarm(SwarmConfig(address, "inet", clients=30, selector_chunk=7))
    assert result.summary["loops"] == 5 and result.summary["connected"] == 0
    assert sum(result.summary["errors"].values()) == 30


# --------------------------------------------------------------------------- RLIMIT_NOFILE


def test_raise_nofile_limit_without_rlimit_is_a_note_not_an_error():
    with capabilities.simulate_absent("rlimit"):
        result = swarm.raise_nofile_limit(50_000)
    assert (result.before, result.after, result.raised) == (None, None, False)
    assert "rlimit" in result.note


@pytest.mark.skipif(not capabilities.caps().rlimit, reason="no resource module")
def test_raise_nofile_limit_raises_toward_the_hard_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        unchanged = swarm.raise_nofile_limit(soft)
        assert (unchanged.before, unchanged.after, unchanged.raised) == (soft, soft, False)
        lowered = soft - 10
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
        raised = swarm.raise_nofile_limit(lowered + 5)
        assert (raised.before, raised.after, raised.raised) == (lowered, lowered + 5, True)
        if hard != resource.RLIM_INFINITY:
            capped = swarm.raise_nofile_limit(hard + 1000)
            assert capped.raised and capped.after <= hard and "hard limit" in capped.note
            # macOS refuses a soft limit above OPEN_MAX (10240) even under a higher hard limit
            assert capped.after == hard or (capped.after == 10240 and "refused" in capped.note), capped
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_fds_needed():
    assert swarm.fds_needed(10_000) == 10_064
    assert swarm.fds_needed(100, server_in_process=True, margin=0) == 200


def test_result_json_and_text_name_the_errors():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    address = probe.getsockname()
    probe.close()
    result = run_swarm(SwarmConfig(address, "inet", clients=2, connect_attempts=1))
    data = result.as_dict(per_client=True)
    import json

    json.dumps(data)
    assert data["clients"][0]["error"]["errno_name"] == "ECONNREFUSED"
    assert data["config"]["address"] == list(address)
    assert "ConnectionRefusedError" in result.text()
