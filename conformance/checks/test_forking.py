"""FORKING-*: ForkingMixIn serves each request in a child process.

Every server here runs in a separate, single-threaded *lab* process
(:mod:`conformance.children.forking_lab`), never in the test process:
a forked handler would inherit the check's client sockets.  The lab logs,
to an event log the check reads, what only the server process can see:
the pid of every ``close_request``/``shutdown_request``/``handle_error``
call, every change of ``active_children``, every reaped child with its
exit status, and the edges of ``server_close``.  Handlers are the
instrumented ones of :mod:`harness.serving.instrument` (``hold`` for concurrency,
``echo``, ``raise``, ``raise_exit``).

Concurrency is proved from intervals (handlers holding at once), limits
from ``max_overlap`` of those intervals plus one ``absence()`` window, and
ordering (``server_close`` waiting for a child) from the order of lines in
the event log, which is one file appended to by every process.

Clauses: ``ForkingMixIn`` in CPython's Lib/socketserver.py at v3.13.0
(``collect_children``, ``process_request``, ``server_close``) and
bpo-1540386.
"""

from __future__ import annotations

import contextlib
import socket

import pytest

from conformance.api import REQUIRED, VERSION, check, verify, verify_equal
from conformance.tools.event_log import handle_intervals, timeline, wait_count
from conformance.tools.forking_lab import (
    calls,
    children_states,
    forking_lab,
    handle_starts,
    loop_stuck,
    process_running,
    reaped,
    wait_gone,
)
from conformance.tools.forking_overlap import (
    children_finding,
    note_unreaped,
    require_children,
    require_overlap,
    uncollected,
    unreaped,
)
from conformance.tools.held_clients import HeldClients, held_clients
from harness.clients import bounded as clients
from harness.core import prerequisites, timeouts
from harness.serving import instrument

FORK = ("fork",)


def _handler_pids(events):
    return [event["pid"] for event in handle_starts(events)]



def _needs_children(lab, pids, events):
    """slow-hang: raise :class:`PreconditionFailed` when the check's own verdict about children
    cannot be reached (:func:`~conformance.tools.forking_overlap.children_finding`).  Without it
    forking_serial and concurrency_forking_waits failed FORKING-003/004/005/014 for those defects,
    each after waiting out its budget for a child to reap."""
    found = children_finding(lab.pid, pids, events)
    if found is not None:
        raise found


def _children_exited(lab, events):
    """fork-wait: whether the handlers ran in children of the lab's server and every one of them has
    exited (it logged all it ever will: an event is written before the process goes on)."""
    children = [pid for pid in _handler_pids(events) if pid != lab.pid]
    return bool(children) and not any(process_running(pid) for pid in children)


def _count(pids):
    """How many children ``active_children`` still names: the observation compared across runs and
    versions (docs/versions.md, ``ssconform diff``) must not carry pids, which differ every run."""
    return None if pids is None else len(pids)

@check("FORKING-001", REQUIRED, requires=FORK,
       clause="ForkingMixIn: each request is handled in a new child process; handlers run "
              "concurrently "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L610-L619, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L620-L633]")
def test_handlers_run_in_separate_processes(impl, observe):
    """Three held handlers run at once, each in its own child process."""
    count = 3
    with forking_lab(impl, "ForkingTCPServer", "hold") as lab:
        with held_clients(lab.address, "inet", count, lab.log) as held:
            started = held.started
            echoes = held.release_all() if started == count else []
        intervals = handle_intervals(lab.log, started)
    pids = [iv.pid for iv in intervals]
    overlap = instrument.max_overlap(intervals, "handle")
    observe("server_pid", lab.pid)
    observe("handler_pids", pids)
    observe("max_overlap", overlap)
    observe.timeline(timeline(intervals))
    verify_equal("handlers holding at once before any release", count, started)
    verify_equal("echoes of the release lines", [b"release\n"] * count, echoes)
    verify(lab.pid not in pids, "handler pids", f"none equal to the server pid {lab.pid}", pids)
    verify_equal("distinct handler processes", count, len(set(pids)))
    verify_equal("max_overlap of handle() intervals", count, overlap)


@check("FORKING-002", REQUIRED, requires=FORK,
       clause="serve_forever never has more than max_children children: at the limit "
              "collect_children waits "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L561-L594]")
