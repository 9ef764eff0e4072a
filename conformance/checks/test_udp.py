"""UDP-*: UDPServer and datagram requests end to end.

Servers are built and served by :mod:`conformance.tools.lab` (in this
process, or in the subject agent) with ``respond`` handlers on the
implementation's ``DatagramRequestHandler``, which record each request in the
lab's event log and reply; clients are bound
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
import threading

from conformance.api import PLATFORM, REQUIRED, check, verify, verify_equal
from conformance.tools.event_log import wait_count
from conformance.tools.lab import Raised, lab
from conformance.tools.shared_socket import verify_unconnected
from harness.clients import bounded as clients
from harness.core import timeouts
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument

#: Larger than max_packet_size (8192) but below macOS' default UDP send limit (9216).
OVERSIZED = 9000


def _recvfrom_or_none(sock, budget=None):
    try:
        return clients.recvfrom(sock, budget)
    except HarnessTimeout:
        return None, None


def _server(made_lab, class_name="UDPServer", reply="echo", text="", attrs=None, **options):
    """A datagram server whose handler records each request and replies (``respond``,
    agent.BEHAVIOURS); ``handle_error`` records and stays quiet."""
    made = made_lab.build(class_name, behaviour="respond", handler_base="DatagramRequestHandler",
                          options=dict(options, reply=reply, text=text), hooks={"handle_error": "swallow"},
                          checked=True, attrs=attrs)
    if made.error is not None:
        verify(False, f"{class_name} construction", "succeeds", made.error.unless_os_error().summary())
    return made.server


def _handled(made_lab):
    """The data each request handed to the handler, in order."""
    return [event["data"] for event in made_lab.responses()]


@check("UDP-001", REQUIRED, clause="UDPServer + DatagramRequestHandler: the reply goes back to "
                                   "the client "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847-L858]")
def test_echo_roundtrip(impl, observe):
    """A datagram is echoed from the server's address to the sending client."""
    with lab(impl) as made_lab:
        server = _server(made_lab)
        with server.serve() as address, clients.dgram_client("inet") as sock:
            sock.sendto(b"hello udp", address)
            data, sender = _recvfrom_or_none(sock)
        record = _handled(made_lab)
    observe("reply", data)
    observe("sender", sender)
    verify_equal("datagrams the handler received", [b"hello udp"], record)
    verify_equal("reply", b"hello udp", data)
    verify_equal("sender of the reply (the server's address)", address, sender)


def _truncation(impl, max_packet_size=None):
    """Send an oversized datagram then a marker; what the handler and client saw."""
    attrs = {} if max_packet_size is None else {"max_packet_size": max_packet_size}
    with lab(impl) as made_lab:
        server = _server(made_lab, reply="length", attrs=attrs)
        limit = server.facts(attrs=["max_packet_size"]).attrs["max_packet_size"]
        size = max(OVERSIZED, limit + 100)
        with server.serve() as address, clients.dgram_client("inet") as sock:
            sock.sendto(b"x" * size, address)
            sock.sendto(b"marker", address)
            first, _ = _recvfrom_or_none(sock)
            second = None
            if first is not None and first != b"len=6":
                second, _ = _recvfrom_or_none(sock)
        lengths = [event["nbytes"] for event in made_lab.responses()]
    return limit, size, lengths, first, second


@check("UDP-002", PLATFORM, topic="udp_truncation",
       clause="UDPServer reads with recvfrom(max_packet_size = 8192): a longer datagram is "
              "truncated (POSIX) or dropped (Windows, WSAEMSGSIZE swallowed) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L533-L537, "
              "docs/platform-knowledge.md#udp_truncation]")
def test_oversized_datagram_truncated_or_dropped(impl, observe):
    """A 9000-byte datagram reaches the handler cut to 8192 bytes, or not at all; the server serves on."""
    limit, size, lengths, first, second = _truncation(impl)
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
def test_subclass_max_packet_size(impl, observe):
    """With max_packet_size=100 a 9000-byte datagram reaches the handler as 100 bytes (or not at all)."""
    limit, size, lengths, first, second = _truncation(impl, max_packet_size=100)
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
def test_shared_socket_survives_requests(impl, observe):
    """Ending datagram requests leaves the server socket open and serving."""
    with lab(impl) as made_lab:
        server = _server(made_lab)
        fileno = server.facts().fileno  # socket.fileno(), compared with itself (server.fileno() is BIND-016's)
        server.invoke("shutdown_request", args="own_socket_request").result()
        server.invoke("close_request", args="own_socket_request").result()
        after_direct = server.facts().fileno
        if after_direct != fileno:
            server.close()
        verify_equal("server socket fileno after shutdown_request/close_request", fileno, after_direct)
        with server.serve() as address, clients.dgram_client("inet") as sock:
            replies = []
            for index in range(3):
                sock.sendto(b"d%d" % index, address)
                replies.append(_recvfrom_or_none(sock)[0])
            after_requests = server.facts().fileno
    observe("fileno", {"before": fileno, "after_direct_calls": after_direct, "after_requests": after_requests})
    observe("replies", replies)
    verify_equal("replies to three requests", [b"d0", b"d1", b"d2"], replies)
    verify_equal("server socket fileno after three requests", fileno, after_requests)


