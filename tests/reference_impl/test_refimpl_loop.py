"""The serving loop of ``reference_impl``: wake-up, documented quirks, no spinning.

How the tests avoid timing races.  Whether ``shutdown()`` is immediate can
only be judged if the loop is already blocked in ``select``, so the
selector class used by ``_base`` is replaced by a spy that signals "about
to select" (and can run a hook at that point).  Spinning is measured by
counting ``service_actions()`` calls -- one per loop iteration -- over a
window of ``timeouts.absence()``, with the standard library (which does
spin in both situations on poll-based platforms) as the control that
shows the count would catch a spin.
"""

from __future__ import annotations

import importlib
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
from harness.core.capabilities import caps
from reference_impl import _base, _wakeup

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: A poll interval long enough that a test passing within WAKE_BOUND cannot
#: have relied on it.
LONG_POLL = 5.0
WAKE_BOUND = LONG_POLL / 5


class Echo(reference_impl.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())


def _flag(server):
    return server._BaseServer__shutdown_request


# -- shutdown wakes the loop --------------------------------------------------


def test_shutdown_wakes_a_blocked_loop_at_once(monkeypatch, in_thread):
    """shutdown() returns well before poll_interval would allow."""
    spy = SelectSpy(monkeypatch)
    server = reference_impl.TCPServer(("127.0.0.1", 0), Echo)
    loop = in_thread(server.serve_forever, LONG_POLL)
    spy.wait_entered()
    try:
        assert shutdown_seconds(server, in_thread) < WAKE_BOUND
        loop.result(timeouts.short(), "serve_forever to return")
    finally:
        server.server_close()


def test_control_without_waker_shutdown_waits_for_the_poll(monkeypatch, in_thread):
    """Control: with the wake-up disabled, the same measurement sees the poll interval."""
    monkeypatch.setattr(_base.Waker, "open", classmethod(lambda cls: None))
    spy = SelectSpy(monkeypatch)
    poll_interval = 0.3
    server = reference_impl.TCPServer(("127.0.0.1", 0), Echo)
    loop = in_thread(server.serve_forever, poll_interval)
    spy.wait_entered()
    try:
        assert shutdown_seconds(server, in_thread) > poll_interval / 2
        loop.result(timeouts.short(), "serve_forever to return")
    finally:
        server.server_close()


def test_shutdown_before_serve_forever_makes_it_return(in_thread):
    """BaseServer.shutdown: shutdown() in another thread first; serve_forever then returns at once."""
    server = reference_impl.TCPServer(("127.0.0.1", 0), Echo)
    try:
        stopper = in_thread(server.shutdown)
        timeouts.wait_until(lambda: _flag(server), timeouts.short(), "shutdown() to set its flag")
        assert not stopper.done.is_set()  # it waits for a loop that has not run yet
        in_thread(server.serve_forever, LONG_POLL).result(timeouts.short(), "serve_forever")
        stopper.result(timeouts.short(), "shutdown() to return")
        assert not _flag(server)
    finally:
        server.server_close()


def test_stale_flag_quirk_and_restart(monkeypatch, in_thread, serving, roundtrip):
    """BaseServer.shutdown/BaseServer.serve_forever: a late shutdown() makes the next serve_forever return once; then it serves."""
    spy = SelectSpy(monkeypatch)
    server = reference_impl.TCPServer(("127.0.0.1", 0), Echo)
    loop = in_thread(server.serve_forever, LONG_POLL)
    spy.wait_entered()
    in_thread(server.shutdown).result(timeouts.short(), "shutdown()")
    loop.result(timeouts.short(), "serve_forever")

    in_thread(server.shutdown).result(timeouts.short(), "a shutdown() after the loop ended")
    assert _flag(server)  # left set...
    in_thread(server.serve_forever, LONG_POLL).result(timeouts.short(), "the stale-flag return")
    assert not _flag(server)  # ...and cleared by the serve_forever it stopped

    with serving(server, LONG_POLL) as thread:
        assert roundtrip(server.server_address, b"again\n") == b"again\n"
        assert thread.is_alive()


