"""SERVE-*: the two drivers, handle_request() and serve_forever().

``handle_request()`` waits for one request at most the effective timeout --
``min(socket.gettimeout(), self.timeout)`` over those that are set, forever
if neither is -- and on expiry returns ``handle_timeout()``'s value.
``serve_forever(poll_interval)`` ignores ``self.timeout``, never calls
``handle_timeout()``, and runs ``service_actions()`` once per loop
iteration: after each request and after each ``poll_interval`` without one.

Timing is judged only with ordering bounds that are wide on purpose: a
0.05 s timeout must not take as long as a 1 s one; an idle loop with
``poll_interval=0.05`` must neither spin nor sleep ten intervals.  The upper
bounds grow with the timeout multiplier.  "Blocks" is proved by a call still
running after one :func:`harness.core.timeouts.absence` window, after which the
check releases it with a client.

Not checked: EINTR in ``handle_request()``.  Since PEP 475 the interpreter
retries ``select``/``poll`` itself after a signal handler that returns, so no
Python implementation can observe the interruption and a check could not
fail on any breakage written in Python.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import statistics

import pytest

from conformance.api import (
    REQUIRED,
    VERSION,
    check,
    unsupported,
    verify,
    verify_equal,
    verify_returned,
)
from conformance.tools.child_runs import run_child
from conformance.tools.remote_bench import SENTINEL, bench_server, elapsed_of, recorder_for
from conformance.tools.roundtrip import read_to_eof, try_roundtrip
from conformance.tools.running import Background, LoopThread, owned, serving
from harness.core import clock, prerequisites, timeouts
from harness.core.observations import summary
from harness.serving import servers
from harness.serving.servers import call_bounded, run_handle_request

#: the timeout handle_request() should actually use in SERVE-001
SMALL = 0.05


def _big() -> float:
    """The timeout that must *not* be used: far above SMALL, scaled for slow machines."""
    return max(1.0, 4 * timeouts.absence())


#: the hooks every SERVE server records
RECORDED = {"service_actions": "record", "handle_timeout": "record"}


def _server(impl, recorder, action="returns", **attrs):
    """A TCPServer (a bench server: in-process or in the subject) recording
    service_actions and handle_timeout, its handler doing ``action``."""
    return bench_server(impl, recorder, action, hooks=RECORDED, **attrs)


def _client(server):
    return socket.create_connection(server.server_address, timeout=timeouts.short())


def _actions_reached(recorder, loop, wanted, budget=None, since=0):
    """slow-serve: wait (bounded) until ``wanted`` service_actions() calls, the loop's end, or
    evidence that they will not come: the loop (its waits counted in this process) began more
    than ``wanted`` waits in its selector with fewer calls.  The hook runs between two waits,
    so a loop that keeps it has made ``wanted`` calls once its ``wanted + 1``-th wait began:
    the evidence is an order of events in the loop's own thread, not a timing (a loop without
    the hook made SERVE-005/008/010 each wait out short()).  ``since``: waits begun before this
    phase, which do not count.  Whether ``wanted`` calls came."""
    def decided():
        if recorder.count("service_actions") >= wanted or loop.returned.is_set():
            return True
        return (not loop.remote and loop.counter.waits - since > wanted
                and recorder.count("service_actions") < wanted)

    with contextlib.suppress(timeouts.HarnessTimeout):
        timeouts.wait_until(decided, timeouts.short() if budget is None else budget,
                            f"{wanted} service_actions() calls")
    return recorder.count("service_actions") >= wanted


TIMEOUT_CASES = [
    pytest.param(SMALL, None, id="socket_only"),
    pytest.param(None, SMALL, id="server_only"),
    pytest.param(SMALL, "big", id="socket_smaller"),
    pytest.param("big", SMALL, id="server_smaller"),
]


@check("SERVE-001", REQUIRED, clause="handle_request() waits min(socket.gettimeout(), "
                                     "self.timeout) when both are set, the one that is set "
                                     "otherwise, then calls handle_timeout() once "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L303]")
@pytest.mark.parametrize("socket_timeout,server_timeout", TIMEOUT_CASES)
def test_handle_request_timeout_rule(impl, observe, socket_timeout, server_timeout):
    """handle_request() times out after the smaller timeout and calls handle_timeout() once."""
    big = _big()
    sock_t = big if socket_timeout == "big" else socket_timeout
    server_t = big if server_timeout == "big" else server_timeout
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder, timeout=server_t, socket_timeout=sock_t)) as server:
        start = clock.now()
        call_bounded(server.handle_request, budget=timeouts.short() + big, what="server.handle_request()")
        elapsed = elapsed_of(server, "handle_request", clock.now() - start)
    observe("socket_timeout", sock_t)
    observe("server_timeout", server_t)
    observe("elapsed", round(elapsed, 4))
    observe("handle_timeout_calls", recorder.count("handle_timeout"))
    observe.expected("elapsed", f">= {SMALL * 0.8:.2f} and < {big / 2:.2f}")
    verify(elapsed >= SMALL * 0.8, "time handle_request() waited", f">= {SMALL * 0.8:.3f}s", round(elapsed, 4))
    verify(elapsed < big / 2, "time handle_request() waited", f"< {big / 2:.2f}s (the smaller timeout)",
           round(elapsed, 4))
    verify_equal("handle_timeout() calls", 1, recorder.count("handle_timeout"))
    verify_equal("handlers run", 0, recorder.count("handler"))


@check("SERVE-002", VERSION, clause="on timeout, handle_request() returns handle_timeout()'s "
                                    "value (3.x) "
                                    "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L300-L303]")
def test_handle_request_returns_handle_timeout_value(impl, observe):
    """handle_request() passes handle_timeout()'s return value through."""
    sentinel = SENTINEL  # what the bench server's handle_timeout() returns
    with owned(bench_server(impl, recorder_for(impl), hooks={"handle_timeout": "sentinel"}, timeout=SMALL)) as server:
        result = run_handle_request(server)
    observe("returned_sentinel", result is sentinel)
    observe("returned", repr(result) if result is not sentinel else "<handle_timeout's value>")
    if impl.api_at_least(3, 0):
        verify(result is sentinel, "handle_request() value on timeout", "handle_timeout()'s value", repr(result))
    else:
        verify(result is None, "handle_request() value on timeout (2.x)", None, repr(result))


