"""The one supervisor of every child process the kit starts.

Theory of operation
-------------------
"Nothing hangs, nothing is orphaned" is kept here, once.  Every child of the
kit -- the suite's pytest processes (``ssconform run``), server processes
(:mod:`harness.processes.server_process`), bench servers (:mod:`harness.bench.runner`),
forking labs and the one-shot helper scripts of the checks -- is started by
:func:`start` and ends in :meth:`Child.stop`.

**Start.**  The child gets a process group of its own, so that everything it
forks (a forking server's handler children, pytest-xdist workers) can be
stopped as one: on POSIX a new session (``start_new_session=True``, i.e.
``setsid()`` in the child, whose pid becomes the group id); on Windows
``CREATE_NEW_PROCESS_GROUP``, the flag that lets ``CTRL_BREAK_EVENT`` be sent
to it (https://docs.python.org/3/library/subprocess.html#subprocess.Popen.send_signal).
Its environment is :func:`child_env` and its working directory
:func:`child_cwd`, the same for every child.

**Read.**  With ``protocol=True`` the child's stdout is a pipe carrying JSON
lines, one message each; the child side (:mod:`harness.processes.child_protocol`)
keeps the real stdout as a private descriptor and points its own fd 1 at
stderr, so nothing the implementation prints can corrupt a message.  Its
stderr is kept as a tail of the last lines, for error messages.  Both are
read by daemon threads into a queue and a bounded deque (``select()`` does
not work on pipes on Windows), so every wait for a message is a bounded
queue get (:meth:`Child.next_message`).  Without a protocol the output is
either inherited (a pytest run on the terminal) or relayed line by line to
a callback (two pytest runs at once, each line prefixed by the caller).

**Stop** (:meth:`Child.stop`) escalates, each step bounded by
:mod:`harness.core.timeouts`, and ends as soon as the child has exited (or the
caller's ``until`` says it has done what it had to, e.g. written its
record):

1. *ask*: write ``stop`` to its stdin and close it -- every protocol child
   stops on that line or on end of file, so an orphan whose parent died
   stops too;
2. *interrupt*: SIGINT to the child on POSIX (Python raises
   ``KeyboardInterrupt``; pytest then ends the session and the plugin writes
   the record of the checks that ended); ``CTRL_BREAK_EVENT`` to its process
   group on Windows, which has no SIGINT to send to another process group
   (CPython maps it to ``signal.SIGBREAK``, which the plugin turns into
   ``KeyboardInterrupt`` as well);
3. *kill the group*: ``killpg(SIGKILL)`` on POSIX -- the leader and
   everything it forked, even a grandchild that ignores every signal it may
   catch; on Windows ``taskkill /F /T /PID`` (the process and the processes
   it started, https://learn.microsoft.com/windows-server/administration/windows-commands/taskkill),
   then ``TerminateProcess`` (``Popen.kill``);
4. *reap*: ``wait()`` for the leader, bounded by ``short()``.  Its forked
   children are reaped by the leader or, once it is gone, by init; the
   group kill leaves none of them running.

**Is the group alive?** (:func:`group_alive`, one answer everywhere).  On
POSIX ``killpg(pgid, 0)``:

* ``ESRCH`` (``ProcessLookupError``): no process is in the group: dead.
* success: some process is in the group, but a zombie counts.  Where
  ``/proc`` exists (Linux) its members are read and only non-zombies count
  (an init that does not reap, as in some containers, leaves zombies
  behind).  Without ``/proc`` success means alive.
* ``EPERM`` (``PermissionError``): the kit's children run as the kit's own
  user, so this is not a permission problem.  XNU's ``killpg1()`` (macOS,
  ``bsd/kern/kern_sig.c`` of apple-oss-distributions/xnu) skips zombie
  members and returns EPERM when no member was left to signal; FreeBSD's
  kill(2) manual page likewise documents EPERM for a group in which some
  member "could not be signaled".  A group that holds only zombies is *not
  alive*: nothing in it runs, and a SIGKILL could not do anything either.
  So EPERM means dead, after asking ``/proc`` where it exists.

On Windows there are no process groups to probe: the answer is whether the
leader still runs, and the group kill (``taskkill /T``) covers the tree.

The environment (:func:`child_env`): ours, with the source checkout first on
``PYTHONPATH`` when the kit runs from one (the child runs the same kit, with
or without an installed entry point), ``PYTHONUNBUFFERED=1``, and without
the plugin's *run selection* variables (``SSCONFORM_IMPL``,
``SSCONFORM_OUT``, ``SSCONFORM_EXPECTATIONS``, ``SSCONFORM_REPEAT_INDEX``):
those describe one pytest run and a child is always told explicitly what to
do.  Every other ``SSCONFORM_*`` variable (the timeout multiplier, a
simulated absence) is inherited.

Module imports: ``subprocess`` and ``threading`` at import time, so child
programs that must run an adapter's monkey-patching first
(:mod:`harness.processes.server_process`) import this module only in their parent-side
functions.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence

from harness.core import prerequisites, timeouts
from harness.results import packaged

STOP_LINE = b"stop\n"
#: Environment variables that select one pytest run of the plugin: never inherited.
RUN_SELECTION_VARS = ("SSCONFORM_IMPL", "SSCONFORM_OUT", "SSCONFORM_EXPECTATIONS", "SSCONFORM_REPEAT_INDEX")

#: The source checkout the kit runs from, or None (an installed wheel).
CHECKOUT: Optional[str] = str(packaged.CHECKOUT) if packaged.CHECKOUT is not None else None


# ------------------------------------------------------------------ environment --


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of every child (see the module docstring)."""
    env = dict(os.environ)
    for name in RUN_SELECTION_VARS:
        env.pop(name, None)
    if CHECKOUT is not None:
        parts = [CHECKOUT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def child_cwd(fallback: Optional[str] = None) -> str:
    """Where a ``python -m`` child starts: ``-m`` puts the working directory first on
    ``sys.path``, so start where no stray ``harness/`` or ``conformance/`` can shadow
    ours -- the checkout, else ``fallback``, else the temporary directory."""
    if CHECKOUT is not None:
        return CHECKOUT
    return fallback if fallback is not None else tempfile.gettempdir()


# ------------------------------------------------------------------ platform --


def _caps_signals() -> bool:
    from harness.core.capabilities import caps

    return bool(caps().signals)


def windows() -> bool:
    """Whether this is Windows (a function, so that tests can simulate it)."""
    return os.name == "nt"


def posix_groups() -> bool:
    """Whether children get a POSIX session and are stopped by process-group signals."""
    return os.name == "posix" and hasattr(os, "killpg") and hasattr(os, "setsid") and _caps_signals()


def pid_exists(pid: int) -> bool:
    """Whether process ``pid`` exists, a zombie included (it was not reaped):
    ``kill(pid, 0)``, EPERM meaning it exists.  POSIX only (on Windows ``os.kill``
    would terminate the process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie: its state in /proc where that
    exists, else :func:`pid_exists`.  POSIX only."""
    if not os.path.isdir("/proc/self"):
        return pid_exists(pid)
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2:].split()
    return bool(fields) and fields[0] != "Z"