def test_max_children_enforced_by_serve_forever(impl, observe):
    """With max_children=2 and four held clients, at most two handlers run at once, and all are served."""
    require_overlap(impl)  # fork-probe: its limit needs handlers that overlap (FORKING-001's)
    count, limit = 4, 2
    with forking_lab(impl, "ForkingTCPServer", "hold", attrs={"max_children": limit}) as lab:
        held = HeldClients(lab.address, "inet", lab.log)
        try:
            for _ in range(count):
                held.connect()
            first = held.wait_holds(limit)
            beyond = wait_count(lab.log, limit + 1, timeouts.absence(), kind="hold")
            echoes = held.release_all() if first == limit else []
        finally:
            for sock in held.sockets:
                sock.close()
        intervals = handle_intervals(lab.log, count)
    overlap = instrument.max_overlap(intervals, "handle")
    observe("held_at_first", first)
    observe("held_while_limit_reached", beyond)
    observe("max_overlap", overlap)
    observe.timeline(timeline(intervals))
    prerequisites.needs_overlap("forking_overlaps", first, limit)  # the limit is reachable: FORKING-001's
    verify(beyond <= limit, "handlers started while max_children were alive", f"<= {limit}", beyond)
    verify_equal("echoes (every client served in the end)", [b"release\n"] * count, echoes)
    verify(overlap <= limit, "max_overlap of handle() intervals", f"<= max_children ({limit})", overlap)


@check("FORKING-003", REQUIRED, requires=FORK,
       clause="finished children are reaped while serving: active_children empties, no zombies "
              "remain (bpo-11109) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L561-L594]")
def test_children_are_reaped(impl, observe):
    """After three requests end, active_children is empty and no child is left as a zombie."""
    require_children(impl)  # fork-probe: the probe's lab saw no child, or none in active_children
    with forking_lab(impl, "ForkingTCPServer", "echo") as lab:
        replies = [clients.roundtrip(lab.address, payload=b"r%d" % i) for i in range(3)]
        wait_count(lab.log, 3, kind="phase", phase="handle", edge="start")
        pids = _handler_pids(lab.events())
        _needs_children(lab, pids, [])  # slow-hang: the server process itself is never reaped nor gone
        # one budget for both observations: children not reaped within it are not reaped while
        # serving, and their zombies are then simply still there (slow-serve: a loop without
        # service_actions() waited out a second budget for them)
        deadline = timeouts.Deadline(timeouts.short(), "active_children to become empty")
        try:
            lab.log.wait_for(lambda evs: children_states(evs)[-1:] == [[]], deadline.remaining(), deadline.what)
        except timeouts.HarnessTimeout:
            pass
        events = lab.events()
        states = children_states(events)
        left = wait_gone(pids, deadline.remaining())
        reaped_pids = sorted({e["child"] for e in lab.events() if e.get("kind") == "reaped"})
        collected = bool(calls(lab.events(), "collect_children"))  # while serving: the lab still runs
    observe("replies", replies)
    observe("handler_pids", pids)
    observe("active_children_last", states[-1] if states else "never logged")
    observe("processes_left", left)
    observe("reaped", reaped_pids)
    verify_equal("echoes", [b"r0", b"r1", b"r2"], replies)
    _needs_children(lab, pids, events)
    if left or not (states and states[-1] == []):
        # fork-wait: found once, by the owner: FORKING-011/014 then do not wait for reaping while serving
        note_unreaped(f"{len(left)} of {len(pids)} finished children left unreaped while serving"
                      + ("" if collected else ", and no collect_children() ran") + " (FORKING-003's lab)", collected)
    verify(states and states[-1] == [], "active_children after the requests ended", [], states[-1:] or None)
    verify(not left, "handler processes still present (zombies) while serving", "none", left)


@check("FORKING-004", VERSION, requires=FORK,
       clause="server_close() waits for all children when block_on_close (3.7+, bpo-31151) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L635-L637]")