@check("SERVE-003", REQUIRED, clause="with neither socket timeout nor self.timeout, "
                                     "handle_request() blocks until a request arrives "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L303]")
def test_handle_request_blocks_without_timeout(impl, observe):
    """Without timeouts handle_request() waits (no handle_timeout) and serves the next client."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder)) as server:
        call = Background(server.handle_request, what="server.handle_request()").start()
        returned_early = call.finished_within(timeouts.absence())
        with _client(server):
            released = call.finished_within(timeouts.short())
    observe("returned_within_absence_window", returned_early)
    observe("handle_timeout_calls", recorder.count("handle_timeout"))
    verify(not returned_early, "handle_request() without any timeout",
           f"still waiting after {timeouts.absence():.2f}s", "returned")
    verify_returned(released, "handle_request() after a client connected", timeouts.short())
    verify(call.error is None, "handle_request()", "no exception", repr(call.error))
    verify_equal("handlers run", 1, recorder.count("handler"))
    verify_equal("handle_timeout() calls", 0, recorder.count("handle_timeout"))


@check("SERVE-004", REQUIRED, clause="serve_forever() ignores self.timeout and never calls "
                                     "handle_timeout() "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L218-L245]")
def test_serve_forever_ignores_timeout(impl, observe):
    """With a tiny self.timeout, serve_forever() runs idle iterations without handle_timeout()."""
    recorder = recorder_for(impl)
    server = _server(impl, recorder, "echoes_to_eof", timeout=timeouts.poll())
    with serving(server, count_waits=True) as served:
        reply = try_roundtrip(served.address, b"serve-004")
        served.loop.wait_waits(served.loop.waits + 10)  # idle iterations, counted without a hook
    observe("reply", reply)
    observe("service_actions_calls", recorder.count("service_actions"))
    observe("handle_timeout_calls", recorder.count("handle_timeout"))
    _verify_echo(impl, "reply while self.timeout is set", b"serve-004", reply["data"])
    verify_equal("handle_timeout() calls by serve_forever()", 0, recorder.count("handle_timeout"))


@check("SERVE-005", REQUIRED, clause="service_actions() runs after each poll_interval without a "
                                     "request "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L234-L242]")
def test_service_actions_when_idle(impl, observe):
    """An idle loop calls service_actions() repeatedly."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder)) as server:
        with LoopThread(server, recorder=recorder, count_waits=True) as loop:
            reached = _actions_reached(recorder, loop, 3)
            calls = recorder.count("service_actions")
    observe("idle_service_actions_calls", calls)
    verify(reached and calls >= 3, "service_actions() calls while idle", ">= 3", calls)
    verify_equal("handlers run", 0, recorder.count("handler"))


