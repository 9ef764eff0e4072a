"""CONCURRENCY-*: every server kind under a swarm, and who runs at once.

Each check takes one server kind per family (``inet`` and ``unix``
variants) and proves two things on it:

* **the concurrency model**, from the handler intervals the instrumented
  handlers record (:mod:`harness.serving.instrument`), never from elapsed time.
  A plain server (``TCPServer``, ``UDPServer`` and their Unix twins) runs
  one handler at a time: several clients are connected (or datagrams
  queued) at once, one handler runs, and a single ``timeouts.absence()``
  window shows that no second handler starts until the first client lets
  its handler end; ``max_overlap`` of all intervals is 1 (the tutorial's
  point: "if the previous handle has not finished, no other request is
  accepted").  A threading or forking server runs N held handlers at
  once: ``max_overlap`` equals N.  Stream handlers are held by the
  ``echo`` behaviour (a handler ends only when its client closes, so N
  echoes received before any close prove N handlers in ``handle()``);
  datagram handlers by the ``hold`` behaviour (a handler answers only
  when the check releases its datagram).  The proof intervals go into
  ``observe.timeline`` for the report's SVG timelines.
* **nothing lost or corrupted** under :func:`harness.clients.swarm.run_swarm`:
  ``SWARM_CLIENTS`` clients (``FORK_SWARM_CLIENTS`` for a forking server,
  which forks per request), each message unique and verified.  Threading
  and forking stream servers get the swarm *released together* (every
  client connected before any sends) while the held handlers are still
  busy: new clients are served although N handlers have not finished.
  A plain stream server gets the clients as they connect (released
  together they would wait in a listen backlog of 5) and must keep
  ``max_overlap`` 1 over the whole swarm.  Datagram swarms are judged by
  "no corrupted reply" and a loose loss bound (:data:`DGRAM_LOSS_BOUND`):
  loopback UDP may drop a datagram when a receive buffer overflows, and
  the swarm does not retry.

Forking servers run in a server process of their own
(:func:`harness.processes.server_process.serve_in_process`), one per check, except
the forking datagram check, which needs a ``hold`` server for the proof
and an ``echo`` server for the swarm (two processes).  The forking stream
server gets ``max_children`` room for every swarm client: with the
default 40, ``collect_children`` would block in ``waitpid`` on children
that all wait for clients that wait for the release, until a read timeout.

Clauses: the documentation of ``ThreadingMixIn``/``ForkingMixIn``
("handle each request in a new thread/process"), CPython's
``ThreadingMixIn.process_request`` and ``ForkingMixIn.process_request``
(Lib/socketserver.py at v3.13.0), and socketserver4/5 of the tutorial.
"""

from __future__ import annotations

from typing import Optional

import pytest

from conformance.api import REQUIRED, check, verify, verify_equal, verify_returned
from conformance.tools.event_log import handle_edges, intervals_of, timeline, wait_handle_edges
from conformance.tools.forking_overlap import require_overlap
from conformance.tools.held_clients import held_clients, hold_datagrams
from conformance.tools.serving import (
    DGRAM_KINDS,
    STREAM_KINDS,
    Served,
    is_forking_name,
    require_kind,
    serve_kind,
)
from conformance.tools.shared_socket import premise_unconnected, seen, verify_unconnected
from harness.clients import bounded as clients
from harness.clients.swarm import SwarmConfig, SwarmResult, run_swarm
from harness.core import timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.serving import instrument

FAMILIES = pytest.mark.parametrize("family", ["inet", "unix"])

#: Clients per swarm (the suite's floor is 100) and messages per client.
SWARM_CLIENTS = 120
#: A forking server forks once per connection or datagram (several ms each).
FORK_SWARM_CLIENTS = 100
STREAM_MESSAGES = 3
DGRAM_MESSAGES = 2
#: A forking datagram server forks once per datagram: one each is plenty.
FORKING_DGRAM_MESSAGES = 1
#: Fraction of datagrams a loopback swarm may lose (no corruption allowed).
DGRAM_LOSS_BOUND = 0.05
#: Clients connected at once in the serialisation proof, and held handlers
#: in the overlap proofs.
QUEUED = 3
HELD = 4
#: A held echo handler's read timeout: longer than any swarm may take (a slow
#: machine must not make the held handlers give up during the swarm).
HELD_OPTIONS = {"recv_timeout": timeouts.long()}
#: max_children for the forking stream swarm: every client holds a child at once.
FORK_ROOM = FORK_SWARM_CLIENTS + HELD + 16


