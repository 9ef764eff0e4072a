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
running after one :func:`harness.timeouts.absence` window, after which the
check releases it with a client.

Not checked: EINTR in ``handle_request()``.  Since PEP 475 the interpreter
retries ``select``/``poll`` itself after a signal handler that returns, so no
Python implementation can observe the interruption and a check could not
fail on any breakage written in Python.
"""

from __future__ import annotations

import socket
import statistics
import time

import pytest

from harness import timeouts
from harness.servers import call_bounded, run_handle_request, serve_in_thread

from ._helpers import REQUIRED, VERSION, check, verify, verify_equal, verify_returned
from ._serve_support import (
    Background,
    LoopThread,
    Recorder,
    make_handler,
    owned,
    read_to_eof,
    try_roundtrip,
)

#: the timeout handle_request() should actually use in SERVE-001
SMALL = 0.05


def _big() -> float:
    """The timeout that must *not* be used: far above SMALL, scaled for slow machines."""
    return max(1.0, 4 * timeouts.absence())


def _server(ss, recorder, handler=None, **attrs):
    """A TCPServer subclass recording service_actions and handle_timeout."""

    def service_actions(self):
        recorder.add("service_actions")
        return ss.TCPServer.service_actions(self)

    def handle_timeout(self):
        recorder.add("handle_timeout")
        return ss.TCPServer.handle_timeout(self)

    namespace = {"service_actions": service_actions, "handle_timeout": handle_timeout}
    namespace.update(attrs)
    cls = type("ServeServer", (ss.TCPServer,), namespace)
    return cls(("127.0.0.1", 0), handler or make_handler(ss, recorder))


def _client(server):
    return socket.create_connection(server.server_address, timeout=timeouts.short())


TIMEOUT_CASES = [
    pytest.param(SMALL, None, id="socket_only"),
    pytest.param(None, SMALL, id="server_only"),
    pytest.param(SMALL, "big", id="socket_smaller"),
    pytest.param("big", SMALL, id="server_smaller"),
]


@check("SERVE-001", REQUIRED, clause="#33: handle_request() waits min(socket.gettimeout(), self.timeout) "
       "when both are set, the one that is set otherwise, then calls handle_timeout() once")
@pytest.mark.parametrize("socket_timeout,server_timeout", TIMEOUT_CASES)
def test_handle_request_timeout_rule(ss, observe, socket_timeout, server_timeout):
    """handle_request() times out after the smaller timeout and calls handle_timeout() once."""
    big = _big()
    sock_t = big if socket_timeout == "big" else socket_timeout
    server_t = big if server_timeout == "big" else server_timeout
    recorder = Recorder()
    with owned(_server(ss, recorder, timeout=server_t)) as server:
        if sock_t is not None:
            server.socket.settimeout(sock_t)
        start = time.monotonic()
        call_bounded(server.handle_request, budget=timeouts.short() + big, what="server.handle_request()")
        elapsed = time.monotonic() - start
    observe("socket_timeout", sock_t)
    observe("server_timeout", server_t)
    observe("elapsed", round(elapsed, 4))
    observe("handle_timeout_calls", recorder.count("handle_timeout"))
    observe.expected("elapsed", f">= {SMALL * 0.8:.2f} and < {big / 2:.2f}")
    verify(elapsed >= SMALL * 0.8, "time handle_request() waited", f">= {SMALL * 0.8:.3f}s", round(elapsed, 4))
    verify(elapsed < big / 2, "time handle_request() waited", f"< {big / 2:.2f}s (the smaller timeout)",
           round(elapsed, 4))
    verify_equal(recorder.count("handle_timeout"), 1, "handle_timeout() calls")
    verify_equal(recorder.count("handler"), 0, "handlers run")


@check("SERVE-002", VERSION, clause="#34 (3.x): on timeout, handle_request() returns handle_timeout()'s value")
def test_handle_request_returns_handle_timeout_value(ss, impl, observe):
    """handle_request() passes handle_timeout()'s return value through."""
    sentinel = object()

    class Server(ss.TCPServer):
        timeout = SMALL

        def handle_timeout(self):
            return sentinel

    with owned(Server(("127.0.0.1", 0), ss.BaseRequestHandler)) as server:
        result = run_handle_request(server)
    observe("returned_sentinel", result is sentinel)
    observe("returned", repr(result) if result is not sentinel else "<handle_timeout's value>")
    if impl.api_at_least(3, 0):
        verify(result is sentinel, "handle_request() value on timeout", "handle_timeout()'s value", repr(result))
    else:
        verify(result is None, "handle_request() value on timeout (2.x)", None, repr(result))


