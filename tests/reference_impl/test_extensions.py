"""The reference's promises beyond the standard library: prompt shutdown, back-off, no spinning.

Theory of operation
-------------------
These are unit tests of ``reference_impl`` only (a conformance check cannot
require them: CPython's ``socketserver`` polls, spins and has no back-off).
They target the ``gap-extension`` survivors of the mutation run
(``mutation/README.md``).

No timing races.  "shutdown() is prompt" only means something when the
loop is already blocked, so the tests wait for the loop to reach the
blocking call through spies installed with ``monkeypatch``:
``loop_support.SelectSpy`` (shared with ``test_refimpl_loop.py``, which has
the plain "shutdown() wakes a loop blocked in select", "no spinning after
server_close()" and "loopback fallback" tests), and a wrapper around
``_base.pause`` (the back-off and idle wait) that records each timeout and
signals "about to pause".  A signal is raised just *before* the blocking
call; a ``shutdown()`` landing in that gap still finds the wake-up byte
when the call starts, so the promptness verdict does not depend on the
race.  The loops run with ``poll_interval=timeouts.medium()`` and the
bound for "prompt" is ``timeouts.short() / 10``: a loop that waits for its
poll interval misses it by a factor of 30, a loaded machine does not.

Counts instead of clocks.  Spinning is measured as ``service_actions()``
calls (one per loop iteration) over one ``timeouts.absence()`` window; a
spinning loop makes thousands.  The back-off is checked as the exact sequence of pause timeouts, and
``_next_backoff`` as a pure function.

The ``SelectSelector`` path (Windows) is chosen when ``reference_impl`` is
imported, so it runs in a child interpreter that deletes
``selectors.PollSelector`` first; the child imports the same
``reference_impl`` as this process (its parent directory goes first on
``PYTHONPATH``), so a scratch copy under test is what the child sees.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from loop_support import SelectSpy, shutdown_seconds

import reference_impl
from harness.core import timeouts
from reference_impl import _base, _wakeup


def _prompt() -> float:
    """The bound for a prompt shutdown(): a tenth of short()."""
    return timeouts.short() / 10


class Counting(reference_impl.TCPServer):
    """A TCPServer counting service_actions() calls (one per loop iteration)."""

    def __init__(self, *args, **kwargs):
        self.calls = 0
        super().__init__(*args, **kwargs)

    def service_actions(self):
        self.calls += 1


class PauseSpy:
    """Wraps ``_base.pause``: records each timeout; ``entered`` counts calls."""

    def __init__(self, monkeypatch):
        self.timeouts = []
        self.cond = threading.Condition()
        real = _base.pause

        def pause(waker, timeout):
            with self.cond:
                self.timeouts.append(timeout)
                self.cond.notify_all()
            return real(waker, timeout)

        monkeypatch.setattr(_base, "pause", pause)

    def wait_calls(self, count, what):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.timeouts) >= count, timeouts.short()):
                raise timeouts.HarnessTimeout(what, timeouts.short())


@contextlib.contextmanager
def _pending_client(server):
    """A client connection that makes the listener readable (closed on exit).

    A server that closes its listener on accept (:class:`ClosesOnAccept`) may
    reset the connection before ``connect()`` returns: that still poked the loop.
    """
    try:
        client = socket.create_connection(server.server_address, timeout=timeouts.short())
    except (ConnectionResetError, ConnectionRefusedError):
        yield None
        return
    with client:
        yield client


def _serve(server, in_thread, poll_interval):
    return in_thread(server.serve_forever, poll_interval)


# -- prompt shutdown() ----------------------------------------------------------


class ClosesOnAccept(Counting):
    """The first accept closes the listening socket under the loop (server_close()),
    the way another thread would, and fails as accept() then does: EBADF."""

    def get_request(self):
        self.server_close()
        raise OSError(errno.EBADF, "Bad file descriptor")


def test_shutdown_is_prompt_while_idling_after_server_close(monkeypatch, in_thread):
    """The loop idles once its socket is closed; shutdown() still interrupts the idle wait at once."""
    pauses = PauseSpy(monkeypatch)
    server = ClosesOnAccept(("127.0.0.1", 0), reference_impl.BaseRequestHandler)
    loop = _serve(server, in_thread, timeouts.medium())
    try:
        with _pending_client(server):
            pauses.wait_calls(1, "the loop to idle after server_close()")
            latency = shutdown_seconds(server, in_thread)
            loop.result(timeouts.short(), "serve_forever to return (without raising)")
    finally:
        server.server_close()
    assert pauses.timeouts[0] == timeouts.medium()  # the idle wait, not a back-off
    assert latency < _prompt(), f"shutdown() took {latency:.3f}s while idling"


class FailingAccept(Counting):
    """get_request raises EMFILE ``failures`` times, then accepts normally."""

    failures = 10**6

    def get_request(self):
        if self.failures > 0:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files (simulated)")
        return super().get_request()


def test_shutdown_is_prompt_while_backing_off_after_emfile(monkeypatch, in_thread):
    """accept() keeps failing with EMFILE: the loop backs off, and shutdown() still stops it at once."""
    pauses = PauseSpy(monkeypatch)
    server = FailingAccept(("127.0.0.1", 0), reference_impl.BaseRequestHandler)
    loop = _serve(server, in_thread, timeouts.medium())
    try:
        with _pending_client(server):
            pauses.wait_calls(10, "the loop to back off repeatedly")
            latency = shutdown_seconds(server, in_thread)
            loop.result(timeouts.short(), "serve_forever to return (without raising)")
    finally:
        server.server_close()
    assert all(0 < pause <= 0.1 for pause in pauses.timeouts), pauses.timeouts
    assert latency < _prompt(), f"shutdown() took {latency:.3f}s while backing off"


# -- EMFILE back-off ------------------------------------------------------------


def _sequence(poll_interval, steps=10):
    values, previous = [], 0.0
    for _ in range(steps):
        previous = _base._next_backoff(previous, poll_interval)
        values.append(previous)
    return values


def _doubling(cap, steps=10):
    return [min(cap, 0.001 * 2**k) for k in range(steps)]


@pytest.mark.parametrize("poll_interval, cap", [
    (0.5, 0.1),       # the cap is 0.1 s ...
    (0.05, 0.05),     # ... or poll_interval when that is smaller
    (None, 0.1),      # no poll interval: 0.1 s
    (0, 0.1),         # select() would not wait: 0.1 s
    (-1.0, 0.1),      # likewise for a negative interval
    (0.0005, 0.001),  # never below the 1 ms start
])
def test_next_backoff_doubles_from_1ms_up_to_its_cap(poll_interval, cap):
    assert _sequence(poll_interval) == _doubling(cap)


def test_next_backoff_is_a_pure_function():
    assert _base._next_backoff(0.016, 0.5) == 0.032
    assert _base._next_backoff(0.016, 0.5) == 0.032  # same input, same output
    assert _base._next_backoff(0.1, 0.5) == 0.1
    assert _base._next_backoff(5.0, None) == 0.1  # any previous value is capped


def test_backoff_restarts_at_1ms_after_a_successful_accept(monkeypatch, in_thread, roundtrip):
    """EMFILE 4 times, a served request, EMFILE twice more: pauses 1,2,4,8 ms then 1,2 ms."""
    pauses = PauseSpy(monkeypatch)

    class Echo(reference_impl.StreamRequestHandler):
        def handle(self):
            self.wfile.write(self.rfile.readline())

    server = FailingAccept(("127.0.0.1", 0), Echo)
    server.failures = 4
    loop = _serve(server, in_thread, timeouts.medium())
    try:
        assert roundtrip(server.server_address, b"one\n") == b"one\n"
        server.failures = 2
        assert roundtrip(server.server_address, b"two\n") == b"two\n"
        in_thread(server.shutdown).result(timeouts.short(), "shutdown() to return")
        loop.result(timeouts.short(), "serve_forever to return")
    finally:
        server.server_close()
    assert pauses.timeouts == [0.001, 0.002, 0.004, 0.008, 0.001, 0.002]


# -- no spinning on a socket closed under the loop -------------------------------


SELECT_PATH = r"""
import json, select, selectors, sys, threading, time
for module, name in ((selectors, "PollSelector"), (select, "poll")):
    if hasattr(module, name):
        delattr(module, name)
