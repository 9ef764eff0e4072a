"""UDP-*: UDPServer and datagram requests end to end.

Servers run in this process (``serve_in_thread``) with handlers built on
the implementation's ``DatagramRequestHandler``; clients are bound
loopback datagram sockets (:func:`harness.clients.bounded.dgram_client`).  A
datagram that might legitimately be dropped (Windows drops oversized
ones) is never waited for on its own: the check sends a small follow-up
datagram from the same client, and since one synchronous server answers
in arrival order, the first reply tells whether the oversized one was
served or dropped.  Loss on loopback is not expected, but where many
datagrams are in flight the check asserts the integrity of every reply
and only a loose minimum count.

Clauses: ``UDPServer`` and ``DatagramRequestHandler`` in CPython's
Lib/socketserver.py at v3.13.0 and the ``UDPServer`` documentation; PLATFORM checks record a summary for the
``udp_truncation`` and ``udp_dead_port`` topics.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading

from conformance.api import PLATFORM, REQUIRED, check, verify, verify_equal
from conformance.tools.event_log import wait_count
from harness.clients import bounded as clients
from harness.core import addresses, timeouts
from harness.core.observations import summary
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument, servers
from harness.serving.servers import build_server, serve_in_thread

INET = addresses.loopback("inet")
#: Larger than max_packet_size (8192) but below macOS' default UDP send limit (9216).
OVERSIZED = 9000


def _recording_handler(ss, record, reply=None):
    """A datagram handler recording (data length, data) and replying ``reply(data)``."""

    class Recording(ss.DatagramRequestHandler):
        def handle(self):
            data = self.rfile.read()
            record.append(data)
            self.wfile.write(data if reply is None else reply(data))

    return Recording


def _recvfrom_or_none(sock, budget=None):
    try:
        return clients.recvfrom(sock, budget)
    except HarnessTimeout:
        return None, None


def _server(ss, handler, class_name="UDPServer", errors=None, **attrs):
    errors = [] if errors is None else errors

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        errors.append(type(exc).__name__)

    try:
        return build_server(ss, class_name, handler, INET, handle_error=handle_error, **attrs)
    except OSError as exc:
        verify(False, f"{class_name} construction", "succeeds", summary(exc))


@check("UDP-001", REQUIRED, clause="UDPServer + DatagramRequestHandler: the reply goes back to "
                                   "the client "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847-L858]")
def test_echo_roundtrip(ss, observe):
    """A datagram is echoed from the server's address to the sending client."""
    record = []
    server = _server(ss, _recording_handler(ss, record))
    with serve_in_thread(server) as served, clients.dgram_client("inet") as sock:
        sock.sendto(b"hello udp", served.address)
        data, sender = _recvfrom_or_none(sock)
    observe("reply", data)
    observe("sender", sender)
    verify_equal("datagrams the handler received", [b"hello udp"], record)
    verify_equal("reply", b"hello udp", data)
    verify_equal("sender of the reply (the server's address)", served.address, sender)


def _truncation(ss, max_packet_size=None):
    """Send an oversized datagram then a marker; what the handler and client saw."""
    record = []
    attrs = {} if max_packet_size is None else {"max_packet_size": max_packet_size}
    server = _server(ss, _recording_handler(ss, record, reply=lambda d: b"len=%d" % len(d)), **attrs)
    limit = server.max_packet_size
    size = max(OVERSIZED, limit + 100)
    with serve_in_thread(server) as served, clients.dgram_client("inet") as sock:
        sock.sendto(b"x" * size, served.address)
        sock.sendto(b"marker", served.address)
        first, _ = _recvfrom_or_none(sock)
        second = None
        if first is not None and first != b"len=6":
            second, _ = _recvfrom_or_none(sock)
    return limit, size, record, first, second


@check("UDP-002", PLATFORM, topic="udp_truncation",
       clause="UDPServer reads with recvfrom(max_packet_size = 8192): a longer datagram is "
              "truncated (POSIX) or dropped (Windows, WSAEMSGSIZE swallowed) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L533-L537, "
              "docs/platform-knowledge.md#udp_truncation]")
