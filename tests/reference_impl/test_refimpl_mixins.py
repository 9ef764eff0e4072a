"""``ThreadingMixIn`` and ``ForkingMixIn`` of ``reference_impl``.

Threading tests run the server in this process.  The forking test runs
the server in a separate Python process (a forking server must never
share a process with its clients) and reads back what happened from a
JSON-lines log that the server, its children and ``atexit`` append to.
``collect_children`` is also unit-tested against a scripted
``os.waitpid`` so that the reaping rules are checked without forking.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

import reference_impl
from harness.core import timeouts
from harness.core.capabilities import caps
from reference_impl import _mixins

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL = ("127.0.0.1", 0)


class Echo(reference_impl.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())


# -- thread bookkeeping -----------------------------------------------------------


class FakeThread:
    checks = 0

    def __init__(self, alive=True, daemon=False):
        self.alive = alive
        self.daemon = daemon
        self.joined = False

    def is_alive(self):
        FakeThread.checks += 1
        return self.alive

    def join(self):
        self.joined = True


class _ScanEveryAppend(_mixins._Threads):
    """Deliberately naive bookkeeping: prune on every append (quadratic)."""

    def append(self, thread):
        self[:] = [alive for alive in self if alive.is_alive()]
        list.append(self, thread)


@pytest.mark.parametrize("kind, bounded", [(_mixins._Threads, True), (_ScanEveryAppend, False)])
def test_pruning_is_amortised_constant(kind, bounded):
    """Many long-lived threads: total liveness checks stay linear (control: naive is quadratic)."""
    count = 1000
    FakeThread.checks = 0
    threads = kind()
    for _ in range(count):
        threads.append(FakeThread(alive=True))
    assert len(threads) == count
    assert (FakeThread.checks <= 3 * count) is bounded


def test_finished_threads_are_forgotten_and_daemons_never_kept():
    threads = _mixins._Threads()
    for _ in range(1000):
        threads.append(FakeThread(alive=False))
        threads.append(FakeThread(alive=True, daemon=True))
    assert len(threads) <= _mixins._Threads._FIRST_MARK
    late = FakeThread(alive=True)
    threads.append(late)
    threads.join()
    assert late.joined and len(threads) == 0


def test_threading_server_bookkeeping_stays_bounded(in_thread, roundtrip):
    """#53 (bpo-37193): sequential requests do not accumulate in server._threads."""
    server = reference_impl.ThreadingTCPServer(LOCAL, Echo)
    try:
        for _ in range(30):
            with socket.create_connection(server.server_address, timeout=timeouts.short()):
                in_thread(server.handle_request).result(timeouts.short(), "handle_request")
        assert len(server._threads) < 10
    finally:
        server.server_close()
    assert len(server._threads) == 0


def test_close_immediately():
    """ThreadingMixIn.server_close: server_close() on a threading server that never served."""
    server = reference_impl.ThreadingTCPServer(LOCAL, lambda *args: None)
    server.server_close()
    assert len(server._threads) == 0