def _live_members(pgid: int) -> Optional[List[int]]:
    """Non-zombie processes of group ``pgid`` from /proc (None: no /proc)."""
    if not os.path.isdir("/proc/self"):
        return None
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether a process of POSIX process group ``pgid`` still runs (zombies do not
    count; EPERM means only zombies are left -- see the module docstring)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        members = _live_members(pgid)
        return bool(members)  # no /proc (macOS): only zombies are left
    members = _live_members(pgid)
    return True if members is None else bool(members)


# ------------------------------------------------------------------ the child --


class Child:
    """A started child process and what the supervisor read from it."""

    def __init__(self, popen: subprocess.Popen[bytes], *, group: bool, protocol: bool,
                 what: str, tail_lines: int = 200):
        self.popen = popen
        self.group = group
        self.what = what
        self.messages: queue.Queue[Dict[str, Any]] = queue.Queue()
        self._tail: Deque[str] = collections.deque(maxlen=tail_lines)
        self._lock = threading.Lock()
        self._protocol = protocol
        self.stopped: Dict[str, Any] = {}
        #: stdout, whole, for ``output="capture"``
        self.captured: List[str] = []
        self._readers: List[threading.Thread] = []

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    # ---------------------------------------------------------------- reading

    def _read_protocol(self, stream: Any) -> None:
        try:
            for _ in range(1_000_000):
                line = stream.readline()
                if not line:
                    break
                try:
                    message = json.loads(line.decode("utf-8"))
                except ValueError:
                    message = {"event": "garbage", "line": line[:200].decode("utf-8", "replace")}
                if isinstance(message, dict) and message.get("event") == prerequisites.FIRED_EVENT:
                    self._guard_fired(message)
                if isinstance(message, dict) and message.get("event") == "loop_error":  # slow-serve
                    prerequisites.loop_died(str(message.get("error")), "serving loop (in a child process)")
                self.messages.put(message if isinstance(message, dict) else {"event": "garbage", "line": repr(message)})
        except (OSError, ValueError):
            pass
        finally:
            self.messages.put({"event": "eof"})

    @staticmethod
    def _guard_fired(message: Dict[str, Any]) -> None:
        """The child ended a call known not to return: the check waiting for it ends now."""
        found = message.get("precondition")
        if isinstance(found, list) and len(found) == 2:
            with contextlib.suppress(KeyError):  # an unknown behaviour: the check's own wait judges
                prerequisites.GUARD.fired_elsewhere(str(found[0]), str(found[1]))

    def _read_lines(self, stream: Any, relay: Optional[Callable[[str], None]], capture: bool = False) -> None:
        try:
            for _ in range(100_000_000):
                line = stream.readline()
                if not line:
                    break
                text = line.decode("utf-8", "replace")
                with self._lock:
                    (self.captured if capture else self._tail).append(text)
                if relay is not None:
                    relay(text)
        except (OSError, ValueError):
            pass
        finally:
            if capture:
                self.messages.put({"event": "eof"})

    def _start_readers(self, relay: Optional[Callable[[str], None]], capture: bool) -> None:
        popen = self.popen
        if self._protocol and popen.stdout is not None:
            self._readers.append(threading.Thread(target=self._read_protocol, args=(popen.stdout,), daemon=True,
                                                  name=f"ssc-child-{popen.pid}-proto"))
        elif popen.stdout is not None:  # captured, or relayed (stderr merged into it)
            self._readers.append(threading.Thread(target=self._read_lines, args=(popen.stdout, relay, capture),
                                                  daemon=True, name=f"ssc-child-{popen.pid}-out"))
        if popen.stderr is not None:
            self._readers.append(threading.Thread(target=self._read_lines, args=(popen.stderr, None), daemon=True,
                                                  name=f"ssc-child-{popen.pid}-err"))
        for reader in self._readers:
            reader.start()

    def drain(self, budget: float) -> bool:
        """Wait (bounded) until every reader has seen the end of its pipe, so that
        :meth:`stderr_tail` holds all a child that has exited wrote (a reader may
        lag behind the exit).  Whether they all finished in time.  A grandchild
        that keeps a pipe open makes this run out of time, never hang."""
        deadline = timeouts.Deadline(budget, f"{self.what}: its output readers")
        for reader in self._readers:
            reader.join(timeout=max(deadline.remaining(), 0.0))
        return not any(reader.is_alive() for reader in self._readers)

    def stderr_tail(self, lines: int = 40) -> str:
        with self._lock:
            return "".join(list(self._tail)[-lines:])

    def next_message(self, deadline: timeouts.Deadline) -> Optional[Dict[str, Any]]:
        """The next protocol message, or None when ``deadline`` passed first."""
        try:
            return self.messages.get(timeout=max(deadline.remaining(), 0.001))
        except queue.Empty:
            return None

    def await_message(self, events: Sequence[str], budget: float, what: str) -> Optional[Dict[str, Any]]:
        """The first message whose ``event`` is in ``events``; None on ``eof`` or when
        ``budget`` runs out (other messages are skipped, at most 10 000 of them)."""
        deadline = timeouts.Deadline(budget, what)
        for _ in range(10_000):
            message = self.next_message(deadline)
            if message is None or message.get("event") == "eof":
                return None
            if message.get("event") in events:
                return message
        return None

    # ---------------------------------------------------------------- stopping

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, budget: float, until: Optional[Callable[[], bool]] = None) -> Optional[int]:
        """Wait (bounded) for the child to exit, or for ``until()``; its exit status or None."""
        if until is None:
            try:
                return self.popen.wait(timeout=max(budget, 0.0))
            except subprocess.TimeoutExpired:
                return None
        with contextlib.suppress(timeouts.HarnessTimeout):
            timeouts.wait_until(lambda: self.popen.poll() is not None or until(), budget, self.what)
        return self.popen.poll()

    def ask(self) -> bool:
        """Step 1: ``stop`` on stdin, then end of file.  Whether there was a stdin to ask on."""
        stdin = self.popen.stdin
        if stdin is None:
            return False
        with contextlib.suppress(OSError, ValueError):
            stdin.write(STOP_LINE)
            stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            stdin.close()
        return True

    def interrupt(self) -> Optional[str]:
        """Step 2: SIGINT (POSIX) or CTRL_BREAK_EVENT to the group (Windows); how, or None."""
        if self.popen.poll() is not None:
            return None
        try:
            if os.name == "posix" and _caps_signals():
                os.kill(self.popen.pid, signal.SIGINT)
                return "SIGINT"
            ctrl_break = getattr(signal, "CTRL_BREAK_EVENT", None)
            if self.group and ctrl_break is not None:
                self.popen.send_signal(ctrl_break)  # to the new process group it leads
                return "CTRL_BREAK_EVENT"
        except OSError:
            return None
        return None

    def group_alive(self) -> bool:
        """Whether anything of the child's group still runs (see :func:`group_alive`)."""
        if self.group and posix_groups():
            return group_alive(self.popen.pid)
        return self.popen.poll() is None

    def kill_group(self) -> str:
        """Step 3: kill the child and everything in its group; how, for the record."""
        if self.group and posix_groups():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            return "killpg(SIGKILL)"
        how = "Popen.kill()"
        taskkill = shutil.which("taskkill") if windows() else None
        if taskkill and self.popen.poll() is None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run([taskkill, "/F", "/T", "/PID", str(self.popen.pid)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeouts.short())
                how = "taskkill /F /T"
        with contextlib.suppress(OSError):
            self.popen.kill()
        return how

    def stop(self, *, ask: bool = True, ask_budget: Optional[float] = None,
             interrupt: bool = True, interrupt_budget: Optional[float] = None,
             until: Optional[Callable[[], bool]] = None) -> Dict[str, Any]:
        """Ask, interrupt, kill the group, reap: each step bounded, each skipped once the
        child has exited (or ``until()`` holds).  Returns (and keeps in :attr:`stopped`)
        what happened: ``asked``, ``interrupted``, ``killed``, ``leaked_group`` (processes
        of the group ran on after the leader exited), ``returncode``, ``reaped``."""
        if self.stopped:
            return self.stopped
        with prerequisites.GUARD.hold():  # a child's late report must not interrupt its reaping
            return self._stop(ask, ask_budget, interrupt, interrupt_budget, until)

    def _stop(self, ask: bool, ask_budget: Optional[float], interrupt: bool, interrupt_budget: Optional[float],
              until: Optional[Callable[[], bool]]) -> Dict[str, Any]:
        report: Dict[str, Any] = {"asked": False, "interrupted": None, "killed": None,
                                  "leaked_group": False, "returncode": None, "reaped": False}
        done = (lambda: self.popen.poll() is not None or until()) if until else (lambda: self.popen.poll() is not None)
        if ask and self.popen.poll() is None:
            report["asked"] = self.ask()
            if report["asked"]:
                self.wait(timeouts.medium() if ask_budget is None else ask_budget, until)
        if interrupt and not done():
            report["interrupted"] = self.interrupt()
            if report["interrupted"]:
                self.wait(timeouts.medium() if interrupt_budget is None else interrupt_budget, until)
        leader_running = self.popen.poll() is None
        if not leader_running:
            report["leaked_group"] = self.group_alive()
        if leader_running or report["leaked_group"]:
            report["killed"] = self.kill_group()
        report["returncode"] = self.wait(timeouts.short())
        report["reaped"] = report["returncode"] is not None
        self._close_streams()
        self.stopped = report
        return report

    def kill(self) -> str:
        """Kill the child alone, as a user or the OOM killer would (a *scenario*, not a
        stop: SIGKILL on POSIX, ``TerminateProcess`` elsewhere); how.  :meth:`stop` still
        reaps it."""
        if os.name == "posix" and _caps_signals():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)
            return "SIGKILL"
        with contextlib.suppress(OSError):
            self.popen.kill()
        return "Popen.kill"

    def _close_streams(self) -> None:
        # Let the readers see the end of their pipes (bounded) before closing them:
        # under eventlet, closing a pipe does not wake a greenthread parked reading it.
        deadline = timeouts.Deadline(timeouts.short(), f"{self.what}: its output readers")
        for reader in self._readers:
            reader.join(max(deadline.remaining(), 0.0))
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()


