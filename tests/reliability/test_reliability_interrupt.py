"""An interrupt (Ctrl-C, or the SIGINT ``ssconform run`` sends when its bound runs out)
must stop the run even while the kit is waiting for a hung implementation.

Theory of operation
-------------------
Against a hanging implementation most of a run's time is spent inside the
kit's bounded teardown waits (``shutdown()`` in a helper thread, the join of
the serve thread).  A ``KeyboardInterrupt`` raised there must leave the
teardown and reach pytest, which then ends the session and the plugin writes
the record of the checks that ended.  If a teardown step catches
``BaseException`` and records it as one more teardown problem, the interrupt
is lost: the run goes on (or is killed without a record).

The test serves ``impls/hang_shutdown.py``'s (and ``hang_serve_forever.py``'s) ``TCPServer`` with
:func:`harness.serving.servers.serve_in_thread` and arranges for SIGINT to arrive
while the teardown waits for the hung ``shutdown()`` (a one-shot interval
timer; Python's default SIGINT handler raises ``KeyboardInterrupt`` in the
main thread).  ``KeyboardInterrupt`` must come out of the ``with`` block.

The end-to-end test at the bottom does it to the whole CLI: ``ssconform run``
against ``hang_shutdown.py`` gets SIGTERM (what ``timeout``, a cancelled CI
job and ``docker stop`` send), SIGINT or SIGHUP once five checks have
finished.  Every process of the run carries a tag in its environment
(:mod:`reliability_support`), so survivors are found wherever they were
re-parented.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest
import reliability_support as rs

from harness.cli import suite_run
from harness.core import capabilities, timeouts
from harness.serving import servers

pytestmark = pytest.mark.skipif(
    not (capabilities.caps().signals and hasattr(signal, "setitimer")), reason="needs POSIX interval timers")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"ssc_rel_{name}", rs.IMPLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["hang_shutdown", "hang_serve_forever"])
def test_an_interrupt_during_a_hung_teardown_is_not_swallowed(name):
    """hang_shutdown: only the shutdown() wait is interrupted.  hang_serve_forever: the
    later join of the serve thread times out as well, and that HarnessTimeout must not
    replace the interrupt."""
    assert threading.current_thread() is threading.main_thread()
    hang = _load(name)
    server = hang.TCPServer(("127.0.0.1", 0), hang.BaseRequestHandler)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    budget = timeouts.short()
    outcome = None
    try:
        try:
            with servers.serve_in_thread(server, shutdown_budget=budget, check_leaks=False):
                # leaving the block starts the teardown; SIGINT arrives half-way through its wait
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, lambda *a: signal.raise_signal(signal.SIGINT))
                signal.setitimer(signal.ITIMER_REAL, budget / 2)
        except KeyboardInterrupt:
            outcome = "KeyboardInterrupt"
        except BaseException as exc:  # what the teardown turned the interrupt into
            outcome = f"{type(exc).__name__}: {exc}"
        else:
            outcome = "nothing"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, previous)
        _end_abandoned_loop(server)
    assert outcome == "KeyboardInterrupt", f"the interrupt was swallowed by the teardown: {outcome}"


class _Abandon(BaseException):
    pass


def _end_abandoned_loop(server) -> None:
    """Stop a serve_forever loop the teardown gave up on (hang_serve_forever ignores
    shutdown()): its next service_actions() call raises, then the socket is closed.
    Closing first would make the loop spin on a closed descriptor for the rest of the session."""
    def abandon(*args, **kwargs):
        raise _Abandon()

    server.service_actions = abandon
    try:
        timeouts.wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("ssc-serve:")],
                            timeouts.short(), "the abandoned serve_forever() loop to end")
    finally:
        server.socket.close()


# ------------------------------------------------------------------ the whole run, end to end


def _start_ssconform(args, tag, tmpdir):
    import subprocess
    import sys

    env = rs.base_env({rs.TAG_VAR: tag, "TMPDIR": str(tmpdir)})
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=str(rs.REPO), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _read_until_progress(stream, checks: int, budget: float) -> bytes:
    """Read ssconform's stdout (pytest -q progress) until ``checks`` results were printed."""
    import queue

    chunks: queue.Queue[bytes] = queue.Queue()

    def read() -> None:
        import os as _os

        for _ in range(1_000_000):
            chunk = _os.read(stream.fileno(), 4096)
            chunks.put(chunk)
            if not chunk:
                return

    threading.Thread(target=read, daemon=True).start()
    seen = b""
    deadline = timeouts.Deadline(budget, f"{checks} checks to finish")
    def progress() -> bytes:  # pytest -q's result characters, not xdist's "bringing up nodes..."
        return seen.replace(b"bringing up nodes...", b"")

    while sum(progress().count(c) for c in (b".", b"F", b"E")) < checks:
        try:
            chunk = chunks.get(timeout=max(deadline.remaining(), 0.001))
        except queue.Empty:
            raise timeouts.HarnessTimeout(deadline.what, budget) from None
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.skipif(not rs.proc_environ_readable(), reason="needs Linux /proc to find survivors")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signalled_run_stops_its_process_group_and_keeps_the_finished_checks(tmp_path, signame):
    """``timeout 900 ssconform run`` (SIGTERM), Ctrl-C (SIGINT) and a closed terminal (SIGHUP)
    against an implementation whose shutdown() hangs: ssconform must stop the pytest process
    it started in a session of its own -- and everything in that group -- keep the record of
    the checks that finished, marked aborted with the signal, and exit 128 + N."""
    import tempfile
    import uuid

    signum = getattr(signal, signame)
    tag = uuid.uuid4().hex
    tmpdir = Path(tempfile.mkdtemp(prefix="sscrel-", dir="/tmp" if os.path.isdir("/tmp") else None))
    out = tmp_path / "out"
    impl = rs.IMPLS / "hang_shutdown.py"
    process = _start_ssconform(["run", "--impl", str(impl), "--out", str(out), "--no-report",
                                "--timeout-multiplier", "0.1"], tag, tmpdir)
    strays = []
    try:
        _read_until_progress(process.stdout, 5, timeouts.long())
        assert [p for p in rs.tagged_processes(tag) if p.pid != process.pid], "no pytest process to stop"
        process.send_signal(signum)  # to ssconform alone, as `timeout` and `kill` do
        returncode = process.wait(timeout=timeouts.long())
        stderr = process.stderr.read().decode("utf-8", "replace")
        assert returncode == 128 + signum, stderr[-3000:]
        timeouts.wait_until(lambda: not rs.tagged_processes(tag), timeouts.short(),
                            "every process of the run to be gone")
        record = rs.only_record(out)
        assert record["aborted"].startswith(f"ssconform interrupted by {signame}; "), record["aborted"]
        # pytest prints a check's "." after its call; until its teardown is reported it has not
        # finished, and each xdist worker may have one such check in flight
        assert len(record["checks"]) >= 5 - int(suite_run.DEFAULT_WORKERS), "the checks that finished were not kept"
        assert f"interrupted by {signame}" in stderr
    finally:
        strays = rs.tagged_processes(tag)
        rs.kill([p.pid for p in strays] + [process.pid])
        process.wait(timeout=timeouts.short())
        for stream in (process.stdout, process.stderr):
            stream.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    assert not strays, f"orphaned after {signame}: {strays}"
