"""A run of the conformance suite: plan, bound, records, verdict -- without argparse.

Theory of operation
-------------------
``ssconform run`` (:mod:`harness.cli.main`) only parses its arguments and calls
:func:`run_suite`; nox sessions, the GitHub Action and any other caller make
the same call (or run the same CLI).  It lives beside the CLI, not in
:mod:`harness.processes`: it orchestrates a run (which implementations,
which records, what verdict) and leaves every process matter -- start, read,
stop, reap, the environment -- to :mod:`harness.processes.supervisor`.

**Plan.**  Every implementation spec is resolved first, in this process (or,
for a foreign ``python``, in that interpreter via ``python -m harness.implementations.launch
--describe``), and the output directory and expectation files are checked,
so that a typo costs a second and :class:`UsageProblem` (exit status 2), not
a failed suite run.  Then one **pytest process per implementation (and per
repeat)** runs ``--pyargs conformance.checks`` with the suite's own ini file
(``-c conformance/suite.ini --rootdir conformance/``), so a user's pytest
configuration cannot change the suite.  If the ``ssconform`` pytest11 entry
point is not registered in the target environment (a checkout that was not
installed), the plugin is loaded with ``-p conformance.plugin`` -- never
both, pytest refuses a double registration.  Adapters with a ``bootstrap``
(gevent, eventlet) run through ``python -m harness.implementations.launch IMPL -- ...`` so
that patching precedes every import.

**Concurrency.**  The suite's checks wait far more than they compute (a
clean run of one implementation keeps a core about a third busy), so the
pytest processes of one *round* (every implementation, one repeat) run at
the same time, each in its own process group, and their output is relayed
line by line with the implementation's name in front.  Repeats run round
after round.  ``jobs=1`` runs one process at a time (output straight to the
terminal).  Each process also gets ``-n`` (pytest-xdist) workers:
:data:`DEFAULT_WORKERS` unless the caller gives its own ``workers``, which
always wins (:func:`default_workers`: only where xdist loads by itself, and
not for an implementation whose adapter must patch the process first --
gevent, eventlet -- since xdist starts its workers without
:mod:`harness.implementations.launch`).  Checks that are not safe to run beside others are marked
``serial`` in the suite and run in one worker (see README, "Parallel runs").

**Bound.**  Each round is bounded (``run_bound`` seconds; by default
:data:`RUN_BOUND_BASE` times the timeout multiplier, well inside the
30-minute ``timeout-minutes`` of the CI jobs, which also pass their own
bound).  On expiry a process is interrupted (SIGINT on POSIX,
``CTRL_BREAK_EVENT`` to its process group on Windows: pytest then finishes
the check in progress as interrupted and the plugin writes the record of
every check that ended), given a grace to write it, then its whole process
group is killed and reaped (:meth:`~harness.processes.supervisor.Child.stop`).
A process that wrote its record but does not exit (a stuck non-daemon thread
of the implementation blocks interpreter exit) is stopped the same way after
a grace; its record is whole and kept as it is.

**Interrupts.**  Ctrl-C (SIGINT), SIGTERM (``timeout``, a cancelled CI job,
``docker stop``) and SIGHUP end the run the same way as the bound: every
running pytest process is interrupted, given the grace to write its record,
then killed with its group and reaped -- nothing runs on orphaned, and the
checks that finished are kept in a record marked *aborted* with the signal's
name.  The exit status is then ``128 + signal number``.  A signal that was
ignored when ``ssconform`` started (``nohup``) stays ignored.

**Records and verdict.**  A record a stopped process wrote is kept and marked
*aborted* with the reason; without one, an *aborted* record is written in its
place, as it is when pytest dies without writing one.  Each process gets a
private temporary directory (``TMPDIR``, mode 0700, a short path so the kit's
AF_UNIX directories are made inside it), removed when the process has ended;
what a finished run left there is reported as a leak.  The verdict is
computed from the records just written, never from pytest's exit status: 1
when any check is unexpectedly FAIL/ERROR/TIMEOUT/XPASS, a run aborted, or
(``repeat``) an outcome varied between repeats (FLAKY); 0 otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from harness.core import timeouts
from harness.processes import supervisor
from harness.results import packaged, records

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2
DEFAULT_IMPLS = ("stdlib", "reference")
DEFAULT_OUT = "ssconform-report"  # README and issue 2: the main job writes here
#: The default bound of one round of ``run`` at timeout multiplier 1 (seconds;
#: scaled by the multiplier, overridden by ``run_bound``).  20 minutes: a CI job
#: of 30 (``timeout-minutes``) keeps time to install the kit, write the aborted
#: records and upload them.
RUN_BOUND_BASE = 1200.0
#: pytest-xdist workers per pytest process when the caller gives none (see README,
#: "Parallel runs", for the measurements behind the number).
DEFAULT_WORKERS = "2"

#: Package directories (no imports: ``conformance`` must not be imported here).
HARNESS_DIR = packaged.HARNESS_DIR
CONFORMANCE_DIR = HARNESS_DIR.parent / "conformance"
CHECKOUT = packaged.CHECKOUT
SUITE_INI = CONFORMANCE_DIR / "suite.ini"


class UsageProblem(Exception):
    """A usage or input error: printed, exit status 2."""


class StopRequested(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: stop every pytest process, keep what finished."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


def err(message: str) -> None:
    print(f"ssconform: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ plan --


def resolve_all(specs: Sequence[str], python: str) -> List[Dict[str, Any]]:
    """Describe every spec in the target interpreter; ImplementationError text on failure."""
    if same_python(python):
        from harness.implementations import launch

        infos = [launch.describe(spec) for spec in specs]
        registered = launch.plugin_registered()
    else:
        done = _describe_elsewhere(python, specs)
        data = json.loads(done.stdout)
        if data.get("missing"):
            raise UsageProblem(
                f"--python {python} cannot run the suite: no {', '.join(data['missing'])} there "
                "(install socketserver-conformance into that interpreter's environment)"
            )
        infos, registered = data["implementations"], data["plugin_registered"]
    errors = [info["error"] for info in infos if info["error"]]
    if errors:
        raise UsageProblem("\n".join(errors))
    for info in infos:
        info["plugin_registered"] = registered
    return infos


def _describe_elsewhere(python: str, specs: Sequence[str]) -> supervisor.Completed:
    try:
        done = supervisor.run_captured([python, "-m", "harness.implementations.launch", "--describe", *specs],
                                       what=f"{python} -m harness.implementations.launch --describe", budget=timeouts.medium())
    except (OSError, timeouts.HarnessTimeout) as exc:
        raise UsageProblem(f"cannot run --python {python}: {exc}") from None
    if done.returncode != 0:
        raise UsageProblem(f"--python {python} cannot load the kit:\n{done.stderr.strip()}")
    return done


def plugin_registered(python: str) -> bool:
    """Whether the ``ssconform`` pytest11 entry point is registered for ``python``."""
    if same_python(python):
        from harness.implementations.launch import plugin_registered as here

        return here()
    try:
        return bool(json.loads(_describe_elsewhere(python, []).stdout)["plugin_registered"])
    except (UsageProblem, ValueError, KeyError):
        return False


def same_python(python: str) -> bool:
    """Whether ``python`` is this interpreter *in this environment* (a venv's
    ``bin/python`` links to the base interpreter but has other packages)."""
    found = shutil.which(python) or python
    here, there = os.path.abspath(sys.executable), os.path.abspath(found)
    if here == there:
        return True
    try:
        return os.path.dirname(here) == os.path.dirname(there) and os.path.samefile(here, there)
    except OSError:
        return False


def writable_dir(path: str) -> Path:
    directory = Path(path).resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=str(directory)):
            pass
    except OSError as exc:
        raise UsageProblem(f"cannot write to output directory {path}: {exc.strerror or exc}") from None
    return directory


def expectation_files(values: Optional[Sequence[str]], names: List[str]) -> Dict[str, Optional[Path]]:
    """Expectations file per implementation name, each loaded once to check it."""
    from harness.results import expectations

    chosen: Dict[str, Optional[Path]] = {}
    for name in names:
        chosen[name] = packaged.expectation_file(name)  # the checkout's, else the wheel's
    for value in values or []:
        target, sep, file = value.partition("=")
        if not sep or os.path.exists(value):  # FILE: for every implementation of the run
            for name in names:
                chosen[name] = Path(value).resolve()
        elif target in names:  # IMPL=FILE
            chosen[target] = Path(file).resolve()
        else:
            raise UsageProblem(f"--expectations {value}: no implementation {target!r} in this run "
                               f"({', '.join(names)})")
    for path in {p for p in chosen.values() if p is not None}:
        expectations.load(path)  # ExpectationError (file:line) -> exit 2
    return chosen


def absolute_spec(spec: str) -> str:
    """A spec naming an existing file, made absolute (children start elsewhere)."""
    from harness.implementations import looks_like_path

    if looks_like_path(spec) and os.path.exists(spec):
        return os.path.abspath(spec)
    return spec


def pytest_args(impl: Optional[str], out: Optional[Path], plugin_registered: bool,
                keyword: Optional[str] = None, workers: Optional[str] = None,
                expectations: Optional[Path] = None, multiplier: Optional[str] = None,
                extra: Sequence[str] = ()) -> List[str]:
    """The pytest arguments (after ``-m pytest``) for one run of the suite."""
    args = ["--pyargs", "conformance.checks"]
    if impl is not None:
        args += ["--impl", impl]
    if out is not None:
        args += ["--ssconform-out", str(out)]
    args += ["-p", "no:cacheprovider", "-q"]
    if SUITE_INI.is_file():
        args += ["-c", str(SUITE_INI), "--rootdir", str(CONFORMANCE_DIR)]
    else:  # the same settings as suite.ini, without reading anyone's config
        args += ["-c", os.devnull, "--rootdir", str(CONFORMANCE_DIR), "-o", "python_files=test_*.py",
                 "-o", "python_functions=test_*", "--strict-markers"]
    if not plugin_registered:
        args += ["-p", "conformance.plugin"]
    if keyword:
        args += ["-k", keyword]
    if workers is not None:
        args += ["-n", str(workers)]
    if expectations is not None:
        args += ["--expectations", str(expectations)]
    if multiplier is not None:
        args += ["--timeout-multiplier", str(multiplier)]
    return args + list(extra)


def command_for(python: str, info: Optional[Dict[str, Any]], args: List[str]) -> List[str]:
    """pytest, or pytest through ``harness.implementations.launch`` when the implementation (``info``;
    ``None``: none chosen) must patch the process first."""
    if info is not None and info.get("bootstrap"):
        return [python, "-m", "harness.implementations.launch", info["implementation"]["name"], "--", *args]
    return [python, "-m", "pytest", *args]


def default_workers(python: str) -> Optional[str]:
    """:data:`DEFAULT_WORKERS` where pytest-xdist will be loaded by itself: in this
    interpreter, with plugin autoloading on.  Elsewhere none (an explicit ``-n`` is
    passed through as given)."""
    import importlib.util

    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") or not same_python(python):
        return None
    return DEFAULT_WORKERS if importlib.util.find_spec("xdist") is not None else None


def run_bound(seconds: Optional[float] = None) -> float:
    """The bound of one round of ``run``: ``seconds`` as given, else
    :data:`RUN_BOUND_BASE` times the timeout multiplier in force."""
    if seconds is None:
        return RUN_BOUND_BASE * timeouts.multiplier()
    if not seconds > 0:
        raise UsageProblem(f"--run-bound must be a positive number of seconds, not {seconds:g}")
    return float(seconds)


def grace() -> float:
    """``medium()``, but never scaled *down*: the time the kit's own bookkeeping
    needs (finish one teardown, write a record, exit), which a small
    ``--timeout-multiplier`` does not make faster."""
    return max(timeouts.medium(), timeouts.medium() / timeouts.multiplier())


# ------------------------------------------------------------------ one process --


@dataclasses.dataclass
class Supervised:
    """One pytest process of a run and how it ended."""

    child: supervisor.Child
    budget: float
    wrote: Optional[Callable[[], bool]] = None
    timed_out: bool = False
    stopped_by: Optional[str] = None  # the signal's name when the run was interrupted
    note: Optional[str] = None


def supervise(run: Supervised, cancel: threading.Event, cancel_reason: Dict[str, str]) -> None:
    """Wait for ``run.child`` within its budget, or until ``cancel`` is set; stop it
    through the supervisor (interrupt, grace, kill the group, reap)."""
    child = run.child
    wrote = run.wrote or (lambda: False)
    try:
        timeouts.wait_until(lambda: not child.running() or wrote() or cancel.is_set(), run.budget,
                            child.what)
    except timeouts.HarnessTimeout:
        run.timed_out = True
    if cancel.is_set() and child.running():
        run.stopped_by = cancel_reason.get("name", "an interrupt")
        child.stop(ask=False, interrupt_budget=grace(), until=wrote)
        return
    if run.timed_out:
        child.stop(ask=False, interrupt_budget=grace(), until=wrote)
        return
    if child.running():  # it wrote its record: it only has to exit
        code = child.wait(grace(), until=cancel.is_set)
        if code is None:
            run.note = (f"pytest process {child.pid} wrote its record but did not exit within {grace():g}s "
                        "(a thread of the implementation under test keeps it alive?); stopping it")
            err(run.note)
            child.stop(ask=False, interrupt_budget=grace())
            return
    child.stop(ask=False, interrupt=False)  # reaps; kills what the leader left in its group


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """While the run lasts, SIGTERM and SIGHUP (and SIGBREAK on Windows) raise
    :class:`StopRequested` here like Ctrl-C raises ``KeyboardInterrupt``.  A signal
    ignored on entry (``nohup``) stays ignored.  Main thread only; a no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_stop(signum: int, frame: Any) -> None:
        raise StopRequested(signum)

    previous: Dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP", "SIGBREAK"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            if signal.getsignal(signum) == signal.SIG_IGN:
                continue
            previous[signum] = signal.signal(signum, raise_stop)
        except (OSError, ValueError):  # not settable on this platform
            continue
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ------------------------------------------------------------------ the run --


