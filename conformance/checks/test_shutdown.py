"""SHUTDOWN-*: stopping serve_forever(), closing the server, and their quirks.

``shutdown()`` asks the loop to stop and blocks until ``serve_forever`` has
returned; it must be called from another thread.  The request is a flag that
``serve_forever`` clears only on its way out, which gives the documented
edge cases: a ``shutdown()`` issued before the loop starts makes the next
``serve_forever`` return at once; one issued with no loop ever following
blocks forever; one issued after the loop returned returns at once and
leaves the flag set for the next ``serve_forever`` (``BaseServer.serve_forever``
and ``shutdown`` in CPython's Lib/socketserver.py at v3.13.0, lines 218-255).

Each check drives ``serve_forever`` with :class:`~conformance.tools.running.LoopThread`
(several loops per server, no implicit close) and proves "still blocked" with
one :func:`harness.core.timeouts.absence` window.  "The shutdown request is
pending" is established without private attributes: the ``shutdown()`` call
runs in a thread whose profile function notes when it starts to *wait*
(:class:`~conformance.tools.running.Background` with ``watch_wait``), which it can only
do after it has set the flag.

The two PLATFORM checks mostly observe: how long ``shutdown()`` takes at
``poll_interval=0.5`` (the stdlib polls; an implementation may wake at once),
and what the loop does when ``server_close()`` pulls the socket from under
it (PollSelector: it spins until ``shutdown()``; SelectSelector: it raises).
Both fail when the loop cannot be stopped; SHUTDOWN-012 also fails when the
loop ends by itself without an exception, or with one other than
``OSError``/``ValueError``.  Its ``select`` variant runs the same scenario in
a child interpreter without ``PollSelector`` (:mod:`conformance.children.no_poll`),
since the selector is chosen when the implementation is imported.

SHUTDOWN-013 runs a served session, ``shutdown()`` and ``server_close()``
under ``warnings.catch_warnings`` with ``ResourceWarning`` always shown and
a ``gc.collect()``: any socket the server opened (listener, requests, a
wake-up pair) and left to the garbage collector shows up as a warning.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import warnings

import pytest

from conformance.api import (
    PLATFORM,
    REQUIRED,
    VERSION,
    check,
    verify,
    verify_equal,
    verify_returned,
)
from conformance.tools.child_runs import closed_under_loop_without_poll
from conformance.tools.closed_loop import closed_under_loop
from conformance.tools.recorder import Recorder
from conformance.tools.remote_bench import (
    bench_server,
    elapsed_of,
    ended_of,
    has_attribute,
    recorder_for,
    subject_of,
)
from conformance.tools.roundtrip import try_roundtrip
from conformance.tools.running import Background, LoopThread, owned
from harness.core import clock, prerequisites, timeouts
from harness.core.observations import summary
from harness.serving import servers
from harness.serving.servers import call_bounded
from harness.subject.mirror import NeedsInProcess


class _Marker(Exception):
    """Raised inside a with block on purpose."""


def _server(impl, recorder, action="returns", class_name="TCPServer", handler_opts=None, **attrs):
    """A bench server (TCPServer by default; in-process or in the subject) recording
    service_actions and get_request, with a
    :func:`~conformance.tools.handlers.recording_handler` doing ``action``;
    ``attrs`` become class attributes."""
    return bench_server(impl, recorder, action, class_name=class_name, action_options=handler_opts,
                        hooks={"service_actions": "record", "get_request": "record"}, **attrs)


def _client(server):
    return socket.create_connection(server.server_address, timeout=timeouts.short())


def _loop_started(loop):
    """Wait until ``loop`` (counting its waits) ran an iteration -- its second
    selector wait began -- or returned; counted without service_actions()."""
    try:
        timeouts.wait_until(lambda: loop.counter.waits >= 2 or loop.returned.is_set(), timeouts.short(),
                            "an iteration of serve_forever()")
    except timeouts.HarnessTimeout:
        return False
    return True


@check("SHUTDOWN-001", REQUIRED, clause="shutdown() stops the serve_forever loop and blocks until "
                                        "the loop has finished "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L247-L255]")
def test_shutdown_waits_for_loop(impl, observe):
    """shutdown() stays blocked while a request is in progress and returns once the loop ended."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder, "waits_for_release")) as server:
        with LoopThread(server, recorder=recorder) as loop:
            with _client(server):
                recorder.wait_count("hold", 1)
                stop = Background(server.shutdown, what="server.shutdown()").start()
                early = stop.finished_within(timeouts.absence())
                recorder.add("release")
                returned = stop.finished_within(timeouts.short())
                ended = loop.returned_within(timeouts.short())
    done = recorder.first("handler_done")
    stop_ended = ended_of(server, "shutdown", stop.ended_at)  # the handler's clock: the subject's, remotely
    observe("returned_while_handler_busy", early)
    observe("returned_after_release", returned)
    observe("loop_ended", ended)
    # the premise: the loop is busy in the handler, which a plain server runs in the loop's own
    # thread (CONCURRENCY-001's); one run in another thread leaves the loop free (coll-handler)
    held = recorder.first("hold")
    if early and not loop.remote and held is not None:
        prerequisites.premise("plain_handler_in_loop", held.get("thread") == loop.thread.ident,
                              "the handler ran in a thread other than serve_forever()'s")
    verify(not early, "shutdown() while the loop is busy in a handler", "still blocked", "returned")
    verify_returned(returned, "shutdown() after the handler finished", timeouts.short())
    verify(ended, "serve_forever()", "returned", "still running")
    verify(done is not None and done["t"] <= stop_ended, "handler end vs shutdown() return",
           "the handler finished first", done)