def test_no_accept_once_shutdown_was_requested(monkeypatch, in_thread):
    """#44 (bpo-35017): a connection readable in the same select as shutdown is not accepted."""
    spy = SelectSpy(monkeypatch)
    accepted = []

    class Server(reference_impl.TCPServer):
        def get_request(self):
            accepted.append(True)
            return super().get_request()

    server = Server(("127.0.0.1", 0), Echo)
    client = socket.socket()
    stoppers = []

    def connect_then_request_shutdown():
        client.settimeout(timeouts.short())
        client.connect(server.server_address)  # completes in the backlog
        stoppers.append(in_thread(server.shutdown))
        timeouts.wait_until(lambda: _flag(server), timeouts.short(), "the shutdown flag")

    spy.hook = connect_then_request_shutdown
    try:
        in_thread(server.serve_forever, LONG_POLL).result(timeouts.short(), "serve_forever")
        stoppers[0].result(timeouts.short(), "shutdown()")
        assert accepted == []
    finally:
        client.close()
        server.server_close()


def test_base_exception_in_the_loop_releases_shutdown(in_thread):
    """BaseServer.serve_forever: a BaseException escaping serve_forever still lets shutdown() return."""

    class Boom(BaseException):
        pass

    in_service = threading.Event()
    release = threading.Event()

    class Server(reference_impl.TCPServer):
        def service_actions(self):
            in_service.set()
            timeouts.wait_event(release, timeouts.short(), "the test to release the loop")
            raise Boom()

    server = Server(("127.0.0.1", 0), Echo)
    try:
        loop = in_thread(server.serve_forever, timeouts.poll())
        timeouts.wait_event(in_service, timeouts.short(), "service_actions to run")
        stopper = in_thread(server.shutdown)
        timeouts.wait_until(lambda: _flag(server), timeouts.short(), "the shutdown flag")
        release.set()
        with pytest.raises(Boom):
            loop.result(timeouts.short(), "serve_forever to raise")
        stopper.result(timeouts.short(), "shutdown() to return after the exception")
    finally:
        server.server_close()


def test_shutdown_from_a_handler_thread_returns(in_thread):
    """BaseServer.shutdown: shutdown() called in a ThreadingMixIn handler returns once the loop exits."""
    returned = []

    class Stopper(reference_impl.StreamRequestHandler):
        def handle(self):
            self.server.shutdown()
            returned.append(True)
            self.wfile.write(b"stopped\n")

    server = reference_impl.ThreadingTCPServer(("127.0.0.1", 0), Stopper)
    try:
        loop = in_thread(server.serve_forever, LONG_POLL)
        with socket.create_connection(server.server_address, timeout=timeouts.short()) as client:
            with client.makefile("rb") as reader:
                assert reader.readline() == b"stopped\n"
        loop.result(WAKE_BOUND, "serve_forever to return")
        assert returned == [True]
    finally:
        server.server_close()


# -- cadence of service_actions ----------------------------------------------


def _counting(base):
    class Server(base):
        calls = 0
        timeouts_handled = 0

        def service_actions(self):
            type(self).calls += 1

        def handle_timeout(self):
            type(self).timeouts_handled += 1

    return Server


def test_service_actions_runs_on_idle_polls_without_spinning(serving):
    """BaseServer.serve_forever: one call per poll timeout when idle; handle_timeout never runs."""
    server = _counting(reference_impl.TCPServer)(("127.0.0.1", 0), Echo)
    server.timeout = timeouts.poll()  # ignored by serve_forever
    poll_interval = timeouts.poll()
    window = timeouts.absence()
    with serving(server, poll_interval):
        timeouts.wait_until(lambda: server.calls >= 1, timeouts.short(), "a first poll timeout")
        before = server.calls
        threading.Event().wait(window)  # observation window
        idle_calls = server.calls - before
    assert idle_calls >= 3
    assert idle_calls <= 2 * window / poll_interval + 5
    assert server.timeouts_handled == 0


def test_service_actions_runs_once_per_request(serving, roundtrip):
    server = _counting(reference_impl.TCPServer)(("127.0.0.1", 0), Echo)
    requests = 5
    with serving(server, LONG_POLL):
        for number in range(requests):
            assert roundtrip(server.server_address, b"%d\n" % number) == b"%d\n" % number
        timeouts.wait_until(lambda: server.calls >= requests, timeouts.short(), "service_actions")
        threading.Event().wait(timeouts.absence())  # no extra iterations may follow
        assert server.calls == requests


# -- no spinning when the socket is closed under the loop ----------------------