@dataclasses.dataclass
class _Planned:
    info: Dict[str, Any]
    workers: Optional[str]
    name: str
    repeat_index: Optional[int]
    label: str
    command: List[str]
    env: Dict[str, str]
    scratch: str
    before: set
    supervised: Optional[Supervised] = None


def run_suite(impls: Sequence[str] = (), out: str = DEFAULT_OUT, *, keyword: Optional[str] = None,
              workers: Optional[str] = None, expectations: Optional[Sequence[str]] = None, repeat: int = 1,
              timeout_multiplier: Optional[str] = None, run_bound_seconds: Optional[float] = None,
              python: str = sys.executable, report: bool = True, jobs: Optional[int] = None) -> int:
    """Run the suite; the exit status (0, 1, or ``128 + signal`` when interrupted).

    ``impls`` default to :data:`DEFAULT_IMPLS`; ``workers`` (``-n``) to
    :data:`DEFAULT_WORKERS`; ``jobs`` (pytest processes at once) to every
    implementation of a round.  Raises :class:`UsageProblem` (and the kit's
    RecordError / ExpectationError / ImplementationError) for input errors."""
    specs = list(dict.fromkeys(absolute_spec(spec) for spec in (impls or DEFAULT_IMPLS)))
    if repeat < 1:
        raise UsageProblem("--repeat must be at least 1")
    if jobs is not None and jobs < 1:
        raise UsageProblem("--jobs must be at least 1")
    if timeout_multiplier is not None:
        try:
            timeouts.set_multiplier(timeout_multiplier)  # exported to the children
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
    infos = resolve_all(specs, python)
    out_dir = writable_dir(out)
    names = [info["implementation"]["name"] for info in infos]
    chosen = expectation_files(expectations, names)
    budget = run_bound(run_bound_seconds)
    default = default_workers(python)
    width = jobs or len(infos)

    written: List[Path] = []
    interrupted: Optional[StopRequested] = None
    total = repeat * len(infos)
    number = 0
    with stop_signals():
        for round_index in range(repeat):
            for start in range(0, len(infos), width):
                if interrupted is not None:
                    break
                batch = []
                for info in infos[start:start + width]:
                    number += 1
                    # xdist workers are not started through harness.implementations.launch: no default
                    # workers for an implementation that must patch the process first
                    used = workers if workers is not None else (None if info.get("bootstrap") else default)
                    batch.append(_plan(info, number, total, round_index, repeat, out_dir, python, keyword,
                                       used, chosen, timeout_multiplier))
                interrupted = _run_batch(batch, out_dir, budget) or interrupted
                for planned in batch:
                    written.append(_keep_record(planned, out_dir, budget, chosen, keyword))

    loaded = [records.read_record(path) for path in written]
    status = summarise(written, loaded)
    if repeat > 1 and interrupted is None:
        flaky = records.compare_repeats(loaded)
        _print_flaky(flaky, repeat)
        if flaky:
            status = EXIT_BAD
    if interrupted is not None:
        err(f"interrupted by {interrupted.name}: every pytest process was stopped; records kept in {out_dir}")
        return 128 + interrupted.signum
    if report:
        render(written, out_dir)
    return status