def test_oversized_datagram_truncated_or_dropped(ss, observe):
    """A 9000-byte datagram reaches the handler cut to 8192 bytes, or not at all; the server serves on."""
    limit, size, record, first, second = _truncation(ss)
    lengths = [len(data) for data in record]
    if first is not None and first.startswith(b"len=") and first != b"len=6":
        observe.summary(f"truncated to {int(first[4:])}")
    elif first == b"len=6":
        observe.summary("dropped")
    else:
        observe.summary("no reply")
    observe("sent", size)
    observe("handler_lengths", lengths)
    observe("replies", [first, second])
    verify(all(length <= limit for length in lengths), "datagram sizes handed to the handler",
           f"<= max_packet_size ({limit})", lengths)
    verify(b"len=6" in (first, second), "the following datagram", "served", [first, second])


@check("UDP-003", PLATFORM,
       clause="a subclass's max_packet_size is the recvfrom size: datagrams longer than it are "
              "truncated to it (POSIX) or dropped (Windows) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L533-L537, "
              "docs/platform-knowledge.md#udp_truncation]")
def test_subclass_max_packet_size(ss, observe):
    """With max_packet_size=100 a 9000-byte datagram reaches the handler as 100 bytes (or not at all)."""
    limit, size, record, first, second = _truncation(ss, max_packet_size=100)
    lengths = [len(data) for data in record]
    observe.summary(f"truncated to {lengths[0]}" if len(lengths) == 2 else "dropped" if lengths else "no request")
    observe("handler_lengths", lengths)
    observe("replies", [first, second])
    verify_equal("server.max_packet_size", 100, limit)
    verify(all(length <= 100 for length in lengths), "datagram sizes handed to the handler", "<= 100", lengths)
    verify(lengths[:1] in ([100], [6]), "first datagram handed to the handler", "100 bytes (or dropped)", lengths)
    verify(b"len=6" in (first, second), "the following datagram", "served", [first, second])


@check("UDP-004", REQUIRED,
       clause="UDPServer.shutdown_request/close_request never close the shared server socket "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L543-L549]")
def test_shared_socket_survives_requests(ss, observe):
    """Ending datagram requests leaves the server socket open and serving."""
    record = []
    server = _server(ss, _recording_handler(ss, record))
    fileno = server.fileno()
    server.shutdown_request((b"direct", server.socket))
    server.close_request((b"direct", server.socket))
    after_direct = server.socket.fileno()
    if after_direct != fileno:
        server.server_close()
    verify_equal("server socket fileno after shutdown_request/close_request", fileno, after_direct)
    with serve_in_thread(server) as served, clients.dgram_client("inet") as sock:
        replies = []
        for index in range(3):
            sock.sendto(b"d%d" % index, served.address)
            replies.append(_recvfrom_or_none(sock)[0])
        after_requests = server.socket.fileno()
    observe("fileno", {"before": fileno, "after_direct_calls": after_direct, "after_requests": after_requests})
    observe("replies", replies)
    verify_equal("replies to three requests", [b"d0", b"d1", b"d2"], replies)
    verify_equal("server socket fileno after three requests", fileno, after_requests)


@check("UDP-005", REQUIRED,
       clause="DatagramRequestHandler.finish always sends the reply datagram, a zero-length one "
              "when nothing was written "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847-L858]")
def test_empty_reply_datagram(ss, observe):
    """A handler that writes nothing still answers with an empty datagram."""
    record = []
    server = _server(ss, _recording_handler(ss, record, reply=lambda d: b""))
    with serve_in_thread(server) as served, clients.dgram_client("inet") as sock:
        sock.sendto(b"say nothing", served.address)
        data, sender = _recvfrom_or_none(sock)
    observe("reply", data)
    verify_equal("datagrams handled", [b"say nothing"], record)
    verify_equal("reply datagram", b"", data)
    verify_equal("sender of the empty reply", served.address, sender)