def test_server_close_waits_for_children(impl, observe):
    """server_close returns only after a held child ended, leaving active_children empty."""
    require_children(impl)  # fork-probe: the probe's lab saw no child, or none in active_children
    with forking_lab(impl, "ForkingTCPServer", "hold") as lab:
        with held_clients(lab.address, "inet", 1, lab.log) as held:
            verify_equal("held handlers", 1, held.started)
            lab.request_stop()
            # fork-wait: not begun while the serving thread waits for the held child (a blocking
            # collect_children(): api_collect_children_blocks waited out short() here)
            wait_count(lab.log, 1, timeouts.short(), until=loop_stuck, kind="server_close", edge="start")
            early = wait_count(lab.log, 1, timeouts.absence(), kind="server_close", edge="end")
            echo = held.release(0)
            # Below API 3.7 server_close() has already returned: stopping the lab
            # now would kill the child before it logs the end of handle().
            wait_count(lab.log, 1, timeouts.short(), kind="phase", phase="handle", edge="end")
        teardown = lab.stop()
        events = lab.events()
    children: dict = {}  # pid -> "child N": an observation is compared across runs, a pid is not canonical
    order = [
        f"{e['kind']}:{e.get('edge')}"
        + (f" {children.setdefault(e['pid'], f'child {len(children) + 1}')}" if e["kind"] == "phase" else "")
        for e in events
        if e.get("kind") == "server_close" or (e.get("kind") == "phase" and e.get("phase") == "handle")
    ]
    observe("order", order)
    observe("active_children_after_close", _count(teardown.get("active_children")))
    verify_equal("echo of the release line", b"release\n", echo)
    _needs_children(lab, [e["pid"] for e in handle_starts(events)], events)
    kinds = [(e.get("kind"), e.get("phase"), e.get("edge")) for e in events]
    close_end = kinds.index(("server_close", None, "end")) if ("server_close", None, "end") in kinds else None
    handle_end = kinds.index(("phase", "handle", "end")) if ("phase", "handle", "end") in kinds else None
    verify(close_end is not None and handle_end is not None, "server_close end and handle end events",
           "both logged", order)
    if impl.api_at_least(3, 7):
        observe.expected("server_close waits for the child", True)
        verify(not early, "server_close while a child is held", "still waiting", "returned")
        verify(handle_end < close_end, "order in the event log", "handle end before server_close end", order)
        verify_equal("active_children after server_close", [], teardown.get("active_children"))
    else:
        verify(close_end < handle_end, "order in the event log (API < 3.7)", "server_close end first", order)


@check("FORKING-005", REQUIRED, requires=FORK,
       clause="the child exits with os._exit(0) after success and os._exit(1) after any "
              "exception, SystemExit included "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L620-L633]")
@pytest.mark.parametrize("behaviour,expected", [("echo", 0), ("raise", 1), ("raise_exit", 1)],
                         ids=["success", "exception", "SystemExit"])
def test_child_exit_status(impl, observe, behaviour, expected):
    """A handler child's exit status is 0 on success and 1 after an exception."""
    require_children(impl, tracked=False)  # fork-probe: the probe's lab saw its handlers in the server process
    with forking_lab(impl, "ForkingTCPServer", behaviour) as lab:
        # nothing to read: a raising handler leaves no unread data (which would reset the client)
        reply = clients.roundtrip(lab.address, payload=b"")
        wait_count(lab.log, 1, kind="phase", phase="handle", edge="start")
        pids = _handler_pids(lab.events())
        verify_equal("handler processes", 1, len(pids))
        _needs_children(lab, pids, [])  # slow-hang: a handler in the server process is never reaped
        # the exit status is read where the child is reaped: while serving, by server_close(), or
        # by the lab's own teardown (slow-serve: reaping while serving is FORKING-003's clause; a
        # loop without service_actions() made this check wait out its budget for it)
        with contextlib.suppress(timeouts.HarnessTimeout):
            timeouts.wait_until(lambda: not process_running(pids[0]), timeouts.short(), "the handler child to exit")
        lab.stop()
        records = reaped(lab.events(), pids[0])
    observe("reply", reply)
    observe("reaped", records)
    verify(bool(records), f"the child {pids[0]} to be reaped", "reaped", "never reaped")
    verify_equal(f"exit status of the child after {behaviour!r}", expected, records[0].get("exitcode"))


@check("FORKING-006", REQUIRED, requires=FORK,
       clause="the parent calls close_request (close only, no SHUT_WR); the child calls "
              "shutdown_request "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L610-L619]")