def _plan(info: Dict[str, Any], number: int, total: int, round_index: int, repeat: int, out: Path, python: str,
          keyword: Optional[str], workers: Optional[str], chosen: Dict[str, Optional[Path]],
          multiplier: Optional[str]) -> _Planned:
    name = info["implementation"]["name"]
    repeat_index = round_index if repeat > 1 else None
    pargs = pytest_args(info["spec"], out, info["plugin_registered"], keyword, workers, chosen.get(name), multiplier)
    extra_env = {"SSCONFORM_REPEAT_INDEX": str(round_index)} if repeat_index is not None else {}
    scratch = scratch_dir()
    extra_env.update({"TMPDIR": scratch, "TEMP": scratch, "TMP": scratch})
    label = f"[{number}/{total}] {name}" + (f" (repeat {round_index + 1}/{repeat})" if repeat_index is not None else "")
    return _Planned(info, workers, name, repeat_index, label, command_for(python, info, pargs),
                    supervisor.child_env(extra_env), scratch, _json_files(out))


def _run_batch(batch: List[_Planned], out: Path, budget: float) -> Optional[StopRequested]:
    """Start every process of ``batch`` (here, in the main thread: the supervisor resets
    an ignored SIGINT for the child only there), supervise each in a thread, wait."""
    cancel = threading.Event()
    reason: Dict[str, str] = {}
    relay = len(batch) > 1
    lock = threading.Lock()
    finished: List[threading.Event] = []
    interrupted: Optional[StopRequested] = None
    try:
        for planned in batch:
            sys.stdout.flush()
            err(f"{planned.label}: {' '.join(planned.command)}")
            child = supervisor.start(planned.command, what=f"the pytest process of {planned.name}", env=planned.env,
                                     cwd=supervisor.child_cwd(str(out)), output="relay" if relay else "inherit",
                                     relay=_relay_to_stdout(planned.name, lock) if relay else None)
            planned.supervised = Supervised(child, budget, _wrote_record(out, planned.before, planned.name))
            finished.append(threading.Event())
            threading.Thread(target=_supervise_then_set, args=(planned.supervised, cancel, reason, finished[-1]),
                             name=f"ssc-supervise-{planned.name}", daemon=True).start()
        _wait_all(finished, budget + 3 * grace() + timeouts.short())
    except StopRequested as exc:
        interrupted = exc
    except KeyboardInterrupt:
        interrupted = StopRequested(int(signal.SIGINT))
    if interrupted is not None:
        reason["name"] = interrupted.name
        cancel.set()
        err(f"{interrupted.name}: stopping {len(finished)} pytest process(es), keeping the checks that finished")
        _wait_all(finished, 2 * grace() + 2 * timeouts.short())
    return interrupted


