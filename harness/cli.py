"""``ssconform``: run the suite, render and compare reports, manage expectations.

Theory of operation
-------------------
The CLI parses arguments and dispatches; the work lives in the modules it
calls (``records``, ``fingerprint``, ``expectations``, ``launch``,
``report``).  The one piece of orchestration it owns is ``run``:

* every ``--impl`` is resolved first, in this process (or, for a foreign
  ``--python``, in that interpreter via ``python -m harness.launch
  --describe``), and the output directory and expectation files are checked,
  so that a typo costs a second and exit status 2, not a failed suite run;
* then one **pytest process per implementation (and per repeat)** runs
  ``--pyargs conformance.checks`` with the suite's own ini file (``-c
  conformance/suite.ini --rootdir conformance/``), so a user's pytest
  configuration cannot change the suite.  Its output streams to the
  terminal.  If the ``ssconform`` pytest11 entry point is not registered in
  the target environment (a checkout that was not installed), the plugin is
  loaded with ``-p conformance.plugin`` and the checkout goes on
  ``PYTHONPATH`` -- never both, pytest refuses a double registration.
  Adapters with a ``bootstrap`` (gevent, eventlet) run through ``python -m
  harness.launch IMPL -- ...`` so that patching precedes every import;
* a process that wrote its record but does not exit (a stuck non-daemon
  thread of the implementation blocks interpreter exit) is stopped the same
  way after a grace; its record is whole and kept as it is;
* each process is bounded (``--run-bound SECONDS``; by default
  :data:`RUN_BOUND_BASE` seconds times the timeout multiplier, since a slow
  machine that needs a multiplier needs it for the whole run too: eventlet's
  suite takes five minutes on an idle two-core machine and ``eventlet_green``,
  where most checks wait out a budget, about twenty); on expiry it is first
  interrupted (SIGINT where signals exist: pytest then finishes the check in
  progress as interrupted and writes the record of every check that ended,
  bounded by ``timeouts.medium()``), then its whole process group is killed.
  A record it wrote is kept and marked *aborted* with the bound; without one,
  an *aborted* record is written in its place, as it is when pytest dies
  without writing one;
* each process gets a private temporary directory (``TMPDIR``, mode 0700, a
  short path so the kit's AF_UNIX directories are made inside it), removed
  when the process has ended: a killed run cannot leave its private
  directories and socket files behind, and what a finished run left there is
  reported on stderr as a leak;
* the verdict is computed from the records just written, never from pytest's
  exit status: 1 when any check is unexpectedly FAIL/ERROR/TIMEOUT/XPASS,
  a run aborted, or (``--repeat``) an outcome varied between repeats
  (FLAKY); 0 otherwise; 2 for usage and input errors.

Exit status 2 is also what :class:`~harness.records.RecordError`,
:class:`~harness.expectations.ExpectationError` and
:class:`~harness.implementations.ImplementationError` map to everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from harness import __version__, records, timeouts

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2
DEFAULT_IMPLS = ("stdlib", "reference")
DEFAULT_OUT = "ssconform-report"  # README and issue 2: the main job writes here
#: The default bound of one pytest process of ``run`` at timeout multiplier 1
#: (seconds; scaled by the multiplier, overridden by --run-bound).
RUN_BOUND_BASE = 1800.0

#: Package directories (no imports: ``conformance`` must not be imported here).
HARNESS_DIR = Path(__file__).resolve().parent
CONFORMANCE_DIR = HARNESS_DIR.parent / "conformance"
CHECKOUT = HARNESS_DIR.parent if (HARNESS_DIR.parent / "pyproject.toml").is_file() else None
SUITE_INI = CONFORMANCE_DIR / "suite.ini"


class UsageProblem(Exception):
    """A usage or input error: printed, exit status 2."""


def _err(message: str) -> None:
    print(f"ssconform: {message}", file=sys.stderr)


# ------------------------------------------------------------------ parser --


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssconform",
        description="Conformance suite and platform report for Python's socketserver API.",
        epilog="Exit status: 0 nothing unexpected failed, 1 an unexpected FAIL/ERROR/TIMEOUT/"
        "XPASS/FLAKY or an aborted run, 2 usage or input error.",
    )
    parser.add_argument("--version", action="version", version=f"ssconform {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="run the suite against implementations",
                              description="Run the conformance suite: one pytest process per "
                              "implementation (and per repeat), then render the report.")
    run.add_argument("--impl", action="append", metavar="IMPL",
                     help="adapter name, dotted module or .py path (repeatable; default: "
                     + " and ".join(DEFAULT_IMPLS) + ")")
    run.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                     help=f"directory for records and the report (default: ./{DEFAULT_OUT})")
    run.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k selection")
    run.add_argument("-n", dest="workers", metavar="N", help="pytest-xdist workers (e.g. 2, auto)")
    run.add_argument("--expectations", action="append", metavar="[IMPL=]FILE",
                     help="expectations file for every implementation, or IMPL=FILE for one "
                     "(repeatable; default: expectations/<impl>.toml of the checkout if present)")
    run.add_argument("--repeat", type=int, default=1, metavar="N",
                     help="run the suite N times per implementation and report outcomes that vary "
                     "as FLAKY")
    run.add_argument("--timeout-multiplier", metavar="X",
                     help="multiply every timeout of the kit (slow machines)")
    run.add_argument("--run-bound", type=float, metavar="SECONDS",
                     help="stop a pytest process that has not ended after SECONDS and mark its record "
                     f"aborted (default: {RUN_BOUND_BASE:g} s times the timeout multiplier)")
    run.add_argument("--python", metavar="EXE", default=sys.executable,
                     help="interpreter that runs the suite (default: this one)")
    run.add_argument("--no-report", action="store_true", help="only write records")
    run.set_defaults(handler=cmd_run)

    report = commands.add_parser("report", help="render a report from records",
                                 description="Merge run records into report.md, report.html "
                                 "and report.json in DIR.")
    report.add_argument("records", nargs="+", metavar="RECORD_FILE_OR_DIR")
    report.add_argument("--out", required=True, metavar="DIR")
    report.set_defaults(handler=cmd_report)

    diff = commands.add_parser("diff", help="compare two records or reports",
                               description="Show what changed between A and B.")
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    diff.add_argument("--json", action="store_true", help="machine-readable output")
    diff.set_defaults(handler=cmd_diff)

    listing = commands.add_parser("list", help="list the checks of the suite",
                                  description="Collect the suite and list its checks.")
    listing.add_argument("--impl", metavar="IMPL", help="collect for this implementation")
    listing.add_argument("--json", action="store_true", help="one JSON object per check variant")
    listing.add_argument("--python", metavar="EXE", default=sys.executable, help=argparse.SUPPRESS)
    listing.set_defaults(handler=cmd_list)

    fingerprint = commands.add_parser(
        "fingerprint", help="print the platform fingerprint as JSON",
        description="Print this platform's fingerprint (the record's 'fingerprint' object). With "
        "--impl, print {\"implementation\": ..., \"fingerprint\": ...}.")
    fingerprint.add_argument("--impl", metavar="IMPL", help="include this implementation's facts")
    fingerprint.set_defaults(handler=cmd_fingerprint)

    expectations = commands.add_parser("expectations", help="manage expectation files",
                                       description="Manage expectations/<impl>.toml files.")
    exp_commands = expectations.add_subparsers(dest="exp_command", metavar="ACTION")
    exp_commands.required = True
    update = exp_commands.add_parser(
        "update", help="write or refresh an expectations file from records",
        description="Derive expectations from records of one implementation; reasons and links "
        "of entries that remain are kept, new entries get reason 'TODO: explain'.")
    update.add_argument("records", nargs="+", metavar="RECORD_FILE_OR_DIR")
    update.add_argument("--out", required=True, metavar="FILE", help="the TOML file ('-': stdout)")
    update.add_argument("--impl", metavar="NAME", help="use only records of this implementation")
    update.set_defaults(handler=cmd_expectations_update)

    bench = commands.add_parser(
        "bench", help="benchmark two implementations side by side",
        description="Measure implementation A against B in alternating rounds (each server in its "
        "own process): echo msgs/s per server kind, new connections/s, shutdown() latency, memory "
        "per held connection, and the client swarm's own ceiling. Prints a Markdown table.")
    bench.add_argument("--impl", required=True, metavar="A", help="implementation A (adapter, module or .py)")
    bench.add_argument("--against", required=True, metavar="B", help="implementation B")
    bench.add_argument("--rounds", type=int, metavar="N", help="alternating rounds (default 5; --quick: 1)")
    bench.add_argument("--json", metavar="FILE", help="also write the full result as JSON ('-': stdout)")
    bench.add_argument("--html", metavar="FILE", help="also write an HTML page with a plot per metric")
    bench.add_argument("--tries", type=int, metavar="K",
                       help="a throughput sample is the median of K interleaved tries per round (default 3)")
    bench.add_argument("--quick", action="store_true", help="tiny sizes (seconds; a smoke test, not a measurement)")
    bench.add_argument("--wait-load", type=float, metavar="LOAD",
                       help="first wait (bounded) until the 1-minute load average is at most LOAD")
    bench.add_argument("--timeout-multiplier", metavar="X", help="multiply every timeout of the kit")
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    from harness.expectations import ExpectationError
    from harness.implementations import ImplementationError

    try:
        return int(args.handler(args))
    except (UsageProblem, records.RecordError, ExpectationError, ImplementationError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # `ssconform list | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return EXIT_BAD


# ------------------------------------------------------------- run: checks --


def _resolve_all(specs: Sequence[str], python: str) -> List[Dict[str, Any]]:
    """Describe every spec in the target interpreter; ImplementationError text on failure."""
    if _same_python(python):
        from harness import launch

        infos = [launch.describe(spec) for spec in specs]
        registered = launch.plugin_registered()
    else:
        command = [python, "-m", "harness.launch", "--describe", *specs]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=_child_env(),
                                  cwd=_child_cwd(None), timeout=timeouts.medium(), check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UsageProblem(f"cannot run --python {python}: {exc}") from None
        if done.returncode != 0:
            raise UsageProblem(f"--python {python} cannot load the kit:\n{done.stderr.strip()}")
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


def _same_python(python: str) -> bool:
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


def _writable_dir(path: str) -> Path:
    directory = Path(path).resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=str(directory)):
            pass
    except OSError as exc:
        raise UsageProblem(f"cannot write to output directory {path}: {exc.strerror or exc}") from None
    return directory


def _expectation_files(values: Optional[List[str]], names: List[str]) -> Dict[str, Optional[Path]]:
    """Expectations file per implementation name, each loaded once to check it."""
    from harness import expectations, packaged

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


def _absolute_spec(spec: str) -> str:
    from harness.implementations import _looks_like_path

    if _looks_like_path(spec) and os.path.exists(spec):
        return os.path.abspath(spec)
    return spec


def _child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of a child: the checkout (if any) first on PYTHONPATH, so
    the child runs the same kit as this process, with or without the entry point;
    the plugin's SSCONFORM_* selections removed (the CLI passes options explicitly)."""
    env = dict(os.environ)
    for name in ("SSCONFORM_IMPL", "SSCONFORM_OUT", "SSCONFORM_EXPECTATIONS", "SSCONFORM_REPEAT_INDEX"):
        env.pop(name, None)
    if CHECKOUT is not None:
        parts = [str(CHECKOUT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.update(extra or {})
    return env


def _child_cwd(out: Optional[Path]) -> str:
    # `python -m` puts the working directory first on sys.path: run where a
    # user's own `harness/` or `conformance/` directory cannot shadow ours.
    if CHECKOUT is not None:
        return str(CHECKOUT)
    return str(out) if out is not None else tempfile.gettempdir()


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
    """pytest, or pytest through ``harness.launch`` when the implementation (``info``;
    ``None``: none chosen) must patch the process first."""
    if info is not None and info.get("bootstrap"):
        return [python, "-m", "harness.launch", info["implementation"]["name"], "--", *args]
    return [python, "-m", "pytest", *args]


def _kill_group(process: subprocess.Popen) -> None:
    from harness.capabilities import caps

    if caps().signals and hasattr(os, "killpg"):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            process.kill()
    else:
        process.kill()
    try:
        process.wait(timeout=timeouts.short())
    except subprocess.TimeoutExpired:
        _err(f"pytest process {process.pid} did not die after SIGKILL")


def run_process(command: List[str], env: Dict[str, str], cwd: str, budget: float,
                wrote: Optional[Callable[[], bool]] = None) -> Tuple[Optional[int], bool]:
    """Run ``command`` with output streamed; ``(returncode, timed_out)``.

    On expiry the process is interrupted first and given a grace period to
    end, or until ``wrote()`` says it has written what it had (its record),
    then its process group is killed.  A process that has written its record
    (``wrote()``) but does not exit within the grace -- a non-daemon thread
    of the implementation under test, stuck forever, blocks interpreter exit
    -- is stopped the same way; that is not a timeout: its record is whole."""
    popen_kwargs: Dict[str, Any] = {}
    if os.name == "posix":
        popen_kwargs["start_new_session"] = True  # its own process group: kill forked servers too
    else:
        popen_kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    with _interruptible_children():
        process = subprocess.Popen(command, env=env, cwd=cwd, **popen_kwargs)
    try:
        if wrote is None:
            return process.wait(timeout=budget), False
        try:
            timeouts.wait_until(lambda: process.poll() is not None or wrote(), budget, "the pytest process")
        except timeouts.HarnessTimeout:
            raise subprocess.TimeoutExpired(command, budget) from None
        if process.poll() is None:
            try:
                return process.wait(timeout=_grace()), False
            except subprocess.TimeoutExpired:
                _err(f"pytest process {process.pid} wrote its record but did not exit within {_grace():g}s "
                     "(a thread of the implementation under test keeps it alive?); stopping it")
                _interrupt(process)
                _kill_group(process)
        return process.returncode, False
    except subprocess.TimeoutExpired:
        _interrupt(process, wrote)
        _kill_group(process)
        return process.returncode, True
    except KeyboardInterrupt:
        _kill_group(process)
        raise


def _grace() -> float:
    """``medium()``, but never scaled *down*: the time the kit's own bookkeeping
    needs (finish one teardown, write a record, exit), which a small
    ``--timeout-multiplier`` does not make faster."""
    return max(timeouts.medium(), timeouts.medium() / timeouts.multiplier())


@contextlib.contextmanager
def _interruptible_children() -> Iterator[None]:
    """An ignored SIGINT is inherited across exec (``nohup``, ``cmd &`` in a
    script): the child would never see our interrupt.  While it is started,
    SIGINT gets Python's default handler here, which exec resets to SIG_DFL."""
    from harness.capabilities import caps

    ignored = (caps().signals and threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupt(process: subprocess.Popen, wrote: Optional[Callable[[], bool]] = None) -> None:
    """SIGINT ``process`` and wait (bounded) until it ended or ``wrote()``: an
    interrupted pytest still runs ``pytest_sessionfinish``, so the plugin
    writes the record of the checks that ended.  A no-op without POSIX signals."""
    from harness.capabilities import caps

    if not caps().signals or process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGINT)
        timeouts.wait_until(lambda: process.poll() is not None or bool(wrote and wrote()), _grace(),
                            "the interrupted pytest process to write its record")
    except (OSError, timeouts.HarnessTimeout):
        pass  # the group kill follows


def _json_files(directory: Path) -> set:
    return {p.resolve() for p in directory.glob("*.json")}


def _wrote_new_json(out: Path, before: set) -> bool:
    """Whether ``out`` holds a JSON file that was not in ``before``."""
    return bool(_json_files(out) - before)


def _new_record(before: set, out: Path, impl_name: str) -> Optional[Path]:
    for path in sorted(_json_files(out) - before):
        try:
            record = records.read_record(path)
        except records.RecordError:
            continue
        if record["implementation"]["name"] == impl_name:
            return path
    return None


def _mark_stopped(path: Path, out: Path, reason: str) -> Path:
    """Keep the record an interrupted pytest wrote, marked aborted by the run bound."""
    try:
        record = records.read_record(path)
    except records.RecordError:
        return path
    finished = len(record["checks"])
    record["aborted"] = f"{reason}; {finished} check(s) had finished"
    _err(f"{record['implementation']['name']}: {record['aborted']}; kept its record {path}")
    return records.write_record(record, out, name=path.name)


def _scratch_dir() -> str:
    """A private (0700) temporary directory for one pytest process, short enough that
    :func:`harness.addresses.private_dir` makes its AF_UNIX directories inside it."""
    from harness import addresses

    prefix = "ssconform-"
    base = tempfile.gettempdir()
    # mkdtemp adds 8 characters; the result must itself be short, or
    # private_dir() would fall back to /tmp, outside the directory we remove.
    if (os.name == "posix" and len(os.path.join(base, prefix)) + 8 > addresses._LONG_TMPDIR
            and os.path.isdir("/tmp")):
        base = "/tmp"
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path


def _remove_scratch(path: str) -> List[str]:
    """Remove ``path``; return what was left in it (relative paths, at most 20)."""
    left: List[str] = []
    for root, dirs, files in os.walk(path):
        for entry in sorted(dirs + files):
            if len(left) < 20:
                left.append(os.path.relpath(os.path.join(root, entry), path))
    shutil.rmtree(path, ignore_errors=True)
    return left


def _aborted_record(info: Dict[str, Any], out: Path, options: Dict[str, Any], reason: str) -> Path:
    record = records.new_record(info["implementation"], info["fingerprint"], options)
    records.finish_record(record, [], aborted=reason)
    return records.write_record(record, out)


def run_bound(seconds: Optional[float] = None) -> float:
    """The bound of one pytest process of ``run``: ``seconds`` as given, else
    :data:`RUN_BOUND_BASE` times the timeout multiplier in force."""
    if seconds is None:
        return RUN_BOUND_BASE * timeouts.multiplier()
    if not seconds > 0:
        raise UsageProblem(f"--run-bound must be a positive number of seconds, not {seconds:g}")
    return float(seconds)


def cmd_run(args: argparse.Namespace) -> int:
    specs = list(dict.fromkeys(_absolute_spec(spec) for spec in (args.impl or list(DEFAULT_IMPLS))))
    if args.repeat < 1:
        raise UsageProblem("--repeat must be at least 1")
    if args.timeout_multiplier is not None:
        try:
            timeouts.set_multiplier(args.timeout_multiplier)  # exported to the children
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
    infos = _resolve_all(specs, args.python)
    out = _writable_dir(args.out)
    names = [info["implementation"]["name"] for info in infos]
    expectation_files = _expectation_files(args.expectations, names)
    budget = run_bound(args.run_bound)

    written: List[Path] = []
    runs = [(repeat, info) for repeat in range(args.repeat) for info in infos]
    for number, (repeat, info) in enumerate(runs, 1):
        name = info["implementation"]["name"]
        repeat_index = repeat if args.repeat > 1 else None
        pargs = pytest_args(info["spec"], out, info["plugin_registered"], args.keyword, args.workers,
                            expectation_files.get(name), args.timeout_multiplier)
        command = command_for(args.python, info, pargs)
        extra_env = {"SSCONFORM_REPEAT_INDEX": str(repeat)} if repeat_index is not None else {}
        scratch = _scratch_dir()
        extra_env.update({"TMPDIR": scratch, "TEMP": scratch, "TMP": scratch})
        env = _child_env(extra_env)
        label = f"[{number}/{len(runs)}] {name}" + (f" (repeat {repeat + 1}/{args.repeat})" if repeat_index is not None else "")
        sys.stdout.flush()
        print(f"ssconform: {label}: {' '.join(command)}", file=sys.stderr, flush=True)
        before = _json_files(out)
        try:
            returncode, timed_out = run_process(command, env, _child_cwd(out), budget,
                                                wrote=functools.partial(_wrote_new_json, out, before))
        finally:
            left = _remove_scratch(scratch)
        if left and not timed_out:
            _err(f"{name}: the run left {len(left)} temporary file(s) behind (removed): {', '.join(left[:5])}")
        if returncode == 4 and not timed_out:
            raise UsageProblem(f"pytest rejected the arguments for {name} (exit status 4); see above")
        path = _new_record(before, out, name)
        if path is not None and timed_out:
            path = _mark_stopped(path, out, f"pytest process killed after {budget:g}s (ssconform run bound)")
        if path is None:
            reason = (f"pytest process killed after {budget:g}s (ssconform run bound)" if timed_out
                      else f"pytest exited with status {returncode} without writing a record")
            options = {"impl": info["spec"], "expectations": _str(expectation_files.get(name)),
                       "xdist_workers": _workers(args.workers), "selection": args.keyword,
                       "repeat_index": repeat_index}
            path = _aborted_record(info, out, options, reason)
            _err(f"{name}: {reason}; wrote aborted record {path}")
        written.append(path)

    loaded = [records.read_record(path) for path in written]
    status = _summarise(written, loaded)
    if args.repeat > 1:
        flaky = records.compare_repeats(loaded)
        _print_flaky(flaky, args.repeat)
        if flaky:
            status = EXIT_BAD
    if not args.no_report:
        _render(written, out)
    return status


def _str(path: Optional[Path]) -> Optional[str]:
    return str(path) if path is not None else None


def _workers(value: Optional[str]) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _summarise(paths: List[Path], loaded: List[dict]) -> int:
    status = EXIT_OK
    print("", file=sys.stderr)
    for path, record in zip(paths, loaded):
        counts = records.summarise(record)
        text = ", ".join(f"{n} {o}" for o, n in counts.items() if n) or "no checks"
        fp = record["fingerprint"]
        print(f"ssconform: {record['implementation']['name']} on {fp['python_implementation']} "
              f"{fp['python_version']} {fp['os']}: {text}  ({path})", file=sys.stderr)
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


def _render(paths: List[Path], out: Path) -> None:
    try:
        from harness.report import render_report
    except ImportError as exc:
        _err(f"report not rendered: harness.report is not available ({exc}); records are in {out}")
        return
    _print_written(render_report(paths, out), out)


def _print_written(result: Any, out: Path) -> None:
    files = ", ".join(str(p) for p in result.values()) if isinstance(result, dict) else str(out)
    print(f"ssconform: report written: {files}", file=sys.stderr)


# ---------------------------------------------------------- other commands --


def _record_paths(items: Sequence[str]) -> List[Path]:
    return [path for path, _ in records.load_records(items)]


def cmd_report(args: argparse.Namespace) -> int:
    paths = _record_paths(args.records)  # RecordError names the file; nothing written
    if not paths:
        raise UsageProblem(f"no run records in {' '.join(args.records)}")
    out = _writable_dir(args.out)
    try:
        from harness.report import render_report
    except ImportError as exc:
        raise UsageProblem(f"harness.report is not available: {exc}") from None
    _print_written(render_report(paths, out), out)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    for path in (args.a, args.b):
        if not os.path.exists(path):
            raise UsageProblem(f"{path}: no such file or directory")
    try:
        from harness.report import diff, format_diff
    except ImportError as exc:
        raise UsageProblem(f"harness.report does not provide diff yet: {exc}") from None
    result = diff(args.a, args.b)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(format_diff(result))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    infos = _resolve_all([_absolute_spec(args.impl)], args.python) if args.impl else None
    registered = infos[0]["plugin_registered"] if infos else _plugin_registered(args.python)
    with tempfile.TemporaryDirectory(prefix="ssconform-list-") as scratch:
        listing = Path(scratch) / "checks.jsonl"
        pargs = pytest_args(args.impl and _absolute_spec(args.impl), None, registered,
                            extra=["--collect-only", "--ssconform-list", str(listing)])
        # Through harness.launch like `run`: gevent/eventlet collect under the patch.
        command = command_for(args.python, infos[0] if infos else None, pargs)
        done = subprocess.run(command, capture_output=True, text=True, env=_child_env(),
                              cwd=_child_cwd(None), timeout=timeouts.long(), check=False)
        if done.returncode not in (0, 5) or not listing.exists():
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise UsageProblem(f"collecting the suite failed (pytest exit status {done.returncode})")
        rows = [json.loads(line) for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return EXIT_OK
    seen: Dict[str, Dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(row["id"], dict(row, variants=0))["variants"] += 1
    width = max([len(i) for i in seen] + [2])
    for check_id in sorted(seen):
        row = seen[check_id]
        requires = f"  [requires {', '.join(row['requires'])}]" if row.get("requires") else ""
        variants = f" ({row['variants']} variants)" if row["variants"] > 1 else ""
        print(f"{check_id:<{width}}  {row['level']:<8}  {row['title']}{variants}{requires}")
    print(f"{len(seen)} checks ({len(rows)} including variants)", file=sys.stderr)
    return EXIT_OK


def _plugin_registered(python: str) -> bool:
    if _same_python(python):
        from harness.launch import plugin_registered

        return plugin_registered()
    done = subprocess.run([python, "-m", "harness.launch", "--describe"], capture_output=True,
                          text=True, env=_child_env(), cwd=_child_cwd(None),
                          timeout=timeouts.medium(), check=False)
    try:
        return bool(json.loads(done.stdout)["plugin_registered"])
    except (ValueError, KeyError):
        return False


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from harness.fingerprint import fingerprint

    if args.impl:
        from harness.implementations import resolve

        impl = resolve(args.impl)
        data: Dict[str, Any] = {"implementation": impl.describe(), "fingerprint": fingerprint(impl)}
    else:
        data = fingerprint()
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_expectations_update(args: argparse.Namespace) -> int:
    from harness import expectations

    loaded = [record for _, record in records.load_records(args.records)]
    if args.impl:
        loaded = [r for r in loaded if r["implementation"]["name"] == args.impl]
    if not loaded:
        raise UsageProblem("no run records" + (f" of implementation {args.impl!r}" if args.impl else ""))
    existing = None
    if args.out != "-" and os.path.exists(args.out):
        existing = expectations.load(args.out)
    try:
        text = expectations.update(loaded, existing)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    if args.out == "-":
        sys.stdout.write(text)
        return EXIT_OK
    target = Path(args.out)
    temp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, target)
    except OSError as exc:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
        raise UsageProblem(f"cannot write {target}: {exc.strerror or exc}") from None
    written = expectations.loads(text, source=target)
    count = len(written)
    todo = sum(1 for entry in written if entry.reason == expectations.TODO_REASON)  # not the header's mention
    print(f"ssconform: wrote {target}: {count} expectations, {todo} need a reason", file=sys.stderr)
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from harness import bench
    from harness.implementations import resolve

    if args.timeout_multiplier:
        try:
            timeouts.set_multiplier(args.timeout_multiplier)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
    if args.rounds is not None and not 1 <= args.rounds <= 100:
        raise UsageProblem(f"--rounds must be 1..100, not {args.rounds}")
    specs = [_absolute_spec(args.impl), _absolute_spec(args.against)]
    described = {spec: resolve(spec).describe() for spec in specs}  # ImplementationError -> exit 2
    config = bench.BenchConfig.quick() if args.quick else bench.BenchConfig()
    if args.rounds is not None:
        config.rounds = args.rounds
    if args.tries is not None:
        if not 1 <= args.tries <= 20:
            raise UsageProblem(f"--tries must be 1..20, not {args.tries}")
        config.tries = args.tries

    def progress(text: str) -> None:
        print(f"ssconform bench: {text}", file=sys.stderr, flush=True)

    if args.wait_load is not None:
        seen = bench.wait_for_load(args.wait_load, timeouts.long() * 10,
                                   on_wait=lambda load: progress(f"waiting for load <= {args.wait_load}: {load}"))
        progress(f"load average {seen}")
    result = bench.run_bench(specs[0], specs[1], config, progress=progress, describe=described.__getitem__)
    words = ["ssconform", "bench", "--impl", args.impl, "--against", args.against]
    words += ["--rounds", str(config.rounds), "--tries", str(config.tries)] + (["--quick"] if args.quick else [])
    result["command"] = " ".join(words)
    if args.json:
        text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text, encoding="utf-8")
    if args.html:
        Path(args.html).write_text(bench.html(result), encoding="utf-8")
    if args.json != "-":
        sys.stdout.write(bench.table(result, markdown=True))
    failed = [m["key"] for m in result["metrics"] if m["failures"]]
    if failed:
        _err(f"samples failed (lost/corrupted messages, errors or timeouts) in: {', '.join(failed)}")
        return EXIT_BAD
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
