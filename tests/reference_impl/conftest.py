"""Fixtures for the tests of ``reference_impl`` itself.

Theory of operation
-------------------
These tests exercise the reference implementation directly (the
conformance suite tests whatever ``--impl`` selects; this directory tests
the reference's own promises, including the ones that go beyond the
standard library).  Every wait is bounded by :mod:`harness.core.timeouts`:

``serving(server, poll_interval)``
    context manager running ``serve_forever`` in a daemon thread; on exit
    ``shutdown()`` runs in a helper thread and both are joined under a
    deadline, then the server is closed.  A hung ``shutdown`` becomes a
    ``HarnessTimeout``, never a hung test session.
``roundtrip(address, payload)``
    one TCP (or AF_UNIX stream) request with a bounded read until EOF.
``in_thread(function)``
    run a call in a daemon thread and give back a handle with
    ``result(budget)``, for calls that might block forever when broken.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from harness.core import timeouts


class CallInThread:
    """A call running in a daemon thread; ``result`` waits for it, bounded."""

    def __init__(self, function, *args, **kwargs):
        self.value = None
        self.error = None
        self.done = threading.Event()

        def run():
            try:
                self.value = function(*args, **kwargs)
            except BaseException as exc:  # noqa: B036 - reported to the test
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self, budget=None, what="the call"):
        timeouts.wait_event(self.done, timeouts.short() if budget is None else budget, what)
        if self.error is not None:
            raise self.error
        return self.value


@pytest.fixture
def in_thread():
    return CallInThread


def _stop(server, thread):
    stopper = CallInThread(server.shutdown)
    try:
        stopper.result(timeouts.short(), "shutdown() to return")
        timeouts.join_thread(thread, timeouts.short(), "serve_forever() to return")
    finally:
        server.server_close()


@pytest.fixture
def serving():
    @contextlib.contextmanager
    def run(server, poll_interval=None):
        interval = timeouts.poll() if poll_interval is None else poll_interval
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": interval}, daemon=True
        )
        thread.start()
        try:
            yield thread
        finally:
            _stop(server, thread)

    return run


def _roundtrip(address, payload=b"ping\n", family=None):
    if family is None:
        family = socket.AF_INET if isinstance(address, tuple) else socket.AF_UNIX
    deadline = timeouts.Deadline(timeouts.short(), f"a reply from {address!r}")
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(deadline.remaining())
        sock.connect(address)
        sock.sendall(payload)
        chunks = []
        while True:
            sock.settimeout(max(deadline.remaining(), 0.001))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                raise timeouts.HarnessTimeout(deadline.what, deadline.budget) from None
            if not data:
                return b"".join(chunks)
            chunks.append(data)


@pytest.fixture
def roundtrip():
    return _roundtrip