def _supervise_then_set(run: Supervised, cancel: threading.Event, reason: Dict[str, str],
                        finished: threading.Event) -> None:
    try:
        supervise(run, cancel, reason)
    finally:
        finished.set()


def _wait_all(events: List[threading.Event], budget: float) -> None:
    """Wait (bounded) for every event.  Not ``Thread.join``: a signal handler that raises
    inside ``join()`` can leave the thread marked as ended while it still runs (the
    bpo-45274 clean-up in ``threading._wait_for_tstate_lock`` of CPython 3.11 releases the
    running thread's own lock), and every later ``join()`` returns at once."""
    deadline = timeouts.Deadline(budget, "the pytest processes to be stopped")
    for event in events:
        event.wait(max(deadline.remaining(), 0.0))


def _relay_to_stdout(name: str, lock: threading.Lock) -> Callable[[str], None]:
    def relay(line: str) -> None:
        # a closed stdout (`ssconform run | head`) must not stop the draining of the pipe
        with lock, contextlib.suppress(OSError, ValueError):
            sys.stdout.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
            sys.stdout.flush()

    return relay


def _keep_record(planned: _Planned, out: Path, budget: float, chosen: Dict[str, Optional[Path]],
                 keyword: Optional[str]) -> Path:
    name, run = planned.name, planned.supervised
    left = remove_scratch(planned.scratch)
    if run is None:
        reason = "not started: ssconform was interrupted first"
        returncode, timed_out, stopped_by = None, False, None
    else:
        returncode, timed_out, stopped_by = run.child.stopped.get("returncode"), run.timed_out, run.stopped_by
        if stopped_by is not None:
            reason = f"ssconform interrupted by {stopped_by}"
        elif timed_out:
            reason = f"pytest process killed after {budget:g}s (ssconform run bound)"
        else:
            reason = f"pytest exited with status {returncode} without writing a record"
    if left and not timed_out and stopped_by is None:
        err(f"{name}: the run left {len(left)} temporary file(s) behind (removed): {', '.join(left[:5])}")
    if returncode == 4 and not timed_out and stopped_by is None:
        raise UsageProblem(f"pytest rejected the arguments for {name} (exit status 4); see above")
    path = new_record(planned.before, out, name)
    if path is not None and (timed_out or stopped_by is not None):
        path = mark_stopped(path, out, reason)
    if path is None:
        options = {"impl": planned.info["spec"], "expectations": _str(chosen.get(name)),
                   "xdist_workers": _workers(planned.workers), "selection": keyword,
                   "repeat_index": planned.repeat_index}
        path = aborted_record(planned.info, out, options, reason)
        err(f"{name}: {reason}; wrote aborted record {path}")
    return path