import reference_impl as ss
from reference_impl import _features

poll_interval, window, budget = (float(arg) for arg in sys.argv[1:4])

close_now, closed = threading.Event(), threading.Event()

class Server(ss.TCPServer):
    calls = 0
    def service_actions(self):
        # Closed between two select() calls (in the loop's own thread), so the
        # next select() is a fresh call on the dead descriptor and raises; a
        # close from another thread mostly lands *during* select(), which then
        # reports the socket readable and takes the accept() EBADF path instead.
        type(self).calls += 1
        if close_now.is_set() and not closed.is_set():
            self.server_close()
            closed.set()

server = Server(("127.0.0.1", 0), ss.BaseRequestHandler)
errors = []
def run():
    try:
        server.serve_forever(poll_interval)
    except BaseException as exc:
        errors.append(repr(exc))
loop = threading.Thread(target=run, daemon=True)
loop.start()
close_now.set()
closed.wait(budget)
before = Server.calls
loop.join(window)
ended_early = not loop.is_alive()
iterations = Server.calls - before
started = time.monotonic()
stopper = threading.Thread(target=server.shutdown, daemon=True)
stopper.start()
stopper.join(budget)
latency = time.monotonic() - started
loop.join(budget)
print(json.dumps({"selector": _features.ServerSelector.__name__, "errors": errors, "closed": closed.is_set(),
                  "ended_early": ended_early, "iterations": iterations, "latency": latency,
                  "stopped": not loop.is_alive() and not stopper.is_alive()}))