def test_handlers_overlap(serving):
    """ThreadingMixIn.process_request: N blocking handlers run at the same time (a barrier only N of them can pass)."""
    clients = 3
    barrier = threading.Barrier(clients)
    failures = []

    class Handler(reference_impl.StreamRequestHandler):
        def handle(self):
            barrier.wait(timeouts.short())
            self.wfile.write(self.rfile.readline())

    class Server(reference_impl.ThreadingTCPServer):
        def handle_error(self, request, client_address):
            failures.append(sys.exc_info()[0])

    server = Server(LOCAL, Handler)
    with serving(server):
        sockets = [socket.create_connection(server.server_address, timeout=timeouts.short())]
        sockets += [
            socket.create_connection(server.server_address, timeout=timeouts.short())
            for _ in range(clients - 1)
        ]
        try:
            for number, sock in enumerate(sockets):
                sock.sendall(b"%d\n" % number)
            replies = [sock.makefile("rb").readline() for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
    assert failures == []
    assert replies == [b"%d\n" % number for number in range(clients)]


@pytest.mark.parametrize(
    "attributes, waits",
    [({}, True), ({"block_on_close": False}, False), ({"daemon_threads": True}, False)],
)
def test_server_close_joins_only_when_asked(attributes, waits, in_thread):
    """ThreadingMixIn.server_close: server_close() waits for non-daemon handler threads iff block_on_close."""
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    class Handler(reference_impl.BaseRequestHandler):
        def handle(self):
            started.set()
            try:
                timeouts.wait_event(release, timeouts.short(), "the test to release the handler")
            finally:
                finished.set()

    server_class = type("Server", (reference_impl.ThreadingTCPServer,), dict(attributes))
    server = server_class(LOCAL, Handler)
    try:
        with socket.create_connection(server.server_address, timeout=timeouts.short()):
            in_thread(server.handle_request).result(timeouts.short(), "handle_request")
            timeouts.wait_event(started, timeouts.short(), "the handler to start")
            closing = in_thread(server.server_close)
            returned_early = closing.done.wait(timeouts.absence())
            assert returned_early is not waits
            release.set()
            closing.result(timeouts.short(), "server_close")
            timeouts.wait_event(finished, timeouts.short(), "the handler to finish")
    finally:
        release.set()
        server.server_close()


def test_thread_errors_are_routed_like_the_stdlib(in_thread, monkeypatch):
    """ThreadingMixIn.process_request_thread: Exception -> handle_error in the handler thread; SystemExit -> excepthook."""
    hooked = []
    monkeypatch.setattr(threading, "excepthook", lambda args: hooked.append(args.exc_type))
    events = []
    done = threading.Event()

    class Handler(reference_impl.BaseRequestHandler):
        def handle(self):
            raise self.server.to_raise("handler")

    class Server(reference_impl.ThreadingTCPServer):
        def handle_error(self, request, client_address):
            events.append(("handle_error", sys.exc_info()[0], threading.get_ident()))

        def shutdown_request(self, request):
            events.append(("shutdown_request",))
            super().shutdown_request(request)
            done.set()

    server = Server(LOCAL, Handler)
    try:
        for exc_type in (ValueError, SystemExit):
            done.clear()
            server.to_raise = exc_type
            with socket.create_connection(server.server_address, timeout=timeouts.short()):
                in_thread(server.handle_request).result(timeouts.short(), "handle_request")
                timeouts.wait_event(done, timeouts.short(), "the request to be shut down")
    finally:
        server.server_close()
    assert [event[:2] for event in events] == [
        ("handle_error", ValueError),
        ("shutdown_request",),
        ("shutdown_request",),
    ]
    assert events[0][2] != threading.get_ident()
    assert hooked == [SystemExit]


# -- ForkingMixIn.collect_children, scripted ----------------------------------------


class ScriptedWaitpid:
    """Stands in for os.waitpid: answers from a table, records every call."""

    def __init__(self, answers):
        self.answers = answers  # pid or -1 -> list of results (tuple or exception)
        self.calls = []

    def __call__(self, pid, options):
        self.calls.append((pid, options))
        result = self.answers[pid].pop(0)
        if isinstance(result, BaseException):
            raise result
        return result


@pytest.mark.skipif(not hasattr(os, "fork"), reason="ForkingMixIn needs os.fork")
def test_collect_children_reaping_rules(monkeypatch):
    """ForkingMixIn.collect_children: own children only, WNOHANG unless blocking; waitpid(-1) only at the limit."""
    server = reference_impl.ForkingMixIn()
    monkeypatch.setattr(os, "waitpid", ScriptedWaitpid({}))
    server.collect_children()  # no children yet: nothing to wait for
    assert os.waitpid.calls == []

    server.active_children = {11, 12, 13}
    fake = ScriptedWaitpid({11: [(11, 0)], 12: [(0, 0)], 13: [ChildProcessError()]})
    monkeypatch.setattr(os, "waitpid", fake)
    server.collect_children()
    assert sorted(fake.calls) == [(11, os.WNOHANG), (12, os.WNOHANG), (13, os.WNOHANG)]
    assert server.active_children == {12}

    fake = ScriptedWaitpid({12: [(12, 0)]})
    monkeypatch.setattr(os, "waitpid", fake)
    server.collect_children(blocking=True)
    assert fake.calls == [(12, 0)] and server.active_children == set()

    server.max_children = 2
    server.active_children = {21, 22, 23}
    fake = ScriptedWaitpid({-1: [(99, 0), (21, 0), (22, 0)], 23: [(0, 0)]})
    monkeypatch.setattr(os, "waitpid", fake)
    server.collect_children()
    # 99 is not ours: waiting goes on until fewer than max_children remain.
    assert fake.calls == [(-1, 0), (-1, 0), (-1, 0), (23, os.WNOHANG)]
    assert server.active_children == {23}


# -- ForkingMixIn, for real, in a server process -----------------------------------

FORKING_SERVER = r"""
import atexit, json, os, sys
import reference_impl as ss

log_path = sys.argv[1]

def log(*event):
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps([os.getpid()] + list(event)) + "\n").encode())
    finally:
        os.close(fd)

atexit.register(log, "atexit")
exit_codes = {}
real_waitpid = os.waitpid

def recording_waitpid(pid, options):
    reaped, status = real_waitpid(pid, options)
    if reaped:
        exit_codes[reaped] = os.waitstatus_to_exitcode(status)
    return reaped, status

os.waitpid = recording_waitpid

class Handler(ss.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().strip().decode()
        log("handle", line)
        if line == "error":
            raise ValueError("boom")
        if line == "exit":
            raise SystemExit(3)
        self.wfile.write(b"ok\n")

class Server(ss.ForkingTCPServer):
    def shutdown_request(self, request):
        log("shutdown_request")
        super().shutdown_request(request)
    def close_request(self, request):
        log("close_request")
        super().close_request(request)
    def handle_error(self, request, client_address):
        log("handle_error")

server = Server(("127.0.0.1", 0), Handler)
print(json.dumps(server.server_address), flush=True)
for _ in range(3):
    server.handle_request()
server.server_close()
print(json.dumps({"exit_codes": exit_codes, "active": sorted(server.active_children or ())}),
      flush=True)
"""


def test_forking_children_exit_codes_and_parent_side(tmp_path, in_thread):
    """ForkingMixIn.process_request/ForkingMixIn.server_close: child exits 0/1/1 via os._exit; parent only close_request()s; reaped on close."""
    if not caps().fork:
        pytest.skip("needs os.fork")
    log_path = tmp_path / "events.jsonl"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", FORKING_SERVER, str(log_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = in_thread(proc.stdout.readline).result(timeouts.medium(), "the server's address")
        address = tuple(json.loads(first))
        replies = []
        for line in (b"ok\n", b"error\n", b"exit\n"):
            with socket.create_connection(address, timeout=timeouts.short()) as client:
                client.sendall(line)
                with client.makefile("rb") as reader:
                    replies.append(reader.read())
        rest, errors = proc.communicate(timeout=timeouts.medium())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=timeouts.short())
    assert proc.returncode == 0, errors
    assert replies == [b"ok\n", b"", b""]
    final = json.loads(rest.strip().splitlines()[-1])

    events = [json.loads(line) for line in log_path.read_text().splitlines()]
    parent = proc.pid
    child_of = {event[2]: event[0] for event in events if event[1] == "handle"}
    assert set(child_of) == {"ok", "error", "exit"} and parent not in child_of.values()

    exit_codes = {int(pid): code for pid, code in final["exit_codes"].items()}
    assert exit_codes[child_of["ok"]] == 0
    assert exit_codes[child_of["error"]] == 1
    assert exit_codes[child_of["exit"]] == 1  # SystemExit(3) still exits 1
    assert final["active"] == []

    def events_of(pid):
        return [event[1] for event in events if event[0] == pid]

    assert events_of(parent) == ["close_request"] * 3 + ["atexit"]
    for name, pid in child_of.items():
        expected = ["handle"]
        if name == "error":
            expected.append("handle_error")
        expected += ["shutdown_request", "close_request"]  # no atexit: os._exit
        assert events_of(pid) == expected, name