def _json_files(directory: Path) -> set:
    return {p.resolve() for p in directory.glob("*.json")}


def _wrote_record(out: Path, before: set, impl_name: str) -> Callable[[], bool]:
    """Whether ``out`` holds a new record file of ``impl_name`` (records are named
    ``<implementation>-<python>-<os>-<hash>.json`` and written atomically)."""
    prefix = f"{impl_name}-"
    return lambda: any(p.name.startswith(prefix) for p in _json_files(out) - before)


def new_record(before: set, out: Path, impl_name: str) -> Optional[Path]:
    for path in sorted(_json_files(out) - before):
        try:
            record = records.read_record(path)
        except records.RecordError:
            continue
        if record["implementation"]["name"] == impl_name:
            return path
    return None


def mark_stopped(path: Path, out: Path, reason: str) -> Path:
    """Keep the record a stopped pytest wrote, marked aborted with ``reason``."""
    try:
        record = records.read_record(path)
    except records.RecordError:
        return path
    finished = len(record["checks"])
    record["aborted"] = f"{reason}; {finished} check(s) had finished"
    err(f"{record['implementation']['name']}: {record['aborted']}; kept its record {path}")
    return records.write_record(record, out, name=path.name)


def aborted_record(info: Dict[str, Any], out: Path, options: Dict[str, Any], reason: str) -> Path:
    record = records.new_record(info["implementation"], info["fingerprint"], options)
    records.finish_record(record, [], aborted=reason)
    return records.write_record(record, out)


