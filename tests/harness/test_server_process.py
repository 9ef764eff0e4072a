"""harness.processes.server_process: servers in a child process, bounded start and stop, kills."""

from __future__ import annotations

import os
import textwrap
import time

import pytest

from harness import shapes
from harness.clients import bounded as clients
from harness.core import capabilities, timeouts
from harness.core.addresses import UnsupportedFeature
from harness.core.prerequisites import PreconditionFailed
from harness.core.timeouts import HarnessTimeout
from harness.implementations import ImplementationError
from harness.processes import server_process, supervisor
from harness.processes.server_process import serve_in_process
from harness.serving import instrument
from harness.serving.servers import LeakError

CAPS = capabilities.caps()
needs_unix = pytest.mark.skipif(not CAPS.af_unix, reason="AF_UNIX absent")
needs_fork = pytest.mark.skipif(not CAPS.fork, reason="fork absent")
needs_signals = pytest.mark.skipif(not CAPS.signals, reason="no POSIX signals")


@pytest.fixture
def fast():
    saved = timeouts._multiplier
    timeouts.set_multiplier(0.2, export=False)
    yield
    timeouts.set_multiplier(saved, export=False)


def _gone(pid: int) -> bool:
    """The process does not run any more (reaped, or a zombie left to an
    init that does not reap, as in some containers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # pragma: no cover
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] == "Z"


@pytest.mark.parametrize("class_name, dgram", [
    ("TCPServer", False),
    ("UDPServer", True),
    ("ThreadingTCPServer", False),
    pytest.param("ForkingTCPServer", False, marks=needs_fork),
    pytest.param("ForkingUDPServer", True, marks=needs_fork),
    pytest.param("UnixStreamServer", False, marks=needs_unix),
    pytest.param("ThreadingUnixDatagramServer", True, marks=needs_unix),
    pytest.param("ForkingUnixStreamServer", False, marks=[needs_unix, needs_fork]),
])
def test_every_kind_of_server_runs_in_a_child(class_name, dgram):
    with serve_in_process("stdlib", class_name, "upper") as proc:
        assert proc.pid != os.getpid()
        assert clients.roundtrip(proc.address, proc.family, b"abc", dgram=dgram) == b"ABC"
        proc.log.wait_for(lambda ev: instrument.select(ev, phase="finish", edge="end"), what="finish")
        (handle,) = instrument.intervals(proc.log.read(), "handle")
    assert proc.ready["server_class"] == class_name
    assert proc.teardown["returncode"] == 0 and proc.teardown["killed"] is None
    assert proc.teardown["reason"] == "stop" and proc.teardown["hung"] == []
    if class_name.startswith("Forking"):
        assert handle.pid != proc.pid  # the handler ran in a forked child
        assert proc.teardown["active_children"] == []
    else:
        assert handle.pid == proc.pid
    assert _gone(proc.pid)


def test_reference_impl_in_a_child():
    try:
        with serve_in_process("reference", "ThreadingTCPServer", "echo_line") as proc:
            assert clients.roundtrip(proc.address, "inet", b"ref\n") == b"ref\n"
    except ImplementationError:  # pragma: no cover - while reference_impl is incomplete
        pytest.skip("reference_impl not loadable")
    assert proc.ready["impl"]["name"] == "reference"


@needs_fork
def test_forked_handlers_overlap_across_processes():
    with serve_in_process("stdlib", "ForkingTCPServer", "hold") as proc:
        first = clients.connect(proc.address, "inet")
        second = clients.connect(proc.address, "inet")
        with first, second:
            proc.log.wait_for(lambda ev: len(instrument.select(ev, kind="hold")) == 2, what="holds")
            for sock in (first, second):
                clients.sendall(sock, b"go\n")
                assert clients.recv_line(sock) == b"go\n"
        proc.log.wait_for(lambda ev: len(instrument.select(ev, phase="finish", edge="end")) == 2,
                          what="both finished")
        ivs = instrument.intervals(proc.log.read())
    assert instrument.max_overlap(ivs) == 2
    assert len({iv.pid for iv in ivs}) == 2


def test_ipv6_family_override():
    if not CAPS.ipv6:
        pytest.skip("no IPv6")
    with serve_in_process("stdlib", "TCPServer", "echo", family="inet6") as proc:
        assert proc.address[0] == "::1"
        assert clients.roundtrip(proc.address, "inet6", b"six") == b"six"


def test_attrs_and_handler_base_reach_the_child():
    with serve_in_process("stdlib", "ThreadingTCPServer", "upper", handler_base="BaseRequestHandler",
                          attrs={"daemon_threads": True}) as proc:
        assert proc.ready["handler"] == "InstrumentedBaseRequestHandler_upper"
        assert clients.roundtrip(proc.address, "inet", b"x") == b"X"


def _impl_file(tmp_path, body: str) -> str:
    path = tmp_path / "impl_under_test.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_child_that_never_becomes_ready_times_out_with_stderr_and_is_killed(tmp_path):
    pidfile = tmp_path / "pid"
    impl = _impl_file(tmp_path, f"""
        import os, sys, threading
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        sys.stderr.write("MARKER: stuck while importing\\n")
        sys.stderr.flush()
        threading.Event().wait(60)
        from socketserver import *
    """)
    start = time.monotonic()
    with pytest.raises(HarnessTimeout, match="(?s)print its address.*MARKER: stuck"):
        with serve_in_process(impl, "TCPServer", ready_budget=1.5):
            pytest.fail("must not yield")  # pragma: no cover
    assert time.monotonic() - start < 1.5 + timeouts.short()
    assert _gone(int(pidfile.read_text()))


def test_stdout_noise_from_the_implementation_does_not_break_the_protocol(tmp_path):
    impl = _impl_file(tmp_path, """
        print("noise on stdout at import")
        from socketserver import *
    """)
    with serve_in_process(impl, "TCPServer", "echo") as proc:
        assert clients.roundtrip(proc.address, "inet", b"x") == b"x"
        timeouts.wait_until(lambda: "noise on stdout" in proc.stderr_tail(), timeouts.short(),
                            "the noise on stderr")


def test_errors_in_the_child_are_reported():
    # a missing class is a broken prerequisite (API-001), also across the process boundary
    with pytest.raises(PreconditionFailed, match="no server class 'SCTPServer'") as info:
        with serve_in_process("stdlib", "SCTPServer"):
            pass  # pragma: no cover
    assert info.value.prerequisite == "API-001"
    with pytest.raises(ImplementationError, match="no_such_module_xyz"):
        with serve_in_process("no_such_module_xyz", "TCPServer"):
            pass  # pragma: no cover
    with pytest.raises(KeyError, match="behaviour"):  # refused before spawning
        with serve_in_process("stdlib", "TCPServer", "dance"):
            pass  # pragma: no cover


def test_lifetime_bounds_an_abandoned_child():
    with serve_in_process("stdlib", "TCPServer", lifetime=0.3) as proc:
        timeouts.wait_until(lambda: proc.popen.poll() is not None, timeouts.short(),
                            "the child to stop by itself")
    assert "lifetime" in proc.teardown["reason"]


def _stuck_stop(fast_budget: float):
    """A child whose teardown hangs (a handler that never returns, block_on_close)."""
    proc_box = {}
    with pytest.raises(HarnessTimeout, match="to stop"):
        with serve_in_process("stdlib", "ThreadingTCPServer", "hang",
                              stop_budget=fast_budget) as proc:
            proc_box["proc"] = proc
            proc_box["pgid"] = os.getpgid(proc.pid) if hasattr(os, "getpgid") else None
            sock = clients.connect(proc.address, "inet")
            proc.log.wait_for(lambda ev: instrument.select(ev, kind="hang"), what="the hang")
            sock.close()
    return proc_box


@needs_signals
def test_a_child_that_will_not_stop_is_killed_with_its_group():
    box = _stuck_stop(0.5)
    proc = box["proc"]
    assert box["pgid"] == proc.pid  # its own session and process group
    assert proc.teardown["killed"] == "killpg(SIGKILL)"
    assert proc.teardown["returncode"] is not None and _gone(proc.pid)


def test_without_signals_the_child_is_killed_alone():
    with capabilities.simulate_absent("signals"):
        box = _stuck_stop(0.5)
    proc = box["proc"]
    if hasattr(os, "getpgid"):
        assert box["pgid"] == os.getpgrp()  # no new session: Windows has none
    assert proc.teardown["killed"] == "Popen.kill()"
    assert proc.teardown["returncode"] is not None and _gone(proc.pid)


@needs_fork
@needs_signals
def test_forked_children_outliving_the_server_are_reported_and_killed(fast):
    with serve_in_process("stdlib", "ForkingTCPServer", "hang",
                          attrs={"block_on_close": False}) as proc:
        sock = clients.connect(proc.address, "inet")
        events = proc.log.wait_for(lambda ev: instrument.select(ev, kind="hang"), what="the hang")
        child = instrument.select(events, kind="hang")[0]["pid"]
        sock.close()
    assert proc.teardown["alive_children"] == [child]
    assert proc.teardown["leaked_group"] is True
    assert proc.teardown["killed"] == "killpg(SIGKILL)"
    timeouts.wait_until(lambda: _gone(child), timeouts.short(), "the orphan to be killed")


@needs_fork
@needs_signals
def test_check_leaks_raises_for_surviving_children(fast):
    with pytest.raises(LeakError, match="children"):
        with serve_in_process("stdlib", "ForkingTCPServer", "hang", check_leaks=True,
                              attrs={"block_on_close": False}) as proc:
            with clients.connect(proc.address, "inet"):
                proc.log.wait_for(lambda ev: instrument.select(ev, kind="hang"), what="the hang")


def test_absent_capabilities_are_refused_before_spawning():
    with capabilities.simulate_absent("fork"):
        with pytest.raises(UnsupportedFeature, match="fork"):
            with serve_in_process("stdlib", "ForkingTCPServer"):
                pass  # pragma: no cover
    with capabilities.simulate_absent("af_unix"):
        with pytest.raises(UnsupportedFeature, match="af_unix"):
            with serve_in_process("stdlib", "UnixStreamServer"):
                pass  # pragma: no cover


def test_child_env_puts_the_checkout_on_pythonpath(monkeypatch):
    monkeypatch.setenv("SSCONFORM_TIMEOUT_MULTIPLIER", "2.0")
    env = supervisor.child_env()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(server_process.__file__))))
    assert env["PYTHONPATH"].split(os.pathsep)[0] == root
    assert env["SSCONFORM_TIMEOUT_MULTIPLIER"] == "2.0"


def test_monkey_patched_child_is_ready_and_stops():
    """gevent's patched threads are greenlets: the child must not block the
    hub reading stdin (it polls instead), or it would never become ready."""
    pytest.importorskip("gevent")
    if os.name != "posix":
        pytest.skip("cooperative stdin polling is POSIX-only")
    if shapes.active() is not None and not hasattr(os, "fork"):
        pytest.skip("gevent picks its POSIX modules by sys.platform and needs fcntl and os.fork there: "
                    "a Windows shape on Linux cannot stand in for gevent on Windows")
    with serve_in_process("gevent", "ThreadingTCPServer", "upper", ready_budget=timeouts.medium()) as proc:
        assert proc.ready["impl"]["extra"].get("monkey_patched") == "yes"
        assert clients.roundtrip(proc.address, "inet", b"green") == b"GREEN"
    assert proc.teardown["reason"] == "stop" and proc.teardown["returncode"] == 0