def start(command: Sequence[str], *, what: str, env: Optional[Dict[str, str]] = None,
          cwd: Optional[str] = None, protocol: bool = False, stdin: bool = False,
          output: str = "inherit", relay: Optional[Callable[[str], None]] = None,
          group: bool = True) -> Child:
    """Start ``command`` as a supervised child.

    ``protocol``: stdout is a pipe of JSON lines (:attr:`Child.messages`) and stderr
    is kept as a tail.  Otherwise ``output`` is ``"inherit"`` (our stdout and stderr),
    ``"tail"`` (both kept as the tail only), ``"capture"`` (stdout kept whole in
    :attr:`Child.captured`, stderr as the tail) or ``"relay"`` (stdout and stderr
    merged, each line kept in the tail and passed to ``relay``).  ``stdin``: a pipe to ask
    the child to stop on (else ``/dev/null``).  ``env`` defaults to
    :func:`child_env`, ``cwd`` to :func:`child_cwd`."""
    kwargs: Dict[str, Any] = {}
    if group:
        if posix_groups():
            kwargs["start_new_session"] = True
        else:  # Windows: the flag that lets CTRL_BREAK_EVENT reach the child's group
            new_group = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
            if new_group:
                kwargs["creationflags"] = new_group
    out: Optional[int]
    err: Optional[int]
    if protocol:
        out, err = subprocess.PIPE, subprocess.PIPE
    elif output == "relay":
        out, err = subprocess.PIPE, subprocess.STDOUT
    elif output in ("tail", "capture"):
        out, err = subprocess.PIPE, subprocess.PIPE
    else:
        out = err = None
    with _interruptible_children():
        popen = subprocess.Popen(list(command), stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                 stdout=out, stderr=err, env=child_env() if env is None else env,
                                 cwd=child_cwd() if cwd is None else cwd, **kwargs)
    child = Child(popen, group=group, protocol=protocol, what=what)
    child._start_readers(relay if output == "relay" else None, capture=output == "capture")
    return child