"""


def test_select_path_idles_after_server_close_and_stops_promptly():
    """SelectSelector (Windows): select() raises for the closed socket; the loop idles instead."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(reference_impl.__file__)))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    window = timeouts.absence()
    poll_interval = timeouts.poll()
    proc = subprocess.run(
        [sys.executable, "-c", SELECT_PATH, str(poll_interval), str(window), str(timeouts.short())],
        capture_output=True, text=True, timeout=timeouts.long(), env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["selector"] == "SelectSelector"
    assert report["closed"], report
    assert report["errors"] == [], report
    assert not report["ended_early"], report
    assert report["iterations"] <= 2 * window / poll_interval + 5, report  # idles, does not spin
    assert report["stopped"], report
    assert report["latency"] < _prompt(), report  # poll_interval is short: a sanity bound only


# -- no wake-up pair: the fallback ------------------------------------------------


def test_without_a_wakeup_pair_the_idle_loop_sleeps_in_fallback_ticks(monkeypatch, in_thread):
    """socket pairs unavailable, poll_interval=None, socket closed: sleeps FALLBACK_TICK (the
    standard library's default poll interval, 0.5 s) at a time, so shutdown() still returns."""
    def no_pair():
        raise OSError(errno.EMFILE, "Too many open files (simulated)")

    monkeypatch.setattr(_wakeup, "socket_pair", no_pair)
    sleeps = []
    real_sleep = time.sleep

    class Clock:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds):
            sleeps.append(seconds)
            real_sleep(seconds)

    monkeypatch.setattr(_wakeup, "time", Clock())
    server = ClosesOnAccept(("127.0.0.1", 0), reference_impl.BaseRequestHandler)
    loop = _serve(server, in_thread, None)
    try:
        with _pending_client(server):
            timeouts.wait_until(lambda: sleeps, timeouts.short(), "the idle loop to sleep")
            assert server._BaseServer__waker is None  # really the fallback
            latency = shutdown_seconds(server, in_thread)
            loop.result(timeouts.short(), "serve_forever to return")
    finally:
        server.server_close()
    assert sleeps and all(seconds == _wakeup.FALLBACK_TICK for seconds in sleeps), sleeps
    assert _wakeup.FALLBACK_TICK <= 0.5  # never slower than the stdlib's default poll
    assert latency <= 0.5 + _prompt(), f"shutdown() took {latency:.3f}s without a wake-up pair"


# -- the loopback stand-in for socketpair() ---------------------------------------------


def _no_socketpair(*args, **kwargs):
    raise OSError(errno.EMFILE, "Too many open files (simulated)")


def test_a_loopback_pair_that_cannot_connect_leaks_nothing(monkeypatch):
    """When the loopback fallback fails too, both of its sockets are closed at once, not left to
    the garbage collector, and Waker.open() reports 'no pair' (the loop then polls)."""
    import gc
    import warnings

    monkeypatch.setattr(socket, "socketpair", _no_socketpair)

    def refuse(self, address):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "refused (simulated)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert _wakeup.Waker.open() is None
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


def test_shutdown_is_prompt_on_the_loopback_pair(monkeypatch, in_thread):
    """With socketpair() failing, shutdown() still does not wait for poll_interval: the loopback
    pair wakes the loop (a broken fallback would leave it polling at medium())."""
    monkeypatch.setattr(socket, "socketpair", _no_socketpair)
    spy = SelectSpy(monkeypatch)
    server = reference_impl.TCPServer(("127.0.0.1", 0), reference_impl.BaseRequestHandler)
    try:
        loop = _serve(server, in_thread, timeouts.medium())
        spy.wait_entered()
        assert server._BaseServer__waker is not None, "the loop runs without a wake-up pair"
        latency = shutdown_seconds(server, in_thread)
        loop.result(timeouts.short(), "serve_forever to return")
    finally:
        server.server_close()
    assert latency < _prompt(), f"shutdown() took {latency:.3f}s on the loopback pair"
