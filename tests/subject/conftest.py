"""``subject_python``: the host's own interpreter, then every subject-only one found here;
``echo_through``: one line echoed by a server the agent serves.

Interpreters are found through :mod:`harness.implementations.pythons` (pyenv, PATH, the
Windows launcher); a missing one is a skip naming it, never a failure.
"""

from __future__ import annotations

import sys

import pytest

from harness.implementations import pythons

_FOUND = {}


def _subjects():
    if not _FOUND:
        _FOUND.update(pythons.find_subjects())
    return _FOUND


@pytest.fixture(params=["host", *pythons.SUBJECT_VERSIONS, "pypy3"])
def subject_python(request):
    if request.param == "host":
        return sys.executable
    path = _subjects().get(request.param)
    if path is None:
        pytest.skip(f"no {request.param} interpreter on this machine (harness.implementations.pythons)")
    return path


def _echo_through(session, class_name):
    """Serve ``class_name`` with ``echo_line`` in ``session``'s agent, send one line, wait for
    the handler to finish: ``(reply, events, proc)``."""
    from harness.clients import bounded as clients
    from harness.core import timeouts
    from harness.serving import instrument

    with session.serve(class_name, "echo_line") as proc:
        if "UDP" in class_name or "Datagram" in class_name:
            with clients.dgram_client(proc.family) as sock:
                sock.sendto(b"ping\n", proc.address)
                reply, _ = clients.recvfrom(sock)
        else:
            with clients.connect(proc.address, proc.family) as sock:
                clients.sendall(sock, b"ping\n")
                reply = clients.recv_line(sock, timeouts.Deadline(timeouts.short(), "echo"))
        events = proc.log.wait_for(
            lambda found: instrument.select(found, kind="phase", phase="finish", edge="end"),
            timeouts.short(), "the handler to finish")
    return reply, events, proc


@pytest.fixture
def echo_through():
    return _echo_through