@check("SHUTDOWN-002", REQUIRED, clause="shutdown() called in another thread before "
                                        "serve_forever() starts makes serve_forever() return "
                                        "immediately, then shutdown() returns "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L225-L255]")
def test_shutdown_before_serve_forever(impl, observe):
    """A pending shutdown() makes the next serve_forever() return without an iteration."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder)) as server:
        stop = Background(server.shutdown, what="server.shutdown()", watch_wait=True).start()
        stop.wait_waiting()
        with LoopThread(server, recorder=recorder, count_waits=True) as loop:
            _loop_started(loop)
            iterations = loop.counter.waits  # a loop that returned at once never waited
            returned = loop.returned.is_set()
            observe("serve_forever_returned", returned)
            observe("iterations", iterations)
            verify(returned and iterations == 0, "serve_forever() with a shutdown pending",
                   "returned without an iteration", f"iterations={iterations}, returned={returned}")
            released = stop.finished_within(timeouts.short())
    observe("shutdown_returned", released)
    verify_returned(released, "the pending shutdown()", timeouts.short())


@check("SHUTDOWN-003", REQUIRED, clause="shutdown() with no serve_forever() running blocks (until "
                                        "a serve_forever() runs) [bpo-39797, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L247-L255]")
def test_shutdown_without_loop_blocks(impl, observe):
    """shutdown() waits for a loop that is not running; starting serve_forever() releases it."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder)) as server:
        stop = Background(server.shutdown, what="server.shutdown()").start()
        early = stop.finished_within(timeouts.absence())
        with LoopThread(server, recorder=recorder) as loop:
            released = stop.finished_within(timeouts.short())
            ended = loop.returned_within(timeouts.short())
    observe("returned_without_loop", early)
    observe("returned_after_serve_forever", released)
    verify(not early, "shutdown() with no serve_forever() running",
           f"blocked for {timeouts.absence():.2f}s", "returned")
    verify(released and ended, "shutdown() and serve_forever() after the loop started", "both returned",
           {"shutdown": released, "serve_forever": ended})


@check("SHUTDOWN-004", REQUIRED, clause="serve_forever() can be run again after shutdown() "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L218-L245]")
def test_serve_again_after_shutdown(impl, observe):
    """A server serves, stops, and serves again."""
    recorder = recorder_for(impl)
    replies = []
    with owned(_server(impl, recorder, "replies")) as server:
        for round_ in range(2):
            with LoopThread(server, recorder=recorder, count_waits=True) as loop:
                _loop_started(loop)
                running = not loop.returned.is_set()
                reply = try_roundtrip(server.server_address, b"", budget=timeouts.short()) if running else None
            replies.append(reply["data"] if reply else None)
            observe("replies", replies)
            verify(running, f"serve_forever() round {round_ + 1}", "running", "returned at once")
            verify_equal(f"reply in round {round_ + 1}", b"reply", reply["data"])


@check("SHUTDOWN-005", REQUIRED, clause="shutdown() after serve_forever() returned returns at "
                                        "once but leaves the request set: the next "
                                        "serve_forever() returns immediately and clears it "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L243-L255]")