@contextlib.contextmanager
def _interruptible_children() -> Iterator[None]:
    """An ignored SIGINT is inherited across exec (``nohup``, ``cmd &`` in a script): the
    child would never see step 2.  While it is started, SIGINT gets Python's default
    handler here, which exec resets to SIG_DFL."""
    ignored = (hasattr(signal, "SIGINT") and threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def supervised(command: Sequence[str], **options: Any) -> Iterator[Child]:
    """:func:`start` as a context: the child is stopped (:meth:`Child.stop`) on the way out."""
    child = start(command, **options)
    try:
        yield child
    finally:
        child.stop()


def run_once(command: Sequence[str], *, what: str, budget: float, event: str = "result",
             env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None) -> Dict[str, Any]:
    """Run a one-shot protocol child: its first ``event`` message, waited for within
    ``budget``; the child is then stopped and reaped.  Raises
    :class:`~harness.core.timeouts.HarnessTimeout` when the budget ran out, ``RuntimeError``
    (with the stderr tail) when it exited without one."""
    child = start(command, what=what, env=env, cwd=cwd, protocol=True)
    deadline = timeouts.Deadline(budget, what)
    try:
        for _ in range(10_000):
            message = child.next_message(deadline)
            if message is None:
                raise timeouts.HarnessTimeout(what, budget)
            if message.get("event") == event:
                return message
            if message.get("event") == "eof":
                code = child.wait(timeouts.short())
                child.drain(timeouts.short())
                raise RuntimeError(f"{what}: exited {code} without a result:\n{child.stderr_tail()[-2000:]}")
        raise RuntimeError(f"{what}: too many messages without a result")
    finally:
        child.stop(ask=False, interrupt=False)


@dataclasses.dataclass
class Completed:
    """What :func:`run_captured` saw: the exit status, stdout whole, the stderr tail."""

    returncode: int
    stdout: str
    stderr: str


def run_captured(command: Sequence[str], *, what: str, budget: float, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None) -> Completed:
    """Run ``command`` to its end with stdout captured, bounded by ``budget`` (then
    it is stopped with its group and :class:`~harness.core.timeouts.HarnessTimeout` raised)."""
    child = start(command, what=what, env=env, cwd=cwd, output="capture")
    try:
        code = child.wait(budget)
        if code is None:
            raise timeouts.HarnessTimeout(what, budget)
        # the reader has seen the end of stdout once the pipe's last writer is gone
        child.await_message(("eof",), timeouts.short(), f"{what}: the end of its output")
        child.drain(timeouts.short())
    finally:
        child.stop(ask=False, interrupt=False)
    with child._lock:
        return Completed(int(code), "".join(child.captured), "".join(child._tail))


__all__ = ["CHECKOUT", "Child", "Completed", "pid_exists", "process_running", "run_captured", "child_cwd", "child_env", "group_alive", "posix_groups", "run_once", "start",
           "supervised"]