# --------------------------------------------------------------------------- swarm


def _swarm_size(served: Served) -> int:
    return FORK_SWARM_CLIENTS if is_forking_name(served.class_name) else SWARM_CLIENTS


def _swarm(served: Served, kind: str, messages: int, release_together: bool = True,
           budget: Optional[float] = None) -> SwarmResult:
    """``_swarm_size(served)`` clients x ``messages`` against ``served``.

    Each client may take ``medium()`` to get connected (not ``short()``): an
    AF_UNIX backlog that a forking server drains slowly on a loaded machine
    refuses connects with EAGAIN for seconds (gevent, both cores busy: 14 of
    100 clients still refused after 5 s), which says nothing about overlap."""
    config = SwarmConfig(served.address, served.family, kind, clients=_swarm_size(served),
                         messages=messages, size=64, release_together=release_together,
                         connect_timeout=timeouts.medium(), budget=budget)
    return run_swarm(config)


def _released_together(result: SwarmResult) -> bool:
    connected = [c.connected_at for c in result.clients]
    sent = [c.first_sent_at for c in result.clients if c.first_sent_at is not None]
    return None not in connected and bool(sent) and max(connected) <= min(sent)


def _verify_stream_swarm(observe, result: SwarmResult) -> None:
    summary = result.summary
    observe("swarm", {key: summary[key] for key in (
        "clients", "connected", "served", "messages_ok", "lost", "corrupted", "unsent", "errors",
        "wall_time", "latency_p50", "latency_max")})
    verify(result.ok, "stream swarm", f"{summary['clients']} clients x {STREAM_MESSAGES} messages echoed intact",
           result.text())


def _verify_dgram_swarm(observe, result: SwarmResult) -> None:
    summary = result.summary
    observe("swarm", {key: summary[key] for key in (
        "clients", "served", "messages_expected", "messages_ok", "lost", "corrupted", "late", "errors",
        "wall_time")})
    bound = int(DGRAM_LOSS_BOUND * summary["messages_expected"])
    observe.expected("swarm", {"corrupted": 0, "lost": f"<= {bound}", "errors": {}})
    verify_equal("corrupted datagram replies", 0, summary["corrupted"])
    verify_equal("client errors in the datagram swarm", {}, summary["errors"])
    verify(summary["lost"] <= bound, "datagrams without a reply", f"<= {bound} of {summary['messages_expected']}",
           result.text())


# --------------------------------------------------------------------------- stream proofs


def _serialised_stream(served: Served, observe):
    """QUEUED clients connected at once; one handler at a time; returns the proof intervals."""
    with held_clients(served.address, served.family) as held:
        for _ in range(QUEUED):
            held.connect()
        for index in range(QUEUED):
            held.send(index)
        first = held.read_echo(0, timeouts.short())
        # one window: while client 0 stays connected, no other handler may run
        early = held.read_echo(1, timeouts.absence())
        started_while_first_held = len(handle_edges(served.log, "start"))
        held.close(0)
        second = early if early is not None else held.read_echo(1, timeouts.short())
        held.close(1)
        third = held.read_echo(2, timeouts.short())
        held.close(2)
    wait_handle_edges(served.log, "end", QUEUED)
    proof = intervals_of(served.log)
    observe("connected_at_once", QUEUED)
    observe("echoes", [first, second, third])
    observe("echo_of_second_while_first_connected", early)
    observe("handlers_started_while_first_connected", started_while_first_held)
    observe.timeline(timeline(proof))
    expected = [b"held client %d\n" % i for i in range(QUEUED)]
    verify_returned(None not in (first, second, third), "the echoes of the queued clients", timeouts.short())
    verify_equal("echoes, one client after the other", expected, [first, second, third])
    verify(early is None, "echo to client 1 while client 0 was still connected", "none (one handler at a time)",
           early)
    verify_equal("handlers started while the first client stayed connected", 1, started_while_first_held)
    overlap = instrument.max_overlap(proof, "handle")
    observe("max_overlap", overlap)
    verify_equal("max_overlap of handle() intervals", 1, overlap)
    return proof