def test_stale_shutdown_request(impl, observe):
    """The stale-flag quirk: one extra shutdown() costs exactly one serve_forever() call."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder, "replies")) as server:
        with LoopThread(server, recorder=recorder, count_waits=True) as loop:
            _loop_started(loop)
        late = Background(server.shutdown, what="late server.shutdown()").start()
        late_returned = late.finished_within(timeouts.short())
        observe("late_shutdown_returned", late_returned)
        verify(late_returned, "shutdown() after serve_forever() returned", "returns at once", "blocked")

        with LoopThread(server, recorder=recorder, count_waits=True) as second:
            _loop_started(second)
            second_iterations = second.counter.waits
            second_returned = second.returned.is_set()
        observe("second_loop", {"returned": second_returned, "iterations": second_iterations})
        verify(second_returned and second_iterations == 0, "the serve_forever() after the late shutdown()",
               "returned without an iteration",
               {"returned": second_returned, "iterations": second_iterations})

        with LoopThread(server, recorder=recorder, count_waits=True) as third:
            _loop_started(third)
            running = not third.returned.is_set()
            reply = try_roundtrip(server.server_address, b"") if running else {"data": None}
        observe("third_loop_reply", reply["data"])
        verify(running, "the next serve_forever()", "running (the request was cleared)", "returned at once")
        verify_equal("reply from the third loop", b"reply", reply["data"])


@check("SHUTDOWN-006", REQUIRED, clause="once shutdown has been requested, a connection that "
                                        "becomes readable is not accepted [bpo-35017, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L234-L238]")
def test_no_accept_after_shutdown_request(impl, observe):
    """A connection arriving while shutdown() is pending is never accepted or handled."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder)) as server:
        with _client(server):  # warm-up request: the loop is running once it has served it
            # serve_forever(None): only the client can wake the loop's selector, however long
            # the shutdown request took to be set (a round trip, remotely) -- a poll timeout in
            # between would let the loop leave on its own, and a loop that accepts it go uncaught
            with LoopThread(server, recorder=recorder, count_waits=True, untimed=True) as loop:
                loop.counter.wait_waits(2)  # its second wait: the warm-up iteration is over
                before = (recorder.count("get_request"), recorder.count("handler"))
                stop = Background(server.shutdown, what="server.shutdown()", watch_wait=True).start()
                stop.wait_waiting()
                with _client(server):
                    returned = stop.finished_within(timeouts.short())
                    ended = loop.returned_within(timeouts.short())
                after = (recorder.count("get_request"), recorder.count("handler"))
    observe("get_request_handler_before", before)
    observe("get_request_handler_after", after)
    observe("shutdown_returned", returned)
    verify_equal("warm-up request (get_request, handler)", (1, 1), before)
    verify(returned and ended, "shutdown()", "returned with the loop ended", {"shutdown": returned,
                                                                             "loop": ended})
    verify_equal("(get_request, handler) calls after shutdown was requested", before, after)


@check("SHUTDOWN-007", REQUIRED, clause="if a BaseException escapes serve_forever(), shutdown() "
                                        "waiters are released "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L243-L245]")
def test_base_exception_releases_shutdown(impl, observe):
    """A SystemExit leaving serve_forever() still lets a waiting shutdown() return."""
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder, "waits_for_release", handler_opts={"exc": SystemExit("shutdown-007")})) as server:
        with LoopThread(server, recorder=recorder) as loop:
            with _client(server):
                recorder.wait_count("hold", 1)
                stop = Background(server.shutdown, what="server.shutdown()", watch_wait=True).start()
                stop.wait_waiting()
                recorder.add("release")
                ended = loop.returned_within(timeouts.short())
                released = stop.finished_within(timeouts.short())
    observe("serve_forever_raised", type(loop.error).__name__ if loop.error else None)
    observe("shutdown_returned", released)
    # the clause's premise is a SystemExit that escapes serve_forever(): PIPELINE-009 owns that
    # (3.6+; a plain server that runs its handlers in threads, or swallows the SystemExit, has none)
    if impl.api_at_least(3, 6):
        prerequisites.premise("base_exception_propagates", not ended or isinstance(loop.error, SystemExit),
                              f"serve_forever() ended with {loop.error!r} after the handler raised SystemExit")
    verify(ended and isinstance(loop.error, SystemExit), "serve_forever()", "ended by SystemExit",
           repr(loop.error) if ended else "still running")
    verify_returned(released, "the waiting shutdown()", timeouts.short())


@check("SHUTDOWN-008", REQUIRED, clause="after serving, server_close() closes the listening "
                                        "socket (clients are refused) and may be called again "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L484-L490]")
