"""When the whole pytest process outlives ``ssconform run``'s bound, what it did is kept.

Theory of operation
-------------------
The CLI bounds each pytest process (``--run-bound SECONDS``, by default
1800 s times the timeout multiplier).  An
implementation that hangs in many checks can exceed that bound even though
every single check ends within its own budget.  The CLI then interrupts
pytest first (SIGINT: pytest finishes as interrupted and the plugin writes
the record of the checks that ended), then kills the process group, and keeps
that record marked *aborted* by the bound -- so the report still says which
checks hung and why.  The unit tests drive ``harness.cli.main.main`` with a fake
pytest process (``suite_run.command_for`` patched); the end-to-end test runs the
real suite against ``impls/hang_shutdown.py`` at a small multiplier so
that the bound fires.  Also here: the private ``TMPDIR`` the CLI gives every
pytest process, and its removal.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

import pytest
import reliability_support as rs

from harness.cli import main as cli
from harness.cli import suite_run
from harness.core import capabilities, timeouts
from harness.results import records

needs_signals = pytest.mark.skipif(not capabilities.caps().signals, reason="needs POSIX signals")


@pytest.fixture(autouse=True)
def _restore_multiplier(monkeypatch):
    monkeypatch.setattr(timeouts, "_multiplier", None)
    monkeypatch.setenv(timeouts.ENV_VAR, "1.0")


def _fake_pytest(monkeypatch, body: str) -> None:
    prelude = f"import os, sys, tempfile, threading; sys.path.insert(0, {str(rs.HERE)!r}); import reliability_support as rs\n"
    code = prelude + body

    def command_for(python, info, args):
        return [sys.executable, "-c", code]

    monkeypatch.setattr(suite_run, "command_for", command_for)


@needs_signals
@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_stopped_run_keeps_the_record_of_the_checks_that_ended(tmp_path, monkeypatch, capsys, sigint):
    """Also when ssconform itself ignores SIGINT (``nohup``, ``cmd &`` in a script): an
    ignored disposition is inherited across exec, so the CLI must undo it for the child."""
    import signal

    if sigint == "ignored":
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        request_restore = previous
    else:
        request_restore = None
    out = tmp_path / "out"
    _fake_pytest(monkeypatch, (
        "try:\n"
        "    threading.Event().wait()\n"  # a suite that would never end
        "except KeyboardInterrupt:\n"
        f"    rs.write_fake_record({str(out)!r}, {{'API-001': 'PASS', 'SHUTDOWN-004': 'TIMEOUT'}})\n"
        "    raise SystemExit(2)\n"
    ))
    try:
        assert cli.main(["run", "--impl", "stdlib", "--out", str(out), "--no-report", "--run-bound", "10"]) == 1
        if request_restore is not None:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN, "the CLI must restore SIG_IGN"
    finally:
        if request_restore is not None:
            signal.signal(signal.SIGINT, request_restore)
    [(path, record)] = records.load_records(out)
    assert {c["id"]: c["outcome"] for c in record["checks"]} == {"API-001": "PASS", "SHUTDOWN-004": "TIMEOUT"}
    assert record["aborted"] == "pytest process killed after 10s (ssconform run bound); 2 check(s) had finished"
    err = capsys.readouterr().err
    assert "ABORTED" in err and "TIMEOUT  SHUTDOWN-004" in err


@needs_signals
def test_a_run_that_ignores_the_interrupt_is_killed_and_still_recorded(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _fake_pytest(monkeypatch, (
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "threading.Event().wait()\n"
    ))
    monkeypatch.setattr(timeouts, "medium", lambda: 0.5)  # the grace after SIGINT
    deadline = timeouts.Deadline(timeouts.short() * 3, "the stopped run")
    assert cli.main(["run", "--impl", "stdlib", "--out", str(out), "--no-report", "--run-bound", "2"]) == 1
    assert not deadline.expired()
    [(path, record)] = records.load_records(out)
    assert record["checks"] == [] and record["aborted"].startswith("pytest process killed after 2s")


@pytest.mark.parametrize("tmpdir", ["default", "long"])
def test_each_pytest_process_gets_a_private_short_tmpdir_that_is_removed(tmp_path, monkeypatch, capsys, tmpdir):
    """Short even when the caller's TMPDIR is long (then under /tmp): otherwise private_dir()
    would make its AF_UNIX directories in /tmp, outside the directory the CLI removes."""
    if tmpdir == "long":
        long_dir = tmp_path / ("t" * 40)
        long_dir.mkdir()
        monkeypatch.setenv("TMPDIR", str(long_dir))
        monkeypatch.setattr(tempfile, "tempdir", None)
    seen = tmp_path / "seen"
    out = tmp_path / "out"
    _fake_pytest(monkeypatch, (
        f"open({str(seen)!r}, 'w').write(tempfile.gettempdir())\n"
        "leak = tempfile.mkdtemp(prefix='ssc-')\n"  # a private directory nobody removes
        "open(os.path.join(leak, 'events.jsonl'), 'w').close()\n"
        f"rs.write_fake_record({str(out)!r}, {{'API-001': 'PASS'}})\n"
    ))
    assert cli.main(["run", "--impl", "stdlib", "--out", str(out), "--no-report"]) == 0
    scratch = Path(seen.read_text())
    assert scratch.name.startswith("ssconform-")
    if capabilities.caps().af_unix:  # short enough for AF_UNIX paths inside it (macOS sun_path: 104 bytes)
        assert len(str(scratch)) <= 32
    else:  # Windows: no AF_UNIX, and TEMP (~40-55 characters) is kept
        assert scratch.parent == Path(tempfile.gettempdir())
    assert not scratch.exists(), "the CLI did not remove the run's TMPDIR"
    err = capsys.readouterr().err
    assert "left 2 temporary file(s) behind (removed)" in err and "events.jsonl" in err


def test_the_private_tmpdir_is_mode_0700(tmp_path, monkeypatch):
    seen = tmp_path / "seen"
    out = tmp_path / "out"
    _fake_pytest(monkeypatch, (
        f"open({str(seen)!r}, 'w').write(oct(os.stat(tempfile.gettempdir()).st_mode & 0o777))\n"
        f"rs.write_fake_record({str(out)!r}, {{'API-001': 'PASS'}})\n"
    ))
    assert cli.main(["run", "--impl", "stdlib", "--out", str(out), "--no-report"]) == 0
    if os.name == "posix":
        assert seen.read_text() == oct(stat.S_IRWXU)


@needs_signals
@pytest.mark.skipif(not rs.proc_environ_readable(), reason="needs Linux /proc")
def test_end_to_end_a_suite_that_outlives_the_bound_still_reports_what_hung(tmp_path):
    """The whole suite against a server_close() that never returns, multiplier 0.1, bounded at
    12 s: the run (about 35 s here since a hang is found once per process by
    harness.serving.prerequisite_probes, and every later check needing server_close() ends
    PRECONDITION_FAILED at once; it used to take over 60 s) is cut by the bound; the record
    keeps the checks that ended, those that name the hang among them, and the report names it.
    (hang_serve_forever would be the harder case, but there the interrupt can be
    swallowed by a teardown that also times out: test_reliability_interrupt.py.)"""
    out = tmp_path / "out"
    impl = rs.IMPLS / "hang_server_close.py"
    run = rs.ssconform(["run", "--impl", str(impl), "--out", str(out), "--timeout-multiplier", "0.1",
                        "--run-bound", "12"], timeouts.long() * 3)
    try:
        assert not run.timed_out and run.returncode == 1, run.stderr[-3000:]
        record = rs.only_record(out)
        assert record.get("aborted", "").startswith("pytest process killed after 12s (ssconform run bound)"), record
        hung = [c for c in record["checks"] if c["outcome"] in ("TIMEOUT", "PRECONDITION_FAILED")
                and "server_close()" in c["message"]]
        assert hung, ("no check that ended names the hung server_close()",
                      [(c["id"], c["outcome"]) for c in record["checks"]][:20])
        report = (out / "report.md").read_text(encoding="utf-8").replace("\\_", "_")  # Markdown escapes '_'
        assert "ssconform run bound" in report and "server_close()" in report
        timeouts.wait_until(lambda: not rs.tagged_processes(run.tag), timeouts.medium(),
                            "the run's processes to end")
        assert not list(run.tmpdir.iterdir()), "the run left files in its TMPDIR"
    finally:
        strays = rs.tagged_processes(run.tag)
        rs.cleanup(run)
    assert not strays, strays


def test_a_process_kept_alive_after_its_record_is_stopped_and_the_record_kept_whole(tmp_path, monkeypatch, capsys):
    """A stuck non-daemon thread of the implementation (a ThreadingMixIn handler that never
    returns) blocks interpreter exit after the record was written: the CLI must not wait for
    its whole-run bound, and the record is not 'aborted'."""
    out = tmp_path / "out"
    _fake_pytest(monkeypatch, (
        f"rs.write_fake_record({str(out)!r}, {{'THREADING-001': 'TIMEOUT'}})\n"
        "threading.Thread(target=threading.Event().wait).start()\n"  # non-daemon, never ends
    ))
    # the default bound (1800 s) must not be reached: the CLI stops waiting once the record is written
    deadline = timeouts.Deadline(timeouts.medium() * 3, "the CLI")
    assert cli.main(["run", "--impl", "stdlib", "--out", str(out), "--no-report"]) == 1
    assert not deadline.expired(), "the CLI waited for the whole-run bound"
    [(path, record)] = records.load_records(out)
    assert not record.get("aborted") and [c["outcome"] for c in record["checks"]] == ["TIMEOUT"]
    assert "wrote its record but did not exit" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGUSR1"), reason="needs a spare signal to stand in")
def test_windows_simulated_the_bound_sends_ctrl_break_and_keeps_the_record(tmp_path, monkeypatch, capsys):
    """SIMULATED Windows (issue 13 finding 7): no POSIX signals, so the bound's interruption
    is CTRL_BREAK_EVENT to the pytest process's new process group
    (https://docs.python.org/3/library/subprocess.html#subprocess.Popen.send_signal), which
    CPython delivers as signal.SIGBREAK; the plugin turns that into KeyboardInterrupt
    (harness.processes.child_protocol.interrupt_on_stop_signals), so pytest writes the record of the
    checks that ended.  SIGUSR1 stands in for CTRL_BREAK_EVENT/SIGBREAK on both sides."""
    import signal

    from harness.processes import supervisor

    monkeypatch.setattr(supervisor, "_caps_signals", lambda: False)
    monkeypatch.setattr(signal, "CTRL_BREAK_EVENT", signal.SIGUSR1, raising=False)
    out = tmp_path / "out"
    _fake_pytest(monkeypatch, (
        "import signal\n"
        "signal.SIGBREAK = signal.SIGUSR1\n"  # the simulated Windows console signal
        "from harness.processes.child_protocol import interrupt_on_stop_signals\n"
        "interrupt_on_stop_signals()\n"
        "try:\n"
        "    threading.Event().wait()\n"
        "except KeyboardInterrupt:\n"
        f"    rs.write_fake_record({str(out)!r}, {{'API-001': 'PASS'}})\n"
        "    raise SystemExit(2)\n"
    ))
    assert cli.main(["run", "--impl", "stdlib", "--out", str(out), "--no-report", "--run-bound", "3"]) == 1
    [(path, record)] = records.load_records(out)
    assert [c["outcome"] for c in record["checks"]] == ["PASS"]
    assert record["aborted"].startswith("pytest process killed after 3s (ssconform run bound)")
