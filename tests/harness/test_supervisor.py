"""The process supervisor: every step of stop() escalates past a child that ignores it.

Real children (POSIX): one that ignores the ask, one that also ignores SIGINT
and SIGTERM, one that forks a grandchild which ignores everything -- each is
stopped, reaped, and leaves no process of its group running.  Windows and
macOS paths are exercised by **simulation** (labelled so in each test):
macOS's EPERM from ``killpg`` for a group of zombies (XNU ``killpg1()``,
``bsd/kern/kern_sig.c``), and Windows' ``CREATE_NEW_PROCESS_GROUP`` /
``CTRL_BREAK_EVENT`` / ``SIGBREAK`` as the Python documentation describes them
(https://docs.python.org/3/library/subprocess.html#subprocess.Popen.send_signal,
https://docs.python.org/3/library/signal.html#signal.CTRL_BREAK_EVENT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from harness.core import capabilities, timeouts
from harness.processes import child_protocol, supervisor

needs_groups = pytest.mark.skipif(not supervisor.posix_groups(), reason="needs POSIX sessions and killpg")

#: A child that announces itself on the protocol, then waits for ever; BODY runs first.
CHILD = """
import os, signal, sys, threading
from harness.processes.child_protocol import Protocol, take_stdout
proto = Protocol(take_stdout())
{body}
proto.send(event="ready", pid=os.getpid())
threading.Event().wait()
"""


def _start(body: str = "") -> supervisor.Child:
    child = supervisor.start([sys.executable, "-c", CHILD.format(body=body)], what="a test child",
                             protocol=True, stdin=True)
    ready = child.await_message(("ready",), timeouts.long(), "the test child to start")
    assert ready is not None, child.stderr_tail()
    return child


_running = supervisor.process_running


@needs_groups
def test_a_child_that_stops_when_asked_is_only_asked():
    asked = supervisor.start([sys.executable, "-c", "import sys; sys.stdin.readline()"], what="asked", stdin=True)
    report = asked.stop()
    assert report["asked"] and report["interrupted"] is None and report["killed"] is None
    assert report["reaped"] and report["returncode"] == 0


@needs_groups
def test_a_child_that_ignores_the_ask_is_interrupted():
    child = _start()
    report = child.stop(ask_budget=timeouts.absence())
    assert report["asked"] and report["interrupted"] == "SIGINT"
    assert report["killed"] is None and report["reaped"]
    assert report["returncode"] != 0  # KeyboardInterrupt
    assert not supervisor.group_alive(child.pid)


@needs_groups
def test_a_child_that_ignores_the_ask_sigint_and_sigterm_is_killed_with_its_group():
    child = _start("signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    # the steps' bounds (ask, interrupt, reap, readers) plus one short() of slack for a loaded machine
    deadline = timeouts.Deadline(timeouts.absence() * 2 + timeouts.short() * 3, "stop()")
    report = child.stop(ask_budget=timeouts.absence(), interrupt_budget=timeouts.absence())
    assert not deadline.expired(), "stop() took longer than its steps' bounds"
    assert report["interrupted"] == "SIGINT" and report["killed"] == "killpg(SIGKILL)"
    assert report["reaped"] and report["returncode"] == -signal.SIGKILL
    assert not supervisor.group_alive(child.pid)


def _grandchild_body(pid_file: Path, leader_exits: bool) -> str:
    grandchild = ("import signal, threading; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGHUP, signal.SIG_IGN); "
                  "threading.Event().wait()")
    body = (f"g = __import__('subprocess').Popen([sys.executable, '-c', {grandchild!r}]); "
            f"open({str(pid_file)!r}, 'w').write(str(g.pid))")
    if leader_exits:  # the leader obeys the ask and leaves its grandchild behind
        body += "\nthreading.Thread(target=lambda: (sys.stdin.readline(), os._exit(0)), daemon=True).start()"
    return body


@needs_groups
@pytest.mark.parametrize("leader_exits", [True, False], ids=["leader-obeys", "leader-ignores-everything"])
def test_a_grandchild_that_ignores_every_signal_is_not_orphaned(tmp_path, leader_exits):
    pid_file = tmp_path / "grandchild.pid"
    child = _start(_grandchild_body(pid_file, leader_exits)
                   + ("" if leader_exits else "\nsignal.signal(signal.SIGINT, signal.SIG_IGN)"))
    grandchild = int(pid_file.read_text())
    try:
        assert os.getpgid(grandchild) == child.pid  # in the child's group
        report = child.stop(ask_budget=timeouts.short(), interrupt_budget=timeouts.absence())
        assert report["reaped"] and report["killed"] == "killpg(SIGKILL)"
        assert report["leaked_group"] is leader_exits  # the leader left; its grandchild ran on
        timeouts.wait_until(lambda: not _running(grandchild), timeouts.short(), "the grandchild to be killed")
        assert not supervisor.group_alive(child.pid)
    finally:
        if _running(grandchild):  # the test failed: leave nothing behind
            os.kill(grandchild, signal.SIGKILL)


@needs_groups
def test_run_once_returns_the_result_and_reaps():
    code = ("from harness.processes.child_protocol import Protocol, take_stdout; p = Protocol(take_stdout()); "
            "print('noise on stdout goes to stderr'); p.send(event='result', value=42)")
    message = supervisor.run_once([sys.executable, "-c", code], what="a one-shot child", budget=timeouts.long())
    assert message["value"] == 42
    with pytest.raises(RuntimeError, match="(?s)without a result.*boom"):
        supervisor.run_once([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"],
                            what="a silent child", budget=timeouts.long())
    with pytest.raises(timeouts.HarnessTimeout):
        supervisor.run_once([sys.executable, "-c", "import threading; threading.Event().wait()"],
                            what="a hung child", budget=timeouts.absence())


def test_run_captured_keeps_stdout_whole():
    done = supervisor.run_captured([sys.executable, "-c", "print('\\n'.join(map(str, range(300))))"],
                                   what="a chatty child", budget=timeouts.long())
    assert done.returncode == 0 and done.stdout.split() == [str(i) for i in range(300)]


def test_child_env_is_one_environment(monkeypatch):
    monkeypatch.setenv("SSCONFORM_TIMEOUT_MULTIPLIER", "2.0")
    monkeypatch.setenv("SSCONFORM_SIMULATE_ABSENT", "poll")
    for name in supervisor.RUN_SELECTION_VARS:
        monkeypatch.setenv(name, "from-the-parent")
    env = supervisor.child_env({"EXTRA": "1"})
    assert env["SSCONFORM_TIMEOUT_MULTIPLIER"] == "2.0" and env["SSCONFORM_SIMULATE_ABSENT"] == "poll"
    assert not [name for name in supervisor.RUN_SELECTION_VARS if name in env]
    assert env["EXTRA"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    if supervisor.CHECKOUT is not None:
        assert env["PYTHONPATH"].split(os.pathsep)[0] == supervisor.CHECKOUT


# ------------------------------------------------------------------ is the group alive?


@pytest.mark.parametrize("probe, members, alive", [
    (ProcessLookupError, None, False),   # ESRCH: nobody in the group
    (None, None, True),                  # killpg succeeded, no /proc to ask (macOS)
    (None, [], False),                   # only zombies, /proc says so (Linux)
    (None, [4242], True),                # a member runs
    (PermissionError, None, False),      # SIMULATED macOS: EPERM for a group of zombies, no /proc
    (PermissionError, [4242], True),     # EPERM but /proc shows a running member
], ids=["esrch", "ok-no-proc", "ok-zombies", "ok-running", "eperm-macos-simulated", "eperm-with-proc"])
def test_group_alive_has_one_answer(monkeypatch, probe, members, alive):
    """The EPERM rows simulate macOS: XNU's killpg1() (apple-oss-distributions/xnu,
    bsd/kern/kern_sig.c) skips zombies and returns EPERM when no member was signalled."""
    def killpg(pgid, signum):
        assert signum == 0
        if probe is not None:
            raise probe()

    monkeypatch.setattr(os, "killpg", killpg, raising=False)
    monkeypatch.setattr(supervisor, "_live_members", lambda pgid: members)
    assert supervisor.group_alive(4242) is alive


@needs_groups
def test_a_group_of_only_a_zombie_is_not_alive():
    """Real, on this OS: the leader has exited and is not reaped yet."""
    child = supervisor.start([sys.executable, "-c", "pass"], what="a short child")
    timeouts.wait_until(lambda: not _running(child.pid), timeouts.long(), "the child to exit")
    try:
        assert not supervisor.group_alive(child.pid)
    finally:
        assert child.stop()["reaped"]


# ------------------------------------------------------------------ Windows, simulated


class _FakePopen:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.pid = 4242
        self.stdin = self.stdout = self.stderr = None
        self.signals: List[int] = []
        self.killed = False

    def poll(self):
        return -9 if self.killed else None

    def send_signal(self, signum):
        self.signals.append(signum)

    def kill(self):
        self.killed = True

    def wait(self, timeout=None):
        if self.killed:
            return -9
        raise subprocess.TimeoutExpired("fake", timeout)


@pytest.fixture
def windows_simulated(monkeypatch):
    """SIMULATED Windows: no POSIX signals or sessions; CREATE_NEW_PROCESS_GROUP and
    CTRL_BREAK_EVENT exist with their documented values (subprocess, signal docs)."""
    monkeypatch.setattr(supervisor, "_caps_signals", lambda: False)
    monkeypatch.setattr(supervisor, "windows", lambda: True)
    monkeypatch.setattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200, raising=False)
    monkeypatch.setattr(signal, "CTRL_BREAK_EVENT", 1, raising=False)
    monkeypatch.setattr(subprocess, "Popen", _FakePopen)
    monkeypatch.setattr(supervisor.shutil, "which", lambda name: None)  # no taskkill here: Popen.kill
    with capabilities.simulate_absent("signals"):
        yield


def test_windows_simulated_start_interrupt_and_kill(windows_simulated):
    child = supervisor.start(["pytest"], what="a simulated Windows child")
    assert child.popen.kwargs.get("creationflags") == 0x200 and "start_new_session" not in child.popen.kwargs
    report = child.stop(interrupt_budget=timeouts.absence())
    assert child.popen.signals == [1]  # CTRL_BREAK_EVENT, to the group the child leads
    assert report["interrupted"] == "CTRL_BREAK_EVENT" and report["killed"] == "Popen.kill()"
    assert report["reaped"]


def test_windows_simulated_taskkill_ends_the_tree(windows_simulated, monkeypatch):
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(supervisor.shutil, "which", lambda name: r"C:\Windows\System32\taskkill.exe")
    monkeypatch.setattr(subprocess, "run", run)
    child = supervisor.start(["pytest"], what="a simulated Windows child")
    assert child.kill_group() == "taskkill /F /T"
    assert calls == [[r"C:\Windows\System32\taskkill.exe", "/F", "/T", "/PID", "4242"]]


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs a spare signal to stand in for SIGBREAK")
def test_sigbreak_simulated_and_sigterm_raise_keyboard_interrupt_in_the_child(monkeypatch):
    """SIMULATED SIGBREAK (Windows delivers CTRL_BREAK_EVENT to Python as signal.SIGBREAK):
    SIGUSR1 stands in for it.  SIGTERM is real."""
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)}
    for signum in before:
        signal.signal(signum, signal.SIG_DFL)
    restore = child_protocol.interrupt_on_stop_signals()
    try:
        for signum in (signal.SIGUSR1, signal.SIGTERM):
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signum)  # the handler runs before raise_signal returns
    finally:
        restore()
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