@check("SERVE-006", REQUIRED, clause="service_actions() runs once per loop iteration, so once "
                                     "after each request "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L234-L242]")
def test_service_actions_after_each_request(impl, observe):
    """With three requests already pending, each one is followed by a service_actions() call."""
    recorder = recorder_for(impl)
    count = 3
    prerequisites.needs_backlog(count)  # coll-bind: BIND-018's, before a connect waits out its budget
    with owned(_server(impl, recorder)) as server:
        clients = [_client(server) for _ in range(count)]  # all pending before the loop starts
        try:
            with LoopThread(server, recorder=recorder):
                recorder.wait(lambda r: r.count("handler") >= count and r.count("service_actions") >= count,
                              timeouts.short(), f"{count} requests and {count} service_actions() calls")
        finally:
            for client in clients:
                client.close()
    sequence = recorder.names("handler", "service_actions")
    last = max(i for i, name in enumerate(sequence) if name == "handler")
    window = sequence[: last + 2]
    observe("sequence", ["h" if name == "handler" else "s" for name in window])
    followed = all(window[i + 1] == "service_actions" for i, name in enumerate(window) if name == "handler"
                   and i + 1 < len(window))
    verify(followed and window[-1] == "service_actions", "event after each request",
           "service_actions()", "".join("h" if n == "handler" else "s" for n in window))


def _verify_echo(impl, what, payload, data):
    """The echo of a handler that reads to b'' (``echoes_to_eof``); where there is none and the
    probes found the request socket raising at its end instead of reading b'' (TUTORIAL-002's),
    PRECONDITION_FAILED naming that owner (coll-handler)."""
    if data != payload:
        broken = servers.class_finding(impl, "TCPServer",
                                       lambda cls: prerequisites.handler_arguments(cls, "request_reads_eof"))
        if broken is not None:
            raise broken
    verify_equal(what, payload, data)


@check("SERVE-007", REQUIRED, clause="serve_forever(): handle requests until shutdown() "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L218-L245]")
def test_serve_forever_serves_sequential_requests(impl, observe):
    """serve_forever() serves several requests one after the other."""
    recorder = recorder_for(impl)
    server = _server(impl, recorder, "echoes_to_eof")
    replies = []
    with serving(server) as served:
        for index in range(3):
            payload = b"request %d" % index
            reply = try_roundtrip(served.address, payload)
            replies.append(reply)
            _verify_echo(impl, f"reply {index}", payload, reply["data"])
    observe("replies", [r["data"] for r in replies])
    verify_equal("handlers run", 3, recorder.count("handler"))


@check("SERVE-008", REQUIRED, clause="serve_forever(poll_interval): an idle loop wakes every "
                                     "poll_interval (measured ~10 calls/s at 0.1) "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L234-L242]")
def test_poll_interval_cadence(impl, observe):
    """An idle loop with poll_interval=0.05 calls service_actions() about 20 times a second."""
    interval = 0.05
    wanted = 6
    upper = interval * 4 * timeouts.multiplier()
    recorder = recorder_for(impl)

    def oversleeps(loop):
        """slow-serve: the idle loop's selector was asked to wait longer than ``upper`` (the
        select() call's own argument, seen by the loop's LoopCounter): every idle gap is at least
        that long, so the cadence is decided without waiting out the budget for six calls."""
        counter = loop.counter
        return getattr(counter, "oversleeps", None) if getattr(counter, "sleeps_for", 0) > upper else None

    with owned(_server(impl, recorder)) as server:
        with LoopThread(server, interval, recorder=recorder, count_waits=True) as loop:
            _actions_reached(recorder, loop, 1)  # the first idle iteration (its select() call is the evidence)
            evidence = oversleeps(loop)
            if evidence is None:
                _actions_reached(recorder, loop, wanted)
    stamps = [info["t"] for info in recorder.infos("service_actions")]
    observe("calls", len(stamps))
    verify(evidence is None, "the idle loop's selector timeout", f"<= {upper:.3f}s", evidence)
    verify(len(stamps) >= wanted, f"service_actions() calls within {timeouts.short():.0f}s", f">= {wanted}",
           len(stamps))
    gaps = [b - a for a, b in zip(stamps[1:], stamps[2:wanted])]
    median = statistics.median(gaps)
    observe("median_interval", round(median, 4))
    observe("calls_per_second", round(1 / median, 1) if median > 0 else None)
    observe.expected("median_interval", f"{interval / 2:.3f}..{upper:.3f}")
    verify(interval / 2 <= median <= upper, "median time between idle service_actions() calls",
           f"between {interval / 2:.3f}s and {upper:.3f}s", round(median, 4))