def test_server_close_after_serving(impl, observe):
    """server_close() after a served session releases the port; a second call is harmless."""
    recorder = recorder_for(impl)
    with LoopThread(_server(impl, recorder, "replies"), recorder=recorder, count_waits=True) as loop:
        server = loop.server
        _loop_started(loop)
        reply = try_roundtrip(server.server_address, b"")
    address = server.server_address
    call_bounded(server.server_close, what="server.server_close()")
    second = None
    try:
        call_bounded(server.server_close, what="second server.server_close()")
    except Exception as exc:
        second = exc
    try:
        fileno_after = server.socket.fileno()
    except OSError as exc:  # the observation (Python 2's closed socket raises EBADF)
        fileno_after = f"raised {summary(exc)}"
    observe("reply", reply["data"])
    observe("fileno_after_close", fileno_after)
    observe("second_close", summary(second) if second else "ok")
    verify_equal("reply while serving", b"reply", reply["data"])
    verify_equal("socket.fileno() after server_close()", -1, fileno_after)
    verify(second is None, "second server_close()", "no exception", summary(second) if second else None)
    try:
        with socket.create_connection(address, timeout=timeouts.short()):
            refused = None
    except OSError as exc:
        refused = exc
    observe("connect_after_close", summary(refused) if refused else "connected")
    verify(refused is not None, "connecting after server_close()", "refused (OSError)", "connected")


@check("SHUTDOWN-009", VERSION, clause="__enter__ returns the server; __exit__ calls "
                                       "server_close() and returns a false value, so exceptions "
                                       "propagate (3.6+) [bpo-26404, "
                                       "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L385-L389]")
def test_context_manager(impl, observe):
    """with server: gives the server, closes it on exit, and lets exceptions through."""
    recorder = recorder_for(impl)
    closing = {"server_close": "record"}  # counts the server_close() calls
    server = bench_server(impl, recorder, hooks=closing)
    if not impl.api_at_least(3, 6):
        call_bounded(server.server_close, what="server.server_close()")
        verify(not has_attribute(server, "__enter__"), "context manager (API < 3.6)", "absent", "present")
        return
    if not has_attribute(server, "__enter__"):  # prec-bind: this clause's verdict, not a TypeError
        call_bounded(server.server_close, what="server.server_close()")
        verify(False, "context manager (API >= 3.6)", "__enter__ and __exit__", "no __enter__")
    entered = None
    propagated = False
    try:
        with server as entered:
            raise _Marker("shutdown-009")
    except _Marker:
        propagated = True
    closes_by_exit = recorder.count("server_close")
    fileno_after = server.socket.fileno()
    with contextlib.suppress(Exception):
        call_bounded(server.server_close, what="server.server_close()")  # cleanup if __exit__ did not
    other = bench_server(impl, recorder_for(impl), hooks=closing)
    try:
        exit_value = call_bounded(other.__exit__, _Marker, _Marker("x"), None, what="server.__exit__()")
    finally:
        with contextlib.suppress(Exception):
            call_bounded(other.server_close, what="server.server_close()")
    observe("enter_returned_server", entered is server)
    observe("exception_propagated", propagated)
    observe("server_close_calls_by_exit", closes_by_exit)
    observe("exit_value", repr(exit_value))
    verify(entered is server, "__enter__() value", "the server", repr(entered))
    verify(propagated, "exception raised in the with block", "propagated", "swallowed")
    verify_equal("server_close() calls by __exit__", 1, closes_by_exit)
    verify_equal("socket.fileno() after the with block", -1, fileno_after)
    verify(not exit_value, "__exit__() return value", "false", repr(exit_value))


@check("SHUTDOWN-010", REQUIRED, clause="shutdown() called from a ThreadingMixIn handler thread "
                                        "returns once the loop has exited "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L247-L255]")
def test_shutdown_from_threading_handler(impl, observe):
    """A handler thread of a threading server can stop the loop with shutdown()."""
    # the handler calls self.server.shutdown(): a server that gives its handlers something else
    # (finish_request(), PIPELINE-014's) cannot be judged here (coll-handler)
    broken = servers.class_finding(impl, "ThreadingTCPServer",
                                   lambda cls: prerequisites.handler_arguments(cls, "handler_gets_server"))
    if broken is not None:
        raise broken
    recorder = recorder_for(impl)
    server = _server(impl, recorder, "shuts_down", class_name="ThreadingTCPServer", daemon_threads=True)
    with owned(server):
        with LoopThread(server, recorder=recorder) as loop:
            with _client(server):
                returned = recorder.reached(lambda r: r.count("shutdown_returned") >= 1, timeouts.short())
                ended = returned and loop.returned_within(timeouts.short())
            observe("shutdown_returned_in_handler", returned)
            observe("loop_ended", ended)
            # judged inside the block: a deadlocked loop must end FAIL, not hang the teardown
            verify(returned, "shutdown() called in the handler thread", "returned", "blocked")
            verify(ended, "serve_forever()", "returned", "still running")