def scratch_dir() -> str:
    """A private (0700) temporary directory for one pytest process, short enough that
    :func:`harness.core.addresses.private_dir` makes its AF_UNIX directories inside it."""
    from harness.core import addresses
    from harness.core.capabilities import caps

    prefix = "ssconform-"
    base = tempfile.gettempdir()
    # mkdtemp adds 8 characters; the result must itself be short, or
    # private_dir() would fall back to /tmp, outside the directory we remove.
    # Short paths matter only for AF_UNIX's sun_path (Windows' long TEMP stays).
    if (caps().af_unix and len(os.path.join(base, prefix)) + 8 > addresses.LONG_TMPDIR
            and os.path.isdir("/tmp")):
        base = "/tmp"
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path


def remove_scratch(path: str) -> List[str]:
    """Remove ``path``; return what the suite left in it (relative paths, at most 20).
    pytest's own base temporary directory (``pytest-of-<user>``, which pytest-xdist
    makes for its workers: https://docs.pytest.org/en/stable/how-to/tmp_path.html)
    is removed too but is not the suite's leak."""
    left: List[str] = []
    for root, dirs, files in os.walk(path):
        for entry in sorted(dirs + files):
            relative = os.path.relpath(os.path.join(root, entry), path)
            if len(left) < 20 and not relative.startswith("pytest-of-"):
                left.append(relative)
    shutil.rmtree(path, ignore_errors=True)
    return left