@check("SERVE-009", REQUIRED, clause="handle_request(): handle one request "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L303]")
def test_handle_request_serves_exactly_one(impl, observe):
    """With two connections pending, handle_request() serves one and leaves the other pending."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder, timeout=_big())) as server:  # bounds a call with nothing pending
        with _client(server) as first, _client(server) as second:
            run_handle_request(server)
            after_one = recorder.count("handler")
            run_handle_request(server)
            after_two = recorder.count("handler")
            replies = [read_to_eof(first, timeouts.absence()), read_to_eof(second, timeouts.absence())]
    if not all(r["eof"] for r in replies):  # prec-bind: requests the probes found never to end are PIPELINE-002's
        broken = prerequisites.serving_needs(type(server), ("request_ends",))
        if broken is not None:
            raise broken
    observe("handlers_after_first_call", after_one)
    observe("handlers_after_second_call", after_two)
    verify_equal("requests served by one handle_request()", 1, after_one)
    verify_equal("requests served after a second handle_request()", 2, after_two)
    verify(all(r["eof"] for r in replies), "both clients", "served (EOF)", replies)


@check("SERVE-010", REQUIRED, clause="service_actions(): called by the serve_forever() loop (in "
                                     "the thread running serve_forever) "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L257-L263, "
                                     "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L242]")
def test_service_actions_runs_in_serving_thread(impl, observe):
    """service_actions() runs in the thread that called serve_forever()."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder)) as server:
        with LoopThread(server, recorder=recorder, count_waits=True) as loop:
            # three requests as well as idle iterations: which iterations call the hook is
            # SERVE-005/006's (slow-serve: a loop that calls it only after requests failed here)
            clients = [_client(server) for _ in range(3)]
            try:
                reached = _actions_reached(recorder, loop, 3)
            finally:
                for client in clients:
                    client.close()
            if not reached and not loop.remote:  # then idle iterations: a loop that calls it only
                # when idle skipped it after the requests (serve_actions_only_when_idle: SERVE-006's)
                _actions_reached(recorder, loop, 3, since=loop.counter.waits)
            serving = loop.serving_ident
    threads = {info["thread"] for info in recorder.infos("service_actions")}
    observe("calls", recorder.count("service_actions"))
    observe("in_serving_thread", threads == {serving})
    verify(recorder.count("service_actions") >= 3, "service_actions() calls", ">= 3",
           recorder.count("service_actions"))
    verify_equal("threads that ran service_actions()", {serving}, threads)


@check("SERVE-011", REQUIRED, clause="with a timeout set, handle_request() waits for a request "
                                     "and serves one that arrives before the deadline without "
                                     "calling handle_timeout() "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L303]")