def _overlapping_stream(served: Served, observe):
    """HELD clients each served while the earlier ones stay connected; then a
    swarm released together while all HELD handlers are still busy.

    The swarm gets what the check's watchdog (``long()``) leaves after the held
    clients, the wait for the handlers' ends (``short()``) and the server's
    teardown (``medium()``): a swarm too slow for it ends with unserved clients
    (FAIL), never as the watchdog's TIMEOUT.  Under eventlet, whose forked
    children share the parent's epoll hub, the same slow swarm ended FAIL or
    TIMEOUT depending on the machine's load (the swarm alone may take ``long()``)."""
    deadline = timeouts.Deadline(timeouts.long() - timeouts.medium() - timeouts.short(), "the check's swarm")
    with held_clients(served.address, served.family) as held:
        echoes = []
        for index in range(HELD):
            held.connect()
            held.send(index)
            echo = held.read_echo(index, timeouts.short())
            echoes.append(echo)
            if echo is None:
                break
        starts = handle_edges(served.log, "start")
        ends_while_held = len(handle_edges(served.log, "end"))
        held_requests = [event["request"] for event in starts]
        result = None
        if len(echoes) == HELD and None not in echoes:
            result = _swarm(served, "stream", STREAM_MESSAGES, budget=max(deadline.remaining(), timeouts.short()))
            still_busy = len([e for e in handle_edges(served.log, "end") if e["request"] in held_requests])
        else:
            still_busy = None
    # the clients that connected (slow-hang: not HELD when one went unanswered: the owner would
    # wait out a second budget for the ends of requests that were never made)
    wait_handle_edges(served.log, "end", len(echoes) + (_swarm_size(served) if result else 0))
    proof = intervals_of(served.log, held_requests)
    overlap = instrument.max_overlap(proof, "handle")
    observe("echoes", echoes)
    observe("handlers_in_handle_before_any_close", len(starts) - ends_while_held)
    observe("max_overlap", overlap)
    observe("workers", sorted({(iv.pid, iv.tid) for iv in proof}))
    observe.timeline(timeline(proof))
    verify_equal("echoes to clients that all stay connected", [b"held client %d\n" % i for i in range(HELD)],
                 echoes)
    verify_equal("handlers in handle() at once before any client closed", HELD, len(starts) - ends_while_held)
    verify_equal("max_overlap of the held handle() intervals", HELD, overlap)
    verify_equal("held handlers that ended during the swarm (their clients never closed)", 0, still_busy)
    _verify_stream_swarm(observe, result)
    verify(_released_together(result), "swarm clients", "all connected before any sent", result.summary)


@check("CONCURRENCY-001", REQUIRED,
       clause="TCPServer/UnixStreamServer are synchronous: each request must be completed before "
              "the next can be started (docs; tutorial socketserver1-3) "
              "[https://docs.python.org/3/library/socketserver.html#module-socketserver]")
@FAMILIES
def test_sync_stream_server_serialises(impl, ss, observe, family):
    """A plain stream server runs one handler at a time, and serves a swarm intact."""
    name = STREAM_KINDS[(family, "sync")]
    require_kind(ss, name)
    observe("server", name)
    with serve_kind(impl, name, "echo") as served:
        _serialised_stream(served, observe)
        result = _swarm(served, "stream", STREAM_MESSAGES, release_together=False)
        wait_handle_edges(served.log, "end", QUEUED + SWARM_CLIENTS)
        everything = intervals_of(served.log)
    _verify_stream_swarm(observe, result)
    overlap = instrument.max_overlap(everything, "handle")
    observe("max_overlap_with_swarm", overlap)
    verify_equal(f"max_overlap of handle() over the proof and the {SWARM_CLIENTS}-client swarm", 1, overlap)


@check("CONCURRENCY-002", REQUIRED,
       clause="ThreadingMixIn: each request is handled in a new thread, so handlers overlap and a "
              "busy handler does not stop new clients "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L698-L706, "
              "https://docs.python.org/3/library/socketserver.html#socketserver.ThreadingMixIn]")
@FAMILIES
def test_threading_stream_server_overlaps(impl, ss, observe, family):
    """A threading stream server runs held handlers at once and serves a swarm meanwhile."""
    name = STREAM_KINDS[(family, "threading")]
    require_kind(ss, name)
    observe("server", name)
    with serve_kind(impl, name, "echo", options=HELD_OPTIONS) as served:
        _overlapping_stream(served, observe)