def _str(path: Optional[Path]) -> Optional[str]:
    return str(path) if path is not None else None


def _workers(value: Optional[str]) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


# ------------------------------------------------------------------ verdict --


def summarise(paths: List[Path], loaded: List[dict]) -> int:
    status = EXIT_OK
    print("", file=sys.stderr)
    for path, record in zip(paths, loaded):
        counts = records.summarise(record)
        text = ", ".join(f"{n} {o}" for o, n in counts.items() if n) or "no checks"
        fp = record["fingerprint"]
        place = fp["os"] + (f" (simulated {fp['simulated']['shape']})" if fp.get("simulated") else "")
        print(f"ssconform: {record['implementation']['name']} on {fp['python_implementation']} "
              f"{fp['python_version']} {place}: {text}  ({path})", file=sys.stderr)
        for check in records.unexpected(record):
            variant = f"[{check['variant']}]" if check["variant"] else ""
            print(f"    {check['outcome']:8} {check['id']}{variant} {check['title']}", file=sys.stderr)
        if record.get("aborted"):
            print(f"    ABORTED  {record['aborted']}", file=sys.stderr)
        if records.unexpected(record) or record.get("aborted"):
            status = EXIT_BAD
    return status


def _print_flaky(rows: List[Dict[str, Any]], repeat: int) -> None:
    if not rows:
        print(f"ssconform: no outcome varied across {repeat} repeats", file=sys.stderr)
        return
    print(f"ssconform: FLAKY -- outcomes varied across {repeat} repeats:", file=sys.stderr)
    for row in rows:
        variant = f"[{row['variant']}]" if row["variant"] else ""
        outcomes = " ".join(o or "-" for o in row["outcomes"])
        print(f"    FLAKY    {row['id']}{variant}  {row['implementation']} {row['python']} "
              f"{row['os']}: {outcomes}", file=sys.stderr)


def render(paths: List[Path], out: Path) -> None:
    from harness.report.build import render_report

    print_written(render_report(paths, out))


def print_written(result: Any) -> None:
    files = ", ".join(str(p) for p in result.values())
    print(f"ssconform: report written: {files}", file=sys.stderr)