def test_handle_request_serves_before_deadline(impl, observe):
    """A request arriving during the wait is served; handle_timeout() is not called."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder, timeout=timeouts.short())) as server:
        call = Background(server.handle_request, what="server.handle_request()").start()
        early = call.finished_within(timeouts.absence())
        observe("returned_before_client", early)
        with _client(server):
            served = call.finished_within(timeouts.short())
    observe("returned_after_client", served)
    observe("handle_timeout_calls", recorder.count("handle_timeout"))
    verify(not early, "handle_request() before the client came", "waiting", "returned")
    verify_returned(served, "handle_request() after the client came", timeouts.short())
    verify(call.value is None and call.error is None, "handle_request() result", None,
           repr(call.error or call.value))
    verify_equal("handlers run", 1, recorder.count("handler"))
    verify_equal("handle_timeout() calls", 0, recorder.count("handle_timeout"))



@check("SERVE-012", REQUIRED, clause="an OSError from get_request() (accept()) drops that one "
                                     "request; serve_forever() goes on serving "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L312-L315]")
def test_failed_accept_does_not_stop_loop(impl, observe):
    """After one failed accept() (ECONNABORTED) serve_forever() serves the next client."""
    recorder = recorder_for(impl)
    server = bench_server(impl, recorder, "replies", hooks={"service_actions": "record"},
                          fail_accept={"errno": errno.ECONNABORTED, "count": 1, "accept_first": True})
    with owned(server):
        with LoopThread(server, recorder=recorder) as loop:
            with _client(server) as first:
                failed = recorder.reached(lambda r: r.count("accept_failed") >= 1, timeouts.short())
                first_reply = read_to_eof(first, timeouts.short())
            reply = try_roundtrip(server.server_address, b"", loop=loop)  # serve-dead: a dead loop decides
            running = not loop.returned.is_set()
    observe("accept_failures", recorder.count("accept_failed"))
    observe("first_client", "EOF" if first_reply["eof"] else first_reply["error"])
    observe("second_reply", reply["data"])
    observe("second_reply_error", reply["error"])
    observe("loop_error", summary(loop.error) if loop.error else None)
    verify(failed, "get_request() failure", "raised once for the first client", "never called")
    verify(reply["data"] == b"reply", "reply to the client after the failed accept()", b"reply",
           reply["data"] or reply["error"])
    verify(running and loop.error is None, "serve_forever() after the failed accept()", "still running",
           summary(loop.error) if loop.error else "returned")


def _emfile_server(impl, recorder):
    return bench_server(impl, recorder, "replies", hooks={"service_actions": "record"},
                        fail_accept={"errno": errno.EMFILE, "count": 3})


@check("SERVE-013", REQUIRED, clause="accept() failing with EMFILE (no descriptors left) drops "
                                     "nothing and ends nothing: serve_forever() serves the client "
                                     "once accept() works again "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L312-L315, "
                                     "docs/platform-knowledge.md#emfile]")
@pytest.mark.parametrize("poll_interval", ["poll", None], ids=["poll_interval", "poll_interval_none"])
def test_accept_emfile_does_not_end_loop(impl, observe, poll_interval):
    """accept() raising EMFILE three times does not end serve_forever(); the client is then served."""
    recorder = recorder_for(impl)
    with owned(_emfile_server(impl, recorder)) as server:
        if poll_interval == "poll":
            with LoopThread(server, recorder=recorder) as loop:
                reply = try_roundtrip(server.server_address, b"", loop=loop)  # serve-dead: a dead loop decides
                running = not loop.returned.is_set()
            error, stopped = loop.error, True
        else:
            # serve_forever(None) only wakes on an event: a client, or a wake-up of the implementation's own
            loop = Background(server.serve_forever, None, what="server.serve_forever(None)").start()
            reply = try_roundtrip(server.server_address, b"", loop=loop)
            running = not loop.done.is_set()
            stop = Background(server.shutdown, what="server.shutdown()", watch_wait=True).start()
            stopped = False
            try:
                stop.wait_waiting()
                with contextlib.suppress(OSError), _client(server):  # poke select(None) awake
                    stopped = stop.finished_within(timeouts.short()) and loop.finished_within(timeouts.short())
            finally:
                if not stop.done.is_set():
                    server.server_close()  # do not leave the loop behind on a live socket
            error = loop.error
    observe("accept_failures", recorder.count("accept_failed"))
    observe("reply", reply["data"])
    observe("reply_error", reply["error"])
    observe("loop_error", summary(error) if error else None)
    verify(reply["data"] == b"reply", "reply after three EMFILE accept() failures", b"reply",
           reply["data"] or reply["error"])
    verify(running and error is None, "serve_forever() after EMFILE", "still running, nothing raised",
           summary(error) if error else "returned")
    verify_equal("get_request() failures before the client was served", 3, recorder.count("accept_failed"))
    verify_returned(stopped, "shutdown() and serve_forever()", timeouts.short())


#: SERVE-014's timeout: above one second, which sub-second timeouts cannot tell from a broken deadline
LONG_TIMEOUT = 1.5
#: how early the wait may end (a selector may wake a little before its timeout)
EARLY = 0.1


@check("SERVE-014", REQUIRED, clause="handle_request() with self.timeout above one second waits "
                                     "that long, then calls handle_timeout() and returns (its "
                                     "value is SERVE-002's, a VERSION matter) "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L276-L303]")
def test_handle_request_long_timeout(impl, observe):
    """handle_request() with self.timeout = 1.5 s and no client times out after 1.5 s."""
    recorder = recorder_for(impl)
    with owned(bench_server(impl, recorder, hooks={"handle_timeout": "record"}, timeout=LONG_TIMEOUT)) as server:
        call = Background(server.handle_request, what="server.handle_request()").start()
        returned = call.finished_within(LONG_TIMEOUT + timeouts.short())
    elapsed = call.elapsed()
    if elapsed is not None:
        elapsed = elapsed_of(server, "handle_request", elapsed)
    calls = recorder.infos("handle_timeout")
    observe("elapsed", None if elapsed is None else round(elapsed, 3))
    observe("handle_timeout_calls", len(calls))
    observe.expected("elapsed", f"{LONG_TIMEOUT - EARLY:.2f}..{LONG_TIMEOUT + timeouts.short():.2f}")
    verify_returned(returned, f"handle_request() with timeout={LONG_TIMEOUT}", LONG_TIMEOUT + timeouts.short())
    verify(call.error is None, "handle_request()", "no exception", summary(call.error) if call.error else None)
    verify(elapsed is not None and elapsed >= LONG_TIMEOUT - EARLY, "time handle_request() waited",
           f">= {LONG_TIMEOUT - EARLY:.2f}s", elapsed)
    verify_equal("handle_timeout() calls", 1, len(calls))


#: a descriptor number above FD_SETSIZE (1024 on Linux, macOS and the BSDs)
HIGH_FD = 1030


@check("SERVE-015", REQUIRED, clause="CPython uses selectors.PollSelector where available, so a "
                                     "listening descriptor above FD_SETSIZE serves requests "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L149-L152, "
                                     "docs/platform-knowledge.md#selector]", requires=("poll", "rlimit"))
def test_descriptor_above_fd_setsize(impl, observe):
    """A listening socket on descriptor 1030 serves through serve_forever() and handle_request()."""
    result = run_child(impl.spec, "fd_above_setsize", fd=HIGH_FD)
    if "unsupported" in result:
        unsupported(result["unsupported"])
    forever, single = result["serve_forever"], result["handle_request"]
    observe("listener_fd", result["listener_fd"])
    observe("serve_forever", forever)
    observe("handle_request", single)
    if result["listener_fd"] != HIGH_FD:  # coll-bind: the loop watches what fileno() gives, not the socket
        raise prerequisites.PreconditionFailed(
            "fileno_is_socket", f"server.fileno() gave {result['listener_fd']} for the listening socket "
                                f"moved to descriptor {HIGH_FD}")
    verify_equal("serve_forever() reply", "above FD_SETSIZE\n", forever["reply"])
    verify(forever["loop_error"] is None and forever["shutdown_error"] is None and forever["loop_ended"],
           "serve_forever() and shutdown()", "no exception, both returned", forever)
    verify_equal("handle_request() reply", "handle_request\n", single["reply"])
    verify(single["returned"] and single["error"] is None, "handle_request()", "returned without exception",
           single)


@check("SERVE-016", REQUIRED, clause="serve_forever()/shutdown() need no descriptor beyond the "
                                     "listening socket: with socket.socketpair() (and any new "
                                     "listening socket) failing with EMFILE, requests are served "
                                     "and shutdown() returns "
                                     "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L218-L255]")
@pytest.mark.parametrize("no_listen", [False, True], ids=["no_socketpair", "no_socketpair_no_listen"])
def test_no_wakeup_pair(impl, observe, no_listen):
    """With socket.socketpair() failing (EMFILE), a server still serves after accept() EMFILE and stops."""
    result = run_child(impl.spec, "no_socketpair", no_listen=no_listen)
    observe("result", result)
    verify(result["reply"] == "no wake-up pair\n", "reply without a socket pair", "no wake-up pair\n",
           result["reply"] or result["reply_error"])
    verify(result["loop_error"] is None, "serve_forever()", "no exception", result["loop_error"])
    verify(result["shutdown_error"] is None and result["loop_ended"], "shutdown() and serve_forever()",
           "both returned", {k: result[k] for k in ("shutdown_error", "loop_ended")})
    verify_equal("get_request() failures before the client was served", 3, result["accept_failures"])