@check("UDP-006", PLATFORM,
       clause="a zero-length datagram is a request: recvfrom returns (b'', addr) and the handler "
              "runs (measured on Linux) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
def test_zero_length_request(ss, observe):
    """An empty datagram dispatches a request with empty data; the server keeps serving."""
    record = []
    server = _server(ss, _recording_handler(ss, record, reply=lambda d: b"got:" + d))
    with serve_in_thread(server) as served, clients.dgram_client("inet") as sock:
        sock.sendto(b"", served.address)
        sock.sendto(b"marker", served.address)
        first, _ = _recvfrom_or_none(sock)
        second = _recvfrom_or_none(sock)[0] if first == b"got:" else None
        observe.summary("dispatched" if first == b"got:" else "not dispatched")
        observe("handled", record)
        observe("replies", [first, second])
        # inside the block: a serving loop that died must fail here, not in teardown
        verify(b"got:marker" in (first, second), "the following datagram", "served", [first, second])
    if first == b"got:":
        verify_equal("data handed to the handler for the empty datagram", [b""], record[:1])


@check("UDP-007", REQUIRED,
       clause="UDPServer.server_activate does nothing: a datagram socket does not listen "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L539-L541]")
def test_server_activate_does_not_listen(ss, observe):
    """Constructing a UDPServer succeeds and its socket is not a listening socket."""
    try:
        server = build_server(ss, "UDPServer", ss.DatagramRequestHandler, INET)
    except OSError as exc:
        observe("construction", summary(exc))
        verify(False, "UDPServer construction", "succeeds (no listen())", summary(exc))
    try:
        accepting = None
        if hasattr(socket, "SO_ACCEPTCONN"):
            accepting = server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        try:
            server.server_activate()
            again = "returned"
        except OSError as exc:
            again = summary(exc)
    finally:
        server.server_close()
    observe("SO_ACCEPTCONN", accepting)
    observe("server_activate_again", again)
    verify(not accepting, "SO_ACCEPTCONN on the server socket", 0, accepting)
    verify_equal("a second server_activate()", "returned", again)


@check("UDP-008", REQUIRED,
       clause="ThreadingUDPServer: concurrent handlers reply through the shared socket to their "
              "own clients "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
def test_threading_udp_several_clients(ss, observe):
    """Four handlers in flight at once each answer their own client."""
    count = 4
    barrier = threading.Barrier(count)
    met = []

    class Meeting(ss.DatagramRequestHandler):
        def handle(self):
            data = self.rfile.read()
            try:
                barrier.wait(timeouts.short())  # all four handlers are running now
                met.append(data)
            except threading.BrokenBarrierError:
                pass
            self.wfile.write(b"re:" + data)

    server = _server(ss, Meeting, class_name="ThreadingUDPServer")
    results = {}
    with serve_in_thread(server) as served, contextlib.ExitStack() as stack:
        socks = [stack.enter_context(clients.dgram_client("inet")) for _ in range(count)]
        for index, sock in enumerate(socks):
            sock.sendto(b"c%d" % index, served.address)
        for index, sock in enumerate(socks):
            # one reply per handler: if every client's first reply is its
            # own, none can have been misdirected
            results[index] = _recvfrom_or_none(sock)
    observe("handlers_in_flight_together", len(met))
    observe("received", {index: list(got) for index, got in results.items()})
    verify_equal("handlers running at the same time", count, len(met))
    for index, got in results.items():
        verify_equal(f"reply received by client {index}", b"re:c%d" % index, got[0])
        verify_equal(f"sender of client {index}'s reply", served.address, got[1])


@check("UDP-009", REQUIRED,
       clause="UDPServer answers every datagram of several clients' bursts; replies are intact "
              "and reach their sender (loopback: no loss expected) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
def test_many_datagrams_all_answered(ss, observe):
    """Four clients each send a burst of 20 datagrams; every reply is intact and nearly all arrive."""
    count, burst = 4, 20
    minimum = int(count * burst * 0.9)
    server = _server(ss, _recording_handler(ss, []))
    results = {}
    with serve_in_thread(server) as served, contextlib.ExitStack() as stack:
        socks = [stack.enter_context(clients.dgram_client("inet")) for _ in range(count)]

        def client(index, sock):
            for message in range(burst):
                sock.sendto(b"c%d-m%02d-" % (index, message) + b"p" * 64, served.address)
            got = []
            for _ in range(burst):
                data, _ = _recvfrom_or_none(sock, timeouts.short() if not got else timeouts.absence() * 4)
                if data is None:
                    break
                got.append(data)
            results[index] = got

        threads = [threading.Thread(target=client, args=(i, s), name=f"ssc-udp-client-{i}", daemon=True)
                   for i, s in enumerate(socks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            timeouts.join_thread(thread, timeouts.medium(), "the UDP clients")
    total = sum(len(got) for got in results.values())
    foreign = {index: [d for d in got if not d.startswith(b"c%d-" % index)] for index, got in results.items()}
    duplicates = {index: len(got) - len(set(got)) for index, got in results.items()}
    observe("received_per_client", {index: len(got) for index, got in results.items()})
    observe("total", total)
    observe.expected("total", f">= {minimum} of {count * burst}")
    for index, got in results.items():
        sent = {b"c%d-m%02d-" % (index, m) + b"p" * 64 for m in range(burst)}
        verify(set(got) <= sent, f"replies to client {index}", "only intact echoes of its own datagrams",
               [d for d in got if d not in sent][:3])
    verify(not any(foreign.values()), "replies delivered to the wrong client", "none", foreign)
    verify(not any(duplicates.values()), "duplicate replies", "none", duplicates)
    verify(total >= minimum, "replies received", f">= {minimum} of {count * burst}", total)


@check("UDP-010", PLATFORM, topic="udp_dead_port",
       clause="a reply to a client whose port is closed does not stop the server: the next client "
              "is served (Windows: WSAECONNRESET swallowed by get_request) "
              "[docs/platform-knowledge.md#udp_dead_port]")
def test_reply_to_dead_port_then_next_client(ss, observe):
    """After replying to a vanished client, the server still answers the next one."""
    failures = []
    base = servers.server_class(ss, "UDPServer")

    def get_request(self):
        try:
            return base.get_request(self)
        except OSError as exc:
            failures.append(exc)
            raise

    with addresses.private_dir() as directory:
        log = instrument.EventLog.create(directory)
        handler = instrument.instrumented(ss.DatagramRequestHandler, "hold", log)
        server = build_server(ss, "UDPServer", handler, INET, get_request=get_request)
        with serve_in_thread(server) as served:
            with clients.dgram_client("inet") as gone:
                gone.sendto(b"gone\n", served.address)
                held = wait_count(log, 1, kind="hold")
            instrument.release(log, "gone")  # the reply now goes to a closed port
            wait_count(log, 1, kind="phase", phase="finish", edge="end")
            with clients.dgram_client("inet") as sock:
                sock.sendto(b"next\n", served.address)
                instrument.release(log, "next")
                data, _ = _recvfrom_or_none(sock)
    observe.summary(summary(failures[0]) if failures else "no error")
    observe("get_request_errors", [summary(exc) for exc in failures])
    observe("next_client_reply", data)
    verify_equal("the first request handled", 1, held)
    verify_equal("reply to the next client", b"released next\n", data)


@check("UDP-011", REQUIRED, requires=("ipv6",),
       clause="a UDPServer subclass with address_family = AF_INET6 serves on ::1 "
              "[https://docs.python.org/3/library/socketserver.html#socketserver.BaseServer.address_family]")
def test_ipv6_udp_echo(ss, observe):
    """An IPv6 UDPServer echoes a datagram and reports a 4-tuple server_address."""
    record = []
    handler = _recording_handler(ss, record)
    try:
        server = build_server(ss, "UDPServer", handler, addresses.loopback("inet6"),
                              address_family=socket.AF_INET6)
    except OSError as exc:
        observe("construction", summary(exc))
        verify(False, "IPv6 UDPServer construction", "succeeds", summary(exc))
    with serve_in_thread(server) as served, clients.dgram_client("inet6") as sock:
        sock.sendto(b"over v6", served.address)
        data, sender = _recvfrom_or_none(sock)
    observe("server_address", served.address)
    observe("reply", data)
    verify_equal("IPv6 server_address length", 4, len(served.address))
    verify_equal("server_address host", "::1", served.address[0])
    verify_equal("reply", b"over v6", data)
    verify_equal("sender of the reply", served.address[:2], sender[:2] if sender else None)