@check("UDP-005", REQUIRED,
       clause="DatagramRequestHandler.finish always sends the reply datagram, a zero-length one "
              "when nothing was written "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847-L858]")
def test_empty_reply_datagram(impl, observe):
    """A handler that writes nothing still answers with an empty datagram."""
    with lab(impl) as made_lab:
        server = _server(made_lab, reply="fixed", text="")
        with server.serve() as address, clients.dgram_client("inet") as sock:
            sock.sendto(b"say nothing", address)
            data, sender = _recvfrom_or_none(sock)
        record = _handled(made_lab)
    observe("reply", data)
    verify_equal("datagrams handled", [b"say nothing"], record)
    verify_equal("reply datagram", b"", data)
    verify_equal("sender of the empty reply", address, sender)


@check("UDP-006", PLATFORM,
       clause="a zero-length datagram is a request: recvfrom returns (b'', addr) and the handler "
              "runs (measured on Linux) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
def test_zero_length_request(impl, observe):
    """An empty datagram dispatches a request with empty data; the server keeps serving."""
    with lab(impl) as made_lab:
        server = _server(made_lab, reply="prefix", text="got:")
        with server.serve() as address, clients.dgram_client("inet") as sock:
            sock.sendto(b"", address)
            sock.sendto(b"marker", address)
            first, _ = _recvfrom_or_none(sock)
            second = _recvfrom_or_none(sock)[0] if first == b"got:" else None
            record = _handled(made_lab)
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
def test_server_activate_does_not_listen(impl, observe):
    """Constructing a UDPServer succeeds and its socket is not a listening socket."""
    with lab(impl) as made_lab:
        made = made_lab.build("UDPServer", handler_base="DatagramRequestHandler", checked=True)
        if made.error is not None:
            observe("construction", made.error.unless_os_error().summary())
            verify(False, "UDPServer construction", "succeeds (no listen())", made.error.summary())
        server = made.server
        try:
            accepting = server.facts(sockopts=["SO_ACCEPTCONN"]).sockopt("SO_ACCEPTCONN")
            again = server.invoke("server_activate").error
            again = "returned" if again is None else again.unless_os_error().summary()
        finally:
            server.close()
    observe("SO_ACCEPTCONN", accepting)
    observe("server_activate_again", again)
    verify(not accepting, "SO_ACCEPTCONN on the server socket", 0, accepting)
    verify_equal("a second server_activate()", "returned", again)


@check("UDP-008", REQUIRED,
       clause="ThreadingUDPServer: concurrent handlers reply through the shared socket to their "
              "own clients "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
def test_threading_udp_several_clients(impl, observe):
    """Four handlers in flight at once each answer their own client."""
    count = 4
    results = {}
    with lab(impl) as made_lab:
        # each handler waits (bounded) until all four are running, then replies
        server = _server(made_lab, "ThreadingUDPServer", reply="prefix", text="re:", meet=count,
                         meet_timeout=timeouts.short())
        with server.serve() as address, contextlib.ExitStack() as stack:
            socks = [stack.enter_context(clients.dgram_client("inet")) for _ in range(count)]
            for index, sock in enumerate(socks):
                sock.sendto(b"c%d" % index, address)
            for index, sock in enumerate(socks):
                # one reply per handler: if every client's first reply is its
                # own, none can have been misdirected
                results[index] = _recvfrom_or_none(sock)
        met = [event for event in made_lab.responses() if event["met"]]
    observe("handlers_in_flight_together", len(met))
    observe("received", {index: list(got) for index, got in results.items()})
    verify_equal("handlers running at the same time", count, len(met))
    for index, got in results.items():
        verify_equal(f"reply received by client {index}", b"re:c%d" % index, got[0])
        verify_equal(f"sender of client {index}'s reply", address, got[1])


@check("UDP-009", REQUIRED,
       clause="UDPServer answers every datagram of several clients' bursts; replies are intact "
              "and reach their sender (loopback: no loss expected) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
def test_many_datagrams_all_answered(impl, observe):
    """Four clients each send a burst of 20 datagrams (the first alone, then three at once);
    every reply is intact and nearly all arrive."""
    count, burst = 4, 20
    minimum = int(count * burst * 0.9)
    results = {}
    with lab(impl) as made_lab:
        server = _server(made_lab)
        with server.serve() as address, contextlib.ExitStack() as stack:
            socks = [stack.enter_context(clients.dgram_client("inet")) for _ in range(count)]

            def client(index, sock):
                for message in range(burst):
                    sock.sendto(b"c%d-m%02d-" % (index, message) + b"p" * 64, address)
                got = []
                for _ in range(burst):
                    data, _ = _recvfrom_or_none(sock, timeouts.short() if not got else timeouts.absence() * 4)
                    if data is None:
                        break
                    got.append(data)
                results[index] = got

            threads = [threading.Thread(target=client, args=(i, s), name=f"ssc-udp-client-{i}", daemon=True)
                       for i, s in enumerate(socks)]
            # the first client's burst is answered before the others send theirs: a server that
            # stays tied to its first client (a connect()ed socket) answers no one else, whatever
            # the timing (at once, the others' datagrams could all be queued before the connect)
            threads[0].start()
            timeouts.join_thread(threads[0], timeouts.medium(), "the first UDP client")
            # udp-connect: a shared socket its replies connected discards the others' datagrams
            wait_count(made_lab.log, len(results.get(0, ())), kind="phase", phase="finish", edge="end")
            verify_unconnected(made_lab.log, "after the first client's burst was answered", impl, "UDPServer")
            for thread in threads[1:]:
                thread.start()
            for thread in threads[1:]:
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
def test_reply_to_dead_port_then_next_client(impl, observe):
    """After replying to a vanished client, the server still answers the next one."""
    with lab(impl) as made_lab:
        log = made_lab.log
        server = made_lab.build("UDPServer", behaviour="hold", handler_base="DatagramRequestHandler",
                                hooks={"get_request": "record"}, checked=True).built()
        with server.serve() as address:
            with clients.dgram_client("inet") as gone:
                gone.sendto(b"gone\n", address)
                held = wait_count(log, 1, kind="hold")
            instrument.release(log, "gone")  # the reply now goes to a closed port
            wait_count(log, 1, kind="phase", phase="finish", edge="end")
            verify_unconnected(log, "after the reply to the vanished client", impl, "UDPServer")  # udp-connect
            with clients.dgram_client("inet") as sock:
                sock.sendto(b"next\n", address)
                instrument.release(log, "next")
                data, _ = _recvfrom_or_none(sock)
        failures = [Raised.of(event) for event in made_lab.events(kind="hook_return", hook="get_request")
                    if event.get("exc_type")]
    observe.summary(failures[0].summary() if failures else "no error")
    observe("get_request_errors", [failure.summary() for failure in failures])
    observe("next_client_reply", data)
    verify_equal("the first request handled", 1, held)
    verify_equal("reply to the next client", b"released next\n", data)


@check("UDP-011", REQUIRED, requires=("ipv6",),
       clause="a UDPServer subclass with address_family = AF_INET6 serves on ::1 "
              "[https://docs.python.org/3/library/socketserver.html#socketserver.BaseServer.address_family]")
def test_ipv6_udp_echo(impl, observe):
    """An IPv6 UDPServer echoes a datagram and reports a 4-tuple server_address."""
    with lab(impl) as made_lab:
        made = made_lab.build("UDPServer", behaviour="respond", handler_base="DatagramRequestHandler",
                              options={"reply": "echo"}, family="inet6", checked=True)
        if made.error is not None:
            observe("construction", made.error.unless_os_error().summary())
            verify(False, "IPv6 UDPServer construction", "succeeds", made.error.summary())
        with made.server.serve() as address, clients.dgram_client("inet6") as sock:
            sock.sendto(b"over v6", address)
            data, sender = _recvfrom_or_none(sock)
    observe("server_address", address)
    observe("reply", data)
    verify_equal("IPv6 server_address length", 4, len(address))
    verify_equal("server_address host", "::1", address[0])
    verify_equal("reply", b"over v6", data)
    verify_equal("sender of the reply", address[:2], sender[:2] if sender else None)
