"""The public surface of ``reference_impl``: names, gating, defaults, MRO.

Platform gating is tested by *simulating* other platforms: a fresh
interpreter deletes ``os.fork``, ``socket.AF_UNIX`` and/or
``selectors.PollSelector`` before importing ``reference_impl`` and reports
which names exist, which selector was chosen, which family the wake-up
pair uses, and whether a server still serves and stops promptly.  The
unsimulated run is the control: there the gated names must be present,
so the same assertions fail if gating ignored the platform.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

import reference_impl
from harness.core import timeouts

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ALWAYS = {
    "BaseServer",
    "TCPServer",
    "UDPServer",
    "ThreadingUDPServer",
    "ThreadingTCPServer",
    "BaseRequestHandler",
    "StreamRequestHandler",
    "DatagramRequestHandler",
    "ThreadingMixIn",
}
FORK_ONLY = {"ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn"}
UNIX_ONLY = {
    "UnixStreamServer",
    "UnixDatagramServer",
    "ThreadingUnixStreamServer",
    "ThreadingUnixDatagramServer",
}
FORK_AND_UNIX = {"ForkingUnixStreamServer", "ForkingUnixDatagramServer"}


def expected_names(fork: bool, af_unix: bool) -> set:
    names = set(ALWAYS)
    if fork:
        names |= FORK_ONLY
    if af_unix:
        names |= UNIX_ONLY
    if fork and af_unix:
        names |= FORK_AND_UNIX
    return names


def public_names_of(module) -> list:
    """Names whose ``__module__`` is the module's, as CPython's test_all computes them."""
    return sorted(
        name
        for name in dir(module)
        if not name.startswith("_")
        and getattr(getattr(module, name), "__module__", None) == module.__name__
    )


def test_all_lists_exactly_the_public_names():
    """__all__ == every public name whose __module__ is reference_impl (CPython's test_all)."""
    assert sorted(reference_impl.__all__) == public_names_of(reference_impl)
    assert len(reference_impl.__all__) == len(set(reference_impl.__all__))


def test_all_matches_this_platform():
    expected = expected_names(hasattr(os, "fork"), hasattr(socket, "AF_UNIX"))
    assert set(reference_impl.__all__) == expected


def test_version_markers():
    assert reference_impl.__version__ == "1.0"
    assert reference_impl.__socketserver_api__ == (3, 13)


# -- simulated platforms ------------------------------------------------------

PROBE = r"""
import json, os, selectors, socket, sys, threading, time
absent = [name for name in sys.argv[1].split(",") if name]
wait_budget, wake_bound = float(sys.argv[2]), float(sys.argv[3])
if "fork" in absent:
    del os.fork
if "af_unix" in absent:
    del socket.AF_UNIX
if "poll" in absent:
    del selectors.PollSelector
import reference_impl as ss
from reference_impl import _features

report = {
    "all": sorted(ss.__all__),
    "public": sorted(n for n in dir(ss) if not n.startswith("_")
                     and getattr(getattr(ss, n), "__module__", None) == "reference_impl"),
    "selector": _features.ServerSelector.__name__,
}

class Echo(ss.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())

server = ss.ThreadingTCPServer(("127.0.0.1", 0), Echo)
thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": wake_bound * 5})
thread.daemon = True
thread.start()
with socket.create_connection(server.server_address, timeout=wait_budget) as client:
    client.sendall(b"hello\n")
    report["reply"] = client.makefile("rb").readline().decode()
waker = server._BaseServer__waker
report["waker_family"] = None if waker is None else int(waker.reader.family)
started = time.monotonic()
server.shutdown()
report["shutdown_seconds"] = time.monotonic() - started
thread.join(wait_budget)
report["loop_returned"] = not thread.is_alive()
server.server_close()
print(json.dumps(report))
"""

SIMULATIONS = [
    (),
    ("fork",),
    ("af_unix",),
    ("fork", "af_unix"),
    ("fork", "af_unix", "poll"),  # the shape of CPython on Windows
]


@pytest.mark.parametrize("absent", SIMULATIONS, ids=lambda names: "+".join(names) or "native")
def test_gating_under_simulated_platforms(absent):
    """Forking* needs os.fork, Unix* needs AF_UNIX, ForkingUnix* both; serving still works."""
    if "fork" not in absent and not hasattr(os, "fork"):
        pytest.skip("os.fork is really absent here; only the simulated branches can run")
    if "af_unix" not in absent and not hasattr(socket, "AF_UNIX"):
        pytest.skip("AF_UNIX is really absent here; only the simulated branches can run")
    wake_bound = 1.0  # shutdown() must beat poll_interval (5x this) by far
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(absent), str(timeouts.short()), str(wake_bound)],
        capture_output=True,
        text=True,
        timeout=timeouts.medium(),
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    expected = expected_names("fork" not in absent, "af_unix" not in absent)
    assert set(report["all"]) == expected
    assert report["public"] == sorted(expected)
    assert report["selector"] == ("SelectSelector" if "poll" in absent else "PollSelector")
    assert report["reply"] == "hello\n"
    assert report["loop_returned"]
    assert report["shutdown_seconds"] < wake_bound
    # Without AF_UNIX the wake-up pair falls back to loopback TCP.
    expected_family = socket.AF_INET if "af_unix" in absent else socket.AF_UNIX
    assert report["waker_family"] == int(expected_family)