def test_parent_closes_child_shuts_down(impl, observe):
    """The parent only closes its copy of the request; the client sees EOF only when the child ends."""
    with forking_lab(impl, "ForkingTCPServer", "hold") as lab:
        with held_clients(lab.address, "inet", 1, lab.log) as held:
            verify_equal("held handlers", 1, held.started)
            sock = held.sockets[0]
            sock.settimeout(timeouts.absence())
            try:
                early = sock.recv(100)
            except socket.timeout:
                early = None
            echo = held.release(0) if early is None else b""
            tail = clients.recv_until_eof(sock)
        wait_count(lab.log, 1, kind="call", method="shutdown_request")
        events = lab.events()
    child = _handler_pids(events)
    parent_calls = [e["method"] for e in events if e.get("kind") == "call" and e.get("pid") == lab.pid]
    child_calls = [e["method"] for e in events if e.get("kind") == "call" and e.get("pid") in child]
    observe("client_while_held", "nothing (still open)" if early is None else repr(early))
    observe("parent_calls", parent_calls)
    observe("child_calls", child_calls)
    verify(early is None, "what the client reads while the child holds the request", "nothing", early)
    verify_equal("echo, then EOF", (b"release\n", b""), (echo, tail))
    verify("close_request" in parent_calls, "parent calls", "close_request", parent_calls)
    verify("shutdown_request" not in parent_calls, "parent calls", "no shutdown_request", parent_calls)
    verify_equal("shutdown_request calls in the child", 1, child_calls.count("shutdown_request"))


@check("FORKING-007", REQUIRED, requires=FORK,
       clause="an Exception in the handler is reported by handle_error in the child "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L620-L633]")
def test_handle_error_runs_in_child(impl, observe):
    """handle_error runs in the handler's child process, not in the server process."""
    with forking_lab(impl, "ForkingTCPServer", "raise") as lab:
        reply = clients.roundtrip(lab.address, payload=b"")
        # fork-wait: a handler child that exited without calling handle_error() never will
        # (forking_child_no_handle_error waited out short() here)
        wait_count(lab.log, 1, until=lambda evs: _children_exited(lab, evs), kind="call", method="handle_error")
        events = lab.events()
    errors = calls(events, "handle_error")
    child = _handler_pids(events)
    observe("reply", reply)
    observe("handle_error", [{"pid": e["pid"], "exc_type": e.get("exc_type")} for e in errors])
    observe("server_pid", lab.pid)
    verify_equal("reply (EOF)", b"", reply)
    verify_equal("handle_error calls", 1, len(errors))
    verify(errors[0]["pid"] in child and errors[0]["pid"] != lab.pid, "process calling handle_error",
           f"the handler child {child}", errors[0]["pid"])
    verify_equal("exception handle_error saw", "ValueError", errors[0].get("exc_type"))