@check("SHUTDOWN-011", PLATFORM, topic="shutdown_latency",
       clause="an idle loop notices shutdown() within poll_interval (0.5 s here) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L218-L255, "
              "docs/platform-knowledge.md#shutdown_latency]")
def test_shutdown_latency(impl, observe):
    """How long shutdown() takes for an idle loop with poll_interval=0.5."""
    interval = 0.5
    recorder = recorder_for(impl)
    with owned(_server(impl, recorder)) as server:
        with _client(server):  # served at once, so the loop is known to be running
            with LoopThread(server, interval, recorder=recorder, count_waits=True) as loop:
                loop.counter.wait_waits(2)  # its second wait: the warm-up iteration is over
                start = clock.now()
                call_bounded(server.shutdown, budget=timeouts.short() + interval, what="server.shutdown()")
                latency = elapsed_of(server, "shutdown", clock.now() - start)
                ended = loop.returned_within(timeouts.short())
    bound = interval + timeouts.absence()
    observe("poll_interval", interval)
    observe("latency", round(latency, 4))
    observe("wakeup", "immediate" if latency < interval / 10 else "at the next poll")
    observe.summary("<= poll_interval" if latency <= bound else "> poll_interval")
    verify(ended, "serve_forever()", "returned", "still running")
    verify(latency <= bound, "shutdown() latency", f"<= poll_interval + slack ({bound:.2f}s)", round(latency, 4))


@check("SHUTDOWN-012", PLATFORM, clause="server_close() while serve_forever() runs in another "
                                        "thread: with poll the loop spins until shutdown(), with "
                                        "select it raises; it may end early only by raising "
                                        "(OSError/ValueError), and shutdown() still stops it "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L231-L242, "
                                        "docs/platform-knowledge.md#server_close_during_serve]", topic="server_close_during_serve")
@pytest.mark.parametrize("selector", ["native", "select"])
def test_server_close_during_serve_forever(ss, impl, observe, selector):
    """What the loop does when its socket is closed under it; shutdown() still ends it."""
    if selector == "native":
        seen = closed_under_loop(ss, impl=impl)
    else:
        seen = closed_under_loop_without_poll(impl.spec)
    for key in ("loop_waits_in_window", "window", "idle_calls_expected", "serve_forever_error",
                "shutdown_returned", "returned_before_shutdown", "serve_forever_error_type"):
        observe(key, seen[key])
    # the verdict is what reports compare (the counts and the window are
    # measurements, kept in the record); platform_notes documents the native
    # selector of each OS, so the simulated SelectSelector run is not compared with it
    observe.summary(seen["behaviour"])
    if selector != "native":
        observe.undocumented()
    early = seen["returned_before_shutdown"]
    error_type = seen["serve_forever_error_type"]
    verify(not (early and error_type is None), "serve_forever() after server_close(), before shutdown()",
           "still running, or ended by raising", "returned without an exception")
    verify(error_type is None or seen["error_is_oserror_or_valueerror"], "exception ending serve_forever()",
           "none, OSError or ValueError", seen["serve_forever_error"])
    verify(seen["shutdown_returned"] and seen["loop_ended"],
           "serve_forever() after server_close() and shutdown()", "ended",
           {"shutdown_returned": seen["shutdown_returned"], "loop_ended": seen["loop_ended"]})


@check("SHUTDOWN-013", REQUIRED, clause="serve_forever(), shutdown() and server_close() release "
                                        "every socket the server opened (no ResourceWarning for "
                                        "an unclosed socket) "
                                        "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L484-L490, "
                                        "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L247-L255]")
def test_no_resource_warning(impl, observe):
    """serve_forever(), shutdown() and server_close() leave no socket to the garbage collector."""
    if subject_of(impl) is not None:
        raise NeedsInProcess("the ResourceWarnings and garbage collector of the implementation's own process")
    recorder = Recorder()
    gc.collect()  # earlier checks' garbage is not this server's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with owned(_server(impl, recorder, "replies")) as server:
            with LoopThread(server, recorder=recorder, count_waits=True) as loop:
                _loop_started(loop)
                reply = try_roundtrip(server.server_address, b"", budget=timeouts.short())
        del server, loop
        gc.collect()
        leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    observe("reply", reply["data"])
    observe("resource_warnings", leaks)
    verify_equal("reply while serving", b"reply", reply["data"])
    verify(not leaks, "ResourceWarnings after shutdown() and server_close()", "none", leaks)