@check("SERVE-003", REQUIRED, clause="#33: with neither socket timeout nor self.timeout, handle_request() "
       "blocks until a request arrives")
def test_handle_request_blocks_without_timeout(ss, observe):
    """Without timeouts handle_request() waits (no handle_timeout) and serves the next client."""
    recorder = Recorder()
    with owned(_server(ss, recorder)) as server:
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
    verify_equal(recorder.count("handler"), 1, "handlers run")
    verify_equal(recorder.count("handle_timeout"), 0, "handle_timeout() calls")


@check("SERVE-004", REQUIRED, clause="#36: serve_forever() ignores self.timeout and never calls handle_timeout()")
def test_serve_forever_ignores_timeout(ss, observe):
    """With a tiny self.timeout, serve_forever() runs idle iterations without handle_timeout()."""
    recorder = Recorder()
    server = _server(ss, recorder, make_handler(ss, recorder, "echo"), timeout=timeouts.poll())
    with serve_in_thread(server) as served:
        reply = try_roundtrip(served.address, b"serve-004")
        start = recorder.count("service_actions")
        recorder.wait_count("service_actions", start + 10)
    observe("reply", reply)
    observe("service_actions_calls", recorder.count("service_actions"))
    observe("handle_timeout_calls", recorder.count("handle_timeout"))
    verify_equal(reply["data"], b"serve-004", "reply while self.timeout is set")
    verify_equal(recorder.count("handle_timeout"), 0, "handle_timeout() calls by serve_forever()")


@check("SERVE-005", REQUIRED, clause="#37: service_actions() runs after each poll_interval without a request")
def test_service_actions_when_idle(ss, observe):
    """An idle loop calls service_actions() repeatedly."""
    recorder = Recorder()
    with owned(_server(ss, recorder)) as server:
        with LoopThread(server, recorder=recorder) as loop:
            reached = recorder.reached(lambda r: r.count("service_actions") >= 3 or loop.returned.is_set(),
                                       timeouts.short())
            calls = recorder.count("service_actions")
    observe("idle_service_actions_calls", calls)
    verify(reached and calls >= 3, "service_actions() calls while idle", ">= 3", calls)
    verify_equal(recorder.count("handler"), 0, "handlers run")


@check("SERVE-006", REQUIRED, clause="#37: service_actions() runs once per loop iteration, so once after "
       "each request")
def test_service_actions_after_each_request(ss, observe):
    """With three requests already pending, each one is followed by a service_actions() call."""
    recorder = Recorder()
    count = 3
    with owned(_server(ss, recorder)) as server:
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


@check("SERVE-007", REQUIRED, clause="serve_forever(): handle requests until shutdown()")
def test_serve_forever_serves_sequential_requests(ss, observe):
    """serve_forever() serves several requests one after the other."""
    recorder = Recorder()
    server = _server(ss, recorder, make_handler(ss, recorder, "echo"))
    replies = []
    with serve_in_thread(server) as served:
        for index in range(3):
            payload = b"request %d" % index
            reply = try_roundtrip(served.address, payload)
            replies.append(reply)
            verify_equal(reply["data"], payload, f"reply {index}")
    observe("replies", [r["data"] for r in replies])
    verify_equal(recorder.count("handler"), 3, "handlers run")