@check("CONCURRENCY-003", REQUIRED, requires=("fork",),
       clause="ForkingMixIn: each request is handled in a new process, so handlers overlap and a "
              "busy handler does not stop new clients "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L610-L619, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L620-L633]")
@FAMILIES
def test_forking_stream_server_overlaps(impl, ss, observe, family):
    """A forking stream server runs held handlers at once and serves a swarm meanwhile."""
    name = STREAM_KINDS[(family, "forking")]
    require_kind(ss, name)
    require_overlap(impl)  # fork-probe: held handlers that never overlap are FORKING-001's
    observe("server", name)
    # max_children (default 40) would make collect_children() wait for a
    # child to exit while every swarm client waits for the release: room for all
    with serve_kind(impl, name, "echo", options=HELD_OPTIONS, max_children=FORK_ROOM,
                    request_queue_size=FORK_ROOM) as served:
        _overlapping_stream(served, observe)
        observe("server_pid", served.server_pid)
    pids = {pid for pid, _ in observe.observed["workers"]}
    verify(served.server_pid not in pids, "processes that ran the held handlers",
           f"children, not the server process {served.server_pid}", sorted(pids))


# --------------------------------------------------------------------------- datagram proofs


def _serialised_dgram(impl, served: Served, observe) -> None:
    with hold_datagrams(served) as held:
        held.send("d0")
        first = held.wait_holds(1)
        for index in range(1, QUEUED):
            held.send(f"d{index}")
        # one window: while d0's handler holds, no other datagram may be handled
        during = held.wait_holds(2, timeouts.absence())
        replies = []
        for count in range(1, QUEUED + 1):
            if count > 1 and seen(served.log, impl, served.class_name) is not None:
                break  # udp-connect: the rest may never arrive (AF_UNIX drops them); judged below
            if held.wait_holds(count) < count:
                break
            replies.append(held.release(held.holds()[count - 1]))
        order = held.holds()
    wait_handle_edges(served.log, "end", len(order))  # (coll-server: those that started)
    proof = intervals_of(served.log)
    overlap = instrument.max_overlap(proof, "handle")
    observe("queued_at_once", QUEUED)
    observe("held_order", order)
    observe("handlers_holding_while_first_held", during)
    observe("replies", replies)
    observe("max_overlap", overlap)
    observe.timeline(timeline(proof))
    verify_equal("first datagram held", 1, first)
    verify_equal("handlers started while the first datagram's handler held", 1, during)
    verify_equal("max_overlap of handle() intervals", 1, overlap)
    expected = sorted(b"released d%d\n" % i for i in range(QUEUED))
    # udp-connect: a shared socket the replies connected answers no other client (the swarm's)
    premise_unconnected(served.log, served.class_name, impl)
    if sorted(replies) != expected:
        _each_client_answered(impl, served)
    verify_returned(len(replies) >= QUEUED, "the replies to the queued datagrams", timeouts.short())
    verify_equal("replies, one datagram after the other", expected, sorted(replies))


def _each_client_answered(impl, served: Served) -> None:
    """coll-server: CONCURRENCY-004 judges that a plain datagram server handles one datagram at a
    time; that each client's datagrams are answered at all is UDP-009's clause.  When its clients
    missed replies, two clients of a fresh server of the same kind send one datagram each, one
    after the other: if one gets no reply, the check ends PRECONDITION_FAILED naming UDP-009
    (udp_connects_to_client: a reply connect()s the shared socket, which then drops every other
    client).  A server starved only by the swarm (eventlet's hub) answers them, and the check's
    own verdict stands."""
    with serve_kind(impl, served.class_name, "echo") as fresh:
        for index in range(2):
            if index:  # udp-connect: connected to client 0, it discards client 1's datagram
                premise_unconnected(fresh.log, served.class_name, impl)
            try:
                reply = clients.roundtrip(fresh.address, fresh.family, b"client %d\n" % index, dgram=True)
            except (OSError, timeouts.HarnessTimeout) as exc:
                reply = repr(exc)
            if reply != b"client %d\n" % index:
                raise PreconditionFailed("datagrams_answered", f"{served.class_name}: client {index} of two, one "
                                         f"after the other, got {reply!r} for its datagram")