# -- defaults and class structure --------------------------------------------


def test_class_defaults():
    ss = reference_impl
    assert ss.BaseServer.timeout is None
    assert ss.TCPServer.address_family == socket.AF_INET
    assert ss.TCPServer.socket_type == socket.SOCK_STREAM
    assert ss.TCPServer.request_queue_size == 5
    assert ss.TCPServer.allow_reuse_address is False
    assert ss.TCPServer.allow_reuse_port is False
    assert ss.UDPServer.socket_type == socket.SOCK_DGRAM
    assert ss.UDPServer.max_packet_size == 8192
    assert ss.UDPServer.allow_reuse_address is False
    assert ss.UDPServer.allow_reuse_port is False
    assert ss.ThreadingMixIn.daemon_threads is False
    assert ss.ThreadingMixIn.block_on_close is True
    assert ss.StreamRequestHandler.rbufsize == -1
    assert ss.StreamRequestHandler.wbufsize == 0
    assert ss.StreamRequestHandler.timeout is None
    assert ss.StreamRequestHandler.disable_nagle_algorithm is False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="ForkingMixIn needs os.fork")
def test_forking_defaults():
    mixin = reference_impl.ForkingMixIn
    assert mixin.max_children == 40
    assert mixin.timeout == 300
    assert mixin.active_children is None
    assert mixin.block_on_close is True
    assert reference_impl.ForkingTCPServer.timeout == 300  # the mix-in's wins


def test_hierarchy():
    ss = reference_impl
    assert ss.UDPServer.__mro__[1:] == (ss.TCPServer, ss.BaseServer, object)
    assert ss.ThreadingTCPServer.__bases__ == (ss.ThreadingMixIn, ss.TCPServer)
    assert ss.ThreadingUDPServer.__bases__ == (ss.ThreadingMixIn, ss.UDPServer)
    if hasattr(ss, "ForkingMixIn"):
        assert ss.ForkingTCPServer.__bases__ == (ss.ForkingMixIn, ss.TCPServer)
        assert ss.ForkingUDPServer.__bases__ == (ss.ForkingMixIn, ss.UDPServer)
    if hasattr(ss, "UnixStreamServer"):
        assert ss.UnixStreamServer.__bases__ == (ss.TCPServer,)
        assert ss.UnixDatagramServer.__bases__ == (ss.UDPServer,)
        assert ss.UnixStreamServer.address_family == socket.AF_UNIX
        assert ss.ThreadingUnixStreamServer.__bases__ == (ss.ThreadingMixIn, ss.UnixStreamServer)
        if hasattr(ss, "ForkingMixIn"):
            assert ss.ForkingUnixDatagramServer.__bases__ == (
                ss.ForkingMixIn,
                ss.UnixDatagramServer,
            )


def test_methods_present():
    """Every documented method exists where CPython 3.13 defines it."""
    base = {
        "serve_forever",
        "shutdown",
        "service_actions",
        "handle_request",
        "handle_timeout",
        "verify_request",
        "process_request",
        "server_activate",
        "server_close",
        "finish_request",
        "shutdown_request",
        "close_request",
        "handle_error",
        "__enter__",
        "__exit__",
    }
    for name in base:
        assert callable(getattr(reference_impl.BaseServer, name)), name
    for name in ("server_bind", "fileno", "get_request"):
        assert callable(getattr(reference_impl.TCPServer, name)), name
        assert not hasattr(reference_impl.BaseServer, name), name  # as in CPython
    assert callable(reference_impl.ThreadingMixIn.process_request_thread)
    if hasattr(reference_impl, "ForkingMixIn"):
        assert callable(reference_impl.ForkingMixIn.collect_children)