@pytest.mark.parametrize("module_name", ["reference_impl", "socketserver"])
def test_server_close_during_serve_forever_does_not_spin(module_name, in_thread):
    """BaseServer.serve_forever: server_close() while serving: reference waits quietly; stdlib (control) spins."""
    if module_name == "socketserver" and not caps().poll:
        pytest.skip("the stdlib spins only with poll(); select() raises instead")
    module = importlib.import_module(module_name)
    server = _counting(module.TCPServer)(("127.0.0.1", 0), module.StreamRequestHandler)
    poll_interval = 0.05
    window = timeouts.absence()
    loop = in_thread(server.serve_forever, poll_interval)
    try:
        timeouts.wait_until(lambda: server.calls >= 1, timeouts.short(), "the loop to run")
        server.server_close()
        before = server.calls
        ended = loop.done.wait(window)  # observation window; the loop must not end by itself
        iterations = server.calls - before
    finally:
        in_thread(server.shutdown).result(timeouts.short(), "shutdown() after server_close()")
        loop.result(timeouts.short(), "serve_forever to return (without raising)")
    assert not ended, "serve_forever returned before shutdown()"
    if module_name == "reference_impl":
        assert iterations <= window / poll_interval + 3
    else:
        assert iterations > 1000, "control: expected the stdlib loop to spin"


# -- the wake-up channel's lifetime -------------------------------------------


def _open_fds():
    for directory in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(directory):
            return len(os.listdir(directory))
    return None


def test_wakeup_sockets_exist_only_while_serving(serving):
    before = _open_fds()
    server = reference_impl.TCPServer(("127.0.0.1", 0), Echo)
    assert server._BaseServer__waker is None  # created lazily
    with serving(server, LONG_POLL):
        timeouts.wait_until(
            lambda: server._BaseServer__waker is not None, timeouts.short(), "the waker"
        )
        waker = server._BaseServer__waker
        reader, writer = waker.reader, waker._writer
        if before is not None:
            assert _open_fds() == before + 3  # listener + the pair
    assert reader.fileno() == -1 and writer.fileno() == -1
    assert server._BaseServer__waker is None
    assert server.socket.fileno() == -1
    if before is not None:
        assert _open_fds() == before


def test_waker_is_inert_in_another_process():
    """A forked child's shutdown() must not wake the parent's loop."""
    waker = _wakeup.Waker.open()
    probe = _base.ServerSelector()
    probe.register(waker.reader, 1)
    try:
        waker._owner_pid = -1  # as seen from a child: created by another process
        waker.wake()
        assert probe.select(0) == []
        waker._owner_pid = os.getpid()
        waker.wake()
        assert probe.select(timeouts.short())
        assert waker.drain()
    finally:
        probe.close()
        waker.close()
    waker.wake()  # after close: harmless


def test_waker_falls_back_to_loopback_tcp(monkeypatch):
    def no_socketpair(*args, **kwargs):
        raise OSError("simulated: no socketpair here")

    monkeypatch.setattr(socket, "socketpair", no_socketpair)
    bound = []
    real_bind = socket.socket.bind

    def spy_bind(self, address):
        bound.append(address)
        return real_bind(self, address)

    monkeypatch.setattr(socket.socket, "bind", spy_bind)
    waker = _wakeup.Waker.open()
    assert waker is not None, "no wake-up pair although the loopback fallback can connect"
    try:
        assert waker.reader.family == socket.AF_INET
        assert bound == [("127.0.0.1", 0)], bound  # port 0, never a fixed port
        started = time.monotonic()
        waker.wake()
        waker.pause(timeouts.short())
        assert time.monotonic() - started < WAKE_BOUND
        waker.wake()
        assert waker.drain()
    finally:
        waker.close()


# -- handle_request timeouts --------------------------------------------------

SMALL = 0.05
LARGE = 2 * timeouts.short()  # longer than the budget the call gets


@pytest.mark.parametrize(
    "socket_timeout, server_timeout",
    [(SMALL, LARGE), (LARGE, SMALL), (None, SMALL), (SMALL, None)],
)
def test_handle_request_waits_for_the_smaller_timeout(socket_timeout, server_timeout, in_thread):
    """BaseServer.handle_request: min(socket timeout, self.timeout); returns what handle_timeout() returns."""
    sentinel = object()
    calls = []

    class Server(reference_impl.TCPServer):
        def handle_timeout(self):
            calls.append(True)
            return sentinel

    server = Server(("127.0.0.1", 0), Echo)
    try:
        server.timeout = server_timeout
        if socket_timeout is not None:
            server.socket.settimeout(socket_timeout)
        started = time.monotonic()
        result = in_thread(server.handle_request).result(timeouts.short(), "handle_request")
        elapsed = time.monotonic() - started
    finally:
        server.server_close()
    assert result is sentinel
    assert calls == [True]
    assert elapsed >= SMALL * 0.9