def _overlapping_dgram(served: Served, observe) -> None:
    with hold_datagrams(served) as held:
        for index in range(HELD):
            held.send(f"d{index}")
        holding = held.wait_holds(HELD)
        ended_before_release = len(handle_edges(served.log, "end"))
        replies = [held.release(f"d{index}") for index in range(HELD)] if holding == HELD else []
    wait_handle_edges(served.log, "end", HELD)
    proof = intervals_of(served.log)
    overlap = instrument.max_overlap(proof, "handle")
    observe("handlers_holding_at_once", holding)
    observe("replies", replies)
    observe("max_overlap", overlap)
    observe("workers", sorted({(iv.pid, iv.tid) for iv in proof}))
    observe.timeline(timeline(proof))
    verify_equal("datagram handlers holding at once before any release", HELD, holding)
    verify_equal("handlers that ended before their release", 0, ended_before_release)
    verify_equal("replies after release", [b"released d%d\n" % i for i in range(HELD)], replies)
    verify_equal("max_overlap of the held handle() intervals", HELD, overlap)


@check("CONCURRENCY-004", REQUIRED,
       clause="UDPServer/UnixDatagramServer are synchronous: one datagram is handled at a time "
              "(docs) [https://docs.python.org/3/library/socketserver.html#module-socketserver]")
@FAMILIES
def test_sync_dgram_server_serialises(impl, ss, observe, family):
    """A plain datagram server handles one datagram at a time, and echoes a swarm intact."""
    name = DGRAM_KINDS[(family, "sync")]
    require_kind(ss, name)
    observe("server", name)
    with serve_kind(impl, name, "hold") as served:
        _serialised_dgram(impl, served, observe)
    with serve_kind(impl, name, "echo") as served:
        result = _swarm(served, "dgram", DGRAM_MESSAGES)
        wait_handle_edges(served.log, "end", result.summary["messages_ok"])
        everything = intervals_of(served.log)
    overlap = instrument.max_overlap(everything, "handle")
    observe("max_overlap_with_swarm", overlap)
    verify_equal(f"max_overlap of handle() over the {SWARM_CLIENTS}-client datagram swarm", 1, overlap)
    if result.summary["lost"] or result.summary["errors"]:
        premise_unconnected(served.log, name, impl)  # udp-connect
        _each_client_answered(impl, served)
    _verify_dgram_swarm(observe, result)


@check("CONCURRENCY-005", REQUIRED,
       clause="ThreadingMixIn with UDPServer: each datagram is handled in a new thread; replies "
              "go through the shared socket to the right client "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L698-L706, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
@FAMILIES
def test_threading_dgram_server_overlaps(impl, ss, observe, family):
    """A threading datagram server runs held handlers at once, and echoes a swarm intact."""
    name = DGRAM_KINDS[(family, "threading")]
    require_kind(ss, name)
    observe("server", name)
    with serve_kind(impl, name, "hold") as served:
        _overlapping_dgram(served, observe)
        verify_unconnected(served.log, "after the held handlers replied", impl, name)  # udp-connect
    with serve_kind(impl, name, "echo") as served:
        result = _swarm(served, "dgram", DGRAM_MESSAGES)
    _verify_dgram_swarm(observe, result)


@check("CONCURRENCY-006", REQUIRED, requires=("fork",),
       clause="ForkingMixIn with UDPServer: each datagram is handled in a new process replying "
              "through the inherited socket "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L610-L619, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L620-L633, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
@FAMILIES
def test_forking_dgram_server_overlaps(impl, ss, observe, family):
    """A forking datagram server runs held handlers at once, and echoes a swarm intact."""
    name = DGRAM_KINDS[(family, "forking")]
    require_kind(ss, name)
    require_overlap(impl)  # fork-probe: held handlers that never overlap are FORKING-001's
    observe("server", name)
    with serve_kind(impl, name, "hold") as served:
        _overlapping_dgram(served, observe)
        pids = {pid for pid, _ in observe.observed["workers"]}
        verify(served.server_pid not in pids and len(pids) == HELD, "processes that ran the held handlers",
               f"{HELD} children, not the server process {served.server_pid}", sorted(pids))
        verify_unconnected(served.log, "after the held children replied", impl, name)  # udp-connect
    with serve_kind(impl, name, "echo") as served:
        result = _swarm(served, "dgram", FORKING_DGRAM_MESSAGES)
    _verify_dgram_swarm(observe, result)