@check("SERVE-008", REQUIRED, clause="serve_forever(poll_interval): an idle loop wakes every poll_interval "
       "(measured ~10 calls/s at 0.1)")
def test_poll_interval_cadence(ss, observe):
    """An idle loop with poll_interval=0.05 calls service_actions() about 20 times a second."""
    interval = 0.05
    wanted = 6
    recorder = Recorder()
    with owned(_server(ss, recorder)) as server:
        with LoopThread(server, interval, recorder=recorder) as loop:
            recorder.reached(lambda r: r.count("service_actions") >= wanted or loop.returned.is_set(),
                             timeouts.short())
    stamps = [info["t"] for info in recorder.infos("service_actions")]
    observe("calls", len(stamps))
    verify(len(stamps) >= wanted, f"service_actions() calls within {timeouts.short():.0f}s", f">= {wanted}",
           len(stamps))
    gaps = [b - a for a, b in zip(stamps[1:], stamps[2:wanted])]
    median = statistics.median(gaps)
    upper = interval * 4 * timeouts.multiplier()
    observe("median_interval", round(median, 4))
    observe("calls_per_second", round(1 / median, 1) if median > 0 else None)
    observe.expected("median_interval", f"{interval / 2:.3f}..{upper:.3f}")
    verify(interval / 2 <= median <= upper, "median time between idle service_actions() calls",
           f"between {interval / 2:.3f}s and {upper:.3f}s", round(median, 4))


@check("SERVE-009", REQUIRED, clause="handle_request(): handle one request")
def test_handle_request_serves_exactly_one(ss, observe):
    """With two connections pending, handle_request() serves one and leaves the other pending."""
    recorder = Recorder()
    with owned(_server(ss, recorder, timeout=_big())) as server:  # bounds a call with nothing pending
        with _client(server) as first, _client(server) as second:
            run_handle_request(server)
            after_one = recorder.count("handler")
            run_handle_request(server)
            after_two = recorder.count("handler")
            replies = [read_to_eof(first, timeouts.absence()), read_to_eof(second, timeouts.absence())]
    observe("handlers_after_first_call", after_one)
    observe("handlers_after_second_call", after_two)
    verify_equal(after_one, 1, "requests served by one handle_request()")
    verify_equal(after_two, 2, "requests served after a second handle_request()")
    verify(all(r["eof"] for r in replies), "both clients", "served (EOF)", replies)


@check("SERVE-010", REQUIRED, clause="service_actions(): called by the serve_forever() loop (in the thread "
       "running serve_forever)")
def test_service_actions_runs_in_serving_thread(ss, observe):
    """service_actions() runs in the thread that called serve_forever()."""
    recorder = Recorder()
    with owned(_server(ss, recorder)) as server:
        with LoopThread(server, recorder=recorder) as loop:
            recorder.reached(lambda r: r.count("service_actions") >= 3 or loop.returned.is_set(),
                             timeouts.short())
            serving = loop.thread.ident
    threads = {info["thread"] for info in recorder.infos("service_actions")}
    observe("calls", recorder.count("service_actions"))
    observe("in_serving_thread", threads == {serving})
    verify(recorder.count("service_actions") >= 3, "service_actions() calls", ">= 3",
           recorder.count("service_actions"))
    verify_equal(threads, {serving}, "threads that ran service_actions()")


@check("SERVE-011", REQUIRED, clause="#33: with a timeout set, handle_request() waits for a request and "
       "serves one that arrives before the deadline without calling handle_timeout()")
def test_handle_request_serves_before_deadline(ss, observe):
    """A request arriving during the wait is served; handle_timeout() is not called."""
    recorder = Recorder()
    with owned(_server(ss, recorder, timeout=timeouts.short())) as server:
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
    verify_equal(recorder.count("handler"), 1, "handlers run")
    verify_equal(recorder.count("handle_timeout"), 0, "handle_timeout() calls")