def test_handle_request_without_timeouts_blocks_until_a_request(in_thread, roundtrip):
    calls = []

    class Server(reference_impl.TCPServer):
        def handle_timeout(self):
            calls.append(True)

    server = Server(("127.0.0.1", 0), Echo)
    try:
        call = in_thread(server.handle_request)
        assert not call.done.wait(timeouts.absence())
        assert roundtrip(server.server_address, b"late\n") == b"late\n"
        assert call.result(timeouts.short(), "handle_request") is None
    finally:
        server.server_close()
    assert calls == []


# -- descriptor exhaustion ------------------------------------------------------

EMFILE_SCRIPT = r"""
import errno, importlib, json, os, resource, socket, sys, threading
module = importlib.import_module(sys.argv[1])
window, budget = float(sys.argv[2]), float(sys.argv[3])

class Echo(module.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())

class Server(module.TCPServer):
    calls = 0
    closed = 0
    accept_errors = []
    def service_actions(self):
        type(self).calls += 1
    def close_request(self, request):
        super().close_request(request)
        type(self).closed += 1
    def get_request(self):
        try:
            return super().get_request()
        except OSError as exc:
            type(self).accept_errors.append(exc.errno)
            raise

def wait_for(predicate):
    pause = threading.Event()
    for _ in range(int(budget / 0.002)):
        if predicate():
            return
        pause.wait(0.002)
    raise RuntimeError("timed out")

def ask(sock, line):
    sock.settimeout(budget)
    sock.sendall(line)
    with sock.makefile("rb") as reader:
        return reader.readline().decode()

server = Server(("127.0.0.1", 0), Echo)
loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
loop.start()
with socket.create_connection(server.server_address, timeout=budget) as first:
    warm = ask(first, b"warm\n")
wait_for(lambda: Server.closed == 1)  # its descriptor is free before we count

client = socket.socket()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
highest = max(int(name) for name in os.listdir(fd_dir))
resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 8, hard))
fillers = []
try:
    for _ in range(highest + 16):
        fillers.append(os.dup(client.fileno()))
except OSError as exc:
    exhausted = exc.errno == errno.EMFILE
else:
    exhausted = False
client.settimeout(budget)
client.connect(server.server_address)  # accept() on the server side now fails
before = Server.calls
threading.Event().wait(window)  # observation window
iterations = Server.calls - before
emfile_seen = Server.accept_errors.count(errno.EMFILE)
for fd in fillers:
    os.close(fd)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
reply = ask(client, b"after\n")
client.close()
stopper = threading.Thread(target=server.shutdown, daemon=True)
stopper.start()
stopper.join(budget)
loop.join(budget)
server.server_close()
print(json.dumps({"warm": warm, "exhausted": exhausted, "iterations": iterations,
                  "emfile_seen": emfile_seen, "reply": reply, "stopped": not loop.is_alive()}))
"""


@pytest.mark.parametrize("module_name", ["reference_impl", "socketserver"])
def test_accept_emfile_backs_off_instead_of_spinning(module_name):
    """BaseServer._handle_request_noblock: EMFILE in accept: reference backs off and recovers; stdlib (control) spins."""
    if not caps().rlimit:
        pytest.skip("needs resource.RLIMIT_NOFILE")
    if not (os.path.isdir("/proc/self/fd") or os.path.isdir("/dev/fd")):
        pytest.skip("needs /proc/self/fd or /dev/fd to size the descriptor table")
    window = timeouts.absence()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-c", EMFILE_SCRIPT, module_name, str(window), str(timeouts.short())],
        capture_output=True,
        text=True,
        timeout=timeouts.medium(),
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["warm"] == "warm\n"
    assert report["exhausted"], "could not exhaust the descriptor table"
    assert report["emfile_seen"] >= 1, report  # accept() really failed
    assert report["reply"] == "after\n"  # served once descriptors were free again
    assert report["stopped"]
    if module_name == "reference_impl":
        # 1 ms doubling to 100 ms: about eight pauses fit in the window.
        assert report["iterations"] <= 20, report
    else:
        assert report["iterations"] > 1000, f"control: expected the stdlib to spin: {report}"