@check("FORKING-008", REQUIRED, requires=FORK,
       clause="ForkingUDPServer: a child handles the datagram and replies through the inherited "
              "socket "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
def test_forking_udp_echo(impl, observe):
    """A ForkingUDPServer child echoes a datagram from the server's address."""
    with forking_lab(impl, "ForkingUDPServer", "echo") as lab:
        with clients.dgram_client("inet") as sock:
            sock.sendto(b"fork me", lab.address)
            data, sender = clients.recvfrom(sock)
        wait_count(lab.log, 1, kind="phase", phase="handle", edge="start")
        pids = _handler_pids(lab.events())
    observe("reply", data)
    observe("handler_pids", pids)
    verify_equal("echo", b"fork me", data)
    verify_equal("sender of the reply (the server socket)", lab.address, sender)
    verify(pids and lab.pid not in pids, "handler process", f"a child, not the server {lab.pid}", pids)


@check("FORKING-009", REQUIRED, requires=("fork", "af_unix"),
       clause="ForkingMixIn composed with UnixStreamServer serves AF_UNIX requests in concurrent "
              "children "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L732-L735]")
def test_forking_unix_stream_overlap(impl, observe):
    """Two held AF_UNIX handlers run at once in two children."""
    count = 2
    with forking_lab(impl, "ForkingUnixStreamServer", "hold") as lab:
        with held_clients(lab.address, "unix", count, lab.log) as held:
            started = held.started
            echoes = held.release_all() if started == count else []
        intervals = handle_intervals(lab.log, started)
    pids = [iv.pid for iv in intervals]
    observe("handler_pids", pids)
    observe.timeline(timeline(intervals))
    verify_equal("AF_UNIX handlers holding at once", count, started)
    verify_equal("echoes", [b"release\n"] * count, echoes)
    verify(lab.pid not in pids and len(set(pids)) == count, "handler processes", "distinct children", pids)


@check("FORKING-010", VERSION, requires=FORK,
       clause="max_children is enforced only by collect_children, which handle_request does not "
              "run before forking (3.3+) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L596-L608]")
def test_handle_request_loop_can_exceed_max_children(impl, observe):
    """A handle_request() loop forks past max_children=2 (API 3.3+)."""
    require_overlap(impl)  # fork-probe: its limit needs handlers that overlap (FORKING-001's)
    count, limit = 3, 2
    attrs = {"max_children": limit, "timeout": timeouts.short()}
    with forking_lab(impl, "ForkingTCPServer", "hold", attrs=attrs, mode="handle_request",
                     requests=count) as lab:
        with held_clients(lab.address, "inet", count, lab.log) as held:
            started = held.started
            for index in range(len(held.sockets)):
                held.release(index)
        teardown = lab.stop()
    observe("held_at_once", started)
    observe("active_children_after_close", _count(teardown.get("active_children")))
    prerequisites.needs_overlap("forking_overlaps", started, limit)  # slow-hang: the limit is reachable
    if impl.api_at_least(3, 3):
        observe.expected("held_at_once", count)
        verify_equal(f"children holding at once under handle_request() with max_children={limit}", count, started)
    else:
        verify(started <= limit, "children holding at once (API < 3.3 collects before forking)", f"<= {limit}",
               started)


@check("FORKING-011", REQUIRED, requires=FORK,
       clause="below max_children, collect_children never waits on a child it did not spawn (bpo-1540386)")
def test_foreign_child_is_not_reaped(impl, observe):
    """A finished child the server process forked itself is left for it to reap."""
    with forking_lab(impl, "ForkingTCPServer", "echo", foreign_child=True) as lab:
        replies = [clients.roundtrip(lab.address, payload=b"f%d" % i) for i in range(2)]
        foreign = lab.ready.get("foreign")
        # fork-wait: as many reaped as the server forked children (its handlers ran in them, not in
        # the server process: forking_serial forks none), and none awaited while serving once
        # FORKING-003 found finished children left unreaped while serving: server_close() reaps them
        # (forking_no_reaping, serve_forever_skips_service_actions, serve_actions_only_after_requests
        # waited out short() here)
        children = [pid for pid in _handler_pids(lab.events()) if pid != lab.pid]
        wait_count(lab.log, len(children), 0 if unreaped() else timeouts.short(), kind="reaped")
        teardown = lab.stop()
        events = lab.events()
    state = teardown.get("foreign") or {}
    observe("replies", replies)
    observe("foreign_child", state)
    observe("reaped_by_server", [e["child"] for e in events if e.get("kind") == "reaped"])
    verify_equal("echoes", [b"f0", b"f1"], replies)
    verify(not reaped(events, foreign), "server reaped the foreign child", "never", reaped(events, foreign))
    verify_equal("the foreign child, when its parent reaps it", {"reaped_by_lab": True, "exitcode": 7}, state)


@check("FORKING-012", REQUIRED, requires=FORK,
       clause="active_children is None until the first fork, then a set holding each running "
              "child's pid "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L610-L619]")
def test_active_children_tracks_children(impl, observe):
    """active_children is None before the first request and holds the child's pid while it runs."""
    with forking_lab(impl, "ForkingTCPServer", "hold") as lab:
        wait_count(lab.log, 1, kind="children")
        before = children_states(lab.events())[:1]
        with held_clients(lab.address, "inet", 1, lab.log) as held:
            verify_equal("held handlers", 1, held.started)
            pid = _handler_pids(lab.events())[0]
            # fork-wait: the lab logs active_children from the serving thread, which cannot log it
            # again while it runs the held handler or waits for its child (loop_stuck)
            try:
                lab.log.wait_for(lambda evs: any(s and pid in s for s in children_states(evs)) or loop_stuck(evs),
                                 timeouts.short(), "the child in active_children")
            except timeouts.HarnessTimeout:
                pass
            during = [s for s in children_states(lab.events()) if s and pid in s]
            held.release(0)
    observe("before_first_request", before)
    observe("while_running", during[:1])
    verify_equal("active_children before the first request", [None], before)
    verify(during, "active_children while the child runs", f"contains {pid}", children_states(lab.events()))


@check("FORKING-013", REQUIRED, requires=FORK,
       clause="when collect_children finds max_children or more alive, it waits until fewer are "
              "left; handle_request runs it on timeout "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L561-L594]")
def test_max_children_restored_on_handle_request_timeout(impl, observe):
    """Three children over max_children=2 under handle_request(): the next timeout reaps down below the limit."""
    require_overlap(impl)  # fork-probe: its limit needs handlers that overlap (FORKING-001's)
    count, limit = 3, 2
    attrs = {"max_children": limit, "timeout": timeouts.short()}
    with forking_lab(impl, "ForkingTCPServer", "hold", attrs=attrs, mode="handle_request", requests=count,
                     final_timeout=timeouts.poll()) as lab:
        with held_clients(lab.address, "inet", count, lab.log) as held:
            started = held.started
            # a collect_children that does not wait at the limit returns at once
            wait_count(lab.log, 1, timeouts.poll() + timeouts.absence(), kind="server", event="handled")
            early = [e.get("active") for e in lab.events() if e.get("event") == "handled"]
            echoes = held.release_all()
        wait_count(lab.log, 1, timeouts.short(), kind="server", event="handled")
        handled = [e.get("active") for e in lab.events() if e.get("event") == "handled"]
    after = handled[0] if handled else None
    observe("held_at_once", started)
    observe("returned_before_release", bool(early))
    observe("active_children_after_timeout", None if after is None else len(after))
    prerequisites.needs_overlap("forking_overlaps", started, limit)  # slow-hang: the limit is reachable
    verify_equal("echoes (every client served)", [b"release\n"] * count, echoes)
    verify(after is not None, "handle_request() timing out after the releases", "returns", "still blocked")
    verify(after is not None and len(after) < limit, "len(active_children) after the handle_request timeout",
           f"< max_children ({limit})", after)


@check("FORKING-014", VERSION, requires=FORK,
       clause="collect_children drops a child that someone else already reaped (ECHILD) from active_children "
              "(bpo-21491, 3.5+)")
def test_child_reaped_elsewhere_is_dropped(impl, observe):
    """A child reaped behind the server's back leaves active_children at the next collect_children()."""
    require_children(impl)  # fork-probe: the probe's lab saw no child, or none in active_children
    with forking_lab(impl, "ForkingTCPServer", "echo", steal_first_child=True) as lab:
        reply = clients.roundtrip(lab.address, payload=b"stolen")
        # one budget for both waits (slow-serve: one decisive observation, not two budgets)
        deadline = timeouts.Deadline(timeouts.short(), "the stolen child to leave active_children")
        wait_count(lab.log, 1, deadline.remaining(), kind="stolen")
        stolen = [e.get("child") for e in lab.events() if e.get("kind") == "stolen"]

        def dropped(events):
            states = children_states(events)
            return bool(stolen) and bool(states) and states[-1] is not None and stolen[0] not in states[-1]

        # fork-wait: not awaited once FORKING-003 found that no collect_children() runs while serving
        # (the premise below then names it, as it did after this wait ran out)
        with contextlib.suppress(timeouts.HarnessTimeout):
            lab.log.wait_for(dropped, 0 if uncollected() else deadline.remaining(), deadline.what)
        events = lab.events()
        states = children_states(events)
        if not stolen:  # slow-hang: nothing to steal: the lab steals a child active_children names
            _needs_children(lab, _handler_pids(lab.events()), lab.events())
    last = states[-1] if states else None
    observe("reply", reply)
    observe("stolen_child_still_active", bool(stolen) and last is not None and stolen[0] in last)
    verify_equal("echo", b"stolen", reply)
    verify_equal("children reaped behind the server's back", 1, len(stolen))
    if not impl.api_at_least(3, 5):
        return
    observe.expected("stolen_child_still_active", False)
    if last is not None and stolen[0] in last:
        after = events[[e.get("kind") for e in events].index("stolen"):]
        prerequisites.premise("children_reaped", bool(calls(after, "collect_children")),
                              "no collect_children() ran after the child was reaped elsewhere")
    verify(last is not None and stolen[0] not in last, "active_children after collect_children()",
           f"without the reaped child {stolen[0]}", last)
