"""Wall time of the kit's own tests: serial and default parallelism, idle and hogged.

Theory of operation
-------------------
The README's test command is ``python -m pip install -e '.[test]' && python -m
pytest``; its second half is what this script times, in this checkout, with
the running interpreter (install first).  Each ``--mode`` is one way to run
it:

``default``   ``python -m pytest`` as a contributor types it: the worker count
              and distribution from ``pyproject.toml``'s ``addopts``;
``serial``    the same with ``-n 0`` (one process, the state before issue 15);
``n=N``       the same with ``-n N`` (to compare worker counts).

For every mode ``--runs`` consecutive runs are made (modes interleaved: run 1
of every mode, then run 2, ... so drift in machine load falls on all).  Each
run writes a junit XML file into a private temporary directory; the counts
(passed, failed, errors, skipped) come from that file, never from pytest's
terminal output, and a run whose file is missing counts as failed.  ``--hog``
loads every core with one busy process (``flake_runs.start_hog``: they stop
with this script, with their parent, or after ``--hog-lifetime``) for the
whole measurement; the 1-minute load average before and after every run is
recorded, so a reader can see what else the machine was doing.

Every run is bounded by ``--bound`` seconds (default ``timeouts.long() * 40``,
40 min: far above a healthy serial run); a run that exceeds it is stopped
(pytest runs in its own process group: SIGINT to the group so pytest and its
workers stop their tests, then SIGKILL to the group) and counted as failed.
Ctrl-C or SIGTERM stops the current run and the hogs, and still prints what
was measured.

Output: one line per run on stderr, a summary, and with ``--json FILE`` one
JSON document.  Exit status 0 when every run was green (no failure, no error,
the same number of passed tests in every run), 1 otherwise.

Usage::

    python bench/kit_tests_time.py --mode serial --mode default --runs 1
    python bench/kit_tests_time.py --mode default --runs 5 --hog --json hogged.json
    python bench/kit_tests_time.py --mode n=2 --mode n=4 --mode n=6 --mode n=8
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _path in (_ROOT, _HERE):
    if _path not in sys.path:  # run from a checkout without installing
        sys.path.insert(0, _path)

from flake_runs import _load, _terminate_as_exception, cores, start_hog, stop_hog, write_json  # noqa: E402

from harness.core import timeouts  # noqa: E402

MODES = {"default": [], "serial": ["-n", "0"]}


def mode_args(mode: str) -> List[str]:
    """pytest arguments of a ``--mode``; ValueError for an unknown one."""
    if mode in MODES:
        return list(MODES[mode])
    if mode.startswith("n=") and mode[2:].isdigit():
        return ["-n", mode[2:]]
    raise ValueError(f"unknown mode {mode!r}: default, serial or n=N")


def junit_counts(path: Path) -> Optional[Dict[str, int]]:
    """passed/failed/errors/skipped from a junit XML file (None when unreadable)."""
    try:
        root = ET.parse(str(path)).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        counts["tests"] += int(suite.get("tests", 0))
        counts["failed"] += int(suite.get("failures", 0))
        counts["errors"] += int(suite.get("errors", 0))
        counts["skipped"] += int(suite.get("skipped", 0))
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


def _stop(process: subprocess.Popen) -> None:
    """SIGINT to pytest's process group (the controller and its xdist workers stop their
    tests), then SIGKILL to the group; always reaped.  Elsewhere: terminate, then kill."""
    if process.poll() is None:
        if os.name == "nt":
            process.terminate()
        else:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeouts.medium())
        except subprocess.TimeoutExpired:
            pass
    if os.name != "nt":
        try:
            os.killpg(process.pid, signal.SIGKILL)  # also workers left behind by the controller
        except OSError:
            pass
    if process.poll() is None:
        process.kill()
    process.wait(timeout=timeouts.short())


def _default_signals() -> None:  # pragma: no cover - runs in the child
    # A script started in the background (or under nohup) inherits SIGINT (SIGHUP) ignored;
    # pytest must see SIGINT, and the tests that send SIGHUP to a run expect its default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def run_once(python: str, mode: str, work: Path, bound: float, extra: Sequence[str]) -> Dict[str, Any]:
    """One ``python -m pytest`` in ``mode``; its wall time and junit counts."""
    junit = work / "junit.xml"
    command = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", *mode_args(mode),
               f"--junitxml={junit}", *extra]
    load_before = _load()
    started = time.monotonic()
    with open(work / "output.txt", "wb") as output:
        posix = {"start_new_session": True, "preexec_fn": _default_signals} if os.name != "nt" else {}
        process = subprocess.Popen(command, cwd=_ROOT, stdout=output, stderr=subprocess.STDOUT, **posix)
        try:
            status: Optional[int] = process.wait(timeout=bound)
            stopped = None
        except BaseException as exc:  # the bound, Ctrl-C or SIGTERM
            _stop(process)
            status, stopped = None, ("bound" if isinstance(exc, subprocess.TimeoutExpired) else str(exc))
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
    wall = time.monotonic() - started
    counts = junit_counts(junit)
    green = status == 0 and counts is not None and counts["failed"] == 0 and counts["errors"] == 0
    tail = "" if green else (work / "output.txt").read_text(encoding="utf-8", errors="replace")[-3000:]
    return {"mode": mode, "status": status, "stopped": stopped, "wall": round(wall, 1), "counts": counts,
            "green": green, "load_before": load_before, "load_after": _load(), "tail": tail}


def measure(args: argparse.Namespace) -> Dict[str, Any]:
    hog_count = cores() if args.hog else 0
    previous = signal.signal(signal.SIGTERM, _terminate_as_exception)
    hogs: List[subprocess.Popen] = []
    runs: List[Dict[str, Any]] = []
    interrupted = None
    load_start = _load()
    try:
        if hog_count:
            hogs = start_hog(hog_count, args.hog_lifetime)
        for number in range(1, args.runs + 1):
            for mode in args.mode:
                with tempfile.TemporaryDirectory(prefix="ssconform-kit-time-") as work:
                    result = run_once(args.python, mode, Path(work), args.bound, args.pytest_args)
                    if args.junit_dir and (Path(work) / "junit.xml").exists():
                        Path(args.junit_dir).mkdir(parents=True, exist_ok=True)
                        shutil.copy(Path(work) / "junit.xml", Path(args.junit_dir) / f"{mode}-run{number}.xml")
                result["run"] = number
                runs.append(result)
                counts = result["counts"] or {}
                print(f"kit_tests_time: run {number}/{args.runs} {mode}: exit {result['status']}, "
                      f"{result['wall']} s, passed {counts.get('passed')}, skipped {counts.get('skipped')}, "
                      f"failed {counts.get('failed')}, errors {counts.get('errors')}, "
                      f"load {result['load_before']} -> {result['load_after']}",
                      file=sys.stderr, flush=True)
                if result["tail"]:
                    print(result["tail"], file=sys.stderr, flush=True)
    except KeyboardInterrupt as exc:
        interrupted = str(exc) or "interrupted"
    finally:
        stop_hog(hogs)
        signal.signal(signal.SIGTERM, previous)
    return {
        "command": " ".join([os.path.basename(sys.argv[0])] + list(args.argv)),
        "modes": list(args.mode),
        "runs": runs,
        "cores": cores(),
        "cores_loaded": hog_count,
        "load_start": load_start,
        "load_end": _load(),
        "interrupted": interrupted,
        "machine": {"python": platform.python_implementation() + " " + platform.python_version(),
                    "platform": platform.platform()},
    }


def summary(result: Dict[str, Any]) -> str:
    lines = [f"kit_tests_time: cores loaded by the hog: {result['cores_loaded']} of {result['cores']}; "
             f"load average {result['load_start']} -> {result['load_end']}"]
    if result["interrupted"]:
        lines.append(f"  INTERRUPTED: {result['interrupted']}")
    for mode in result["modes"]:
        rows = [r for r in result["runs"] if r["mode"] == mode]
        walls = sorted(r["wall"] for r in rows) or [0.0]
        passed = sorted({(r["counts"] or {}).get("passed") for r in rows}, key=str)
        lines.append(f"  {mode}: {sum(r['green'] for r in rows)}/{len(rows)} green, wall median "
                     f"{walls[len(walls) // 2]} s (min {walls[0]}, max {walls[-1]}), passed {passed}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", action="append", help="default, serial or n=N (repeatable; default: default)")
    parser.add_argument("--runs", type=int, default=1, help="consecutive runs per mode (default 1)")
    parser.add_argument("--hog", action="store_true", help="load every core with a busy process meanwhile")
    parser.add_argument("--hog-lifetime", type=float, default=None, help="a hog stops by itself after this")
    parser.add_argument("--bound", type=float, default=None, help="seconds one run may take (default 40 min)")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs pytest")
    parser.add_argument("--json", metavar="FILE", help="write the result as JSON ('-': stdout)")
    parser.add_argument("--junit-dir", metavar="DIR", help="keep each run's junit XML here (for slowest_tests.py)")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments (e.g. a test path)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    args.mode = list(dict.fromkeys(args.mode or ["default"]))
    try:
        for mode in args.mode:
            mode_args(mode)
    except ValueError as exc:
        print(f"kit_tests_time: {exc}", file=sys.stderr)
        return 2
    if not 1 <= args.runs <= 100:
        print("kit_tests_time: --runs must be 1..100", file=sys.stderr)
        return 2
    if args.bound is None:
        args.bound = timeouts.long() * 40
    if args.hog_lifetime is None:
        args.hog_lifetime = args.bound * args.runs * len(args.mode)
    result = measure(args)
    print(summary(result), file=sys.stderr)
    if args.json:
        write_json(result, args.json)
    passed = {(r["counts"] or {}).get("passed") for r in result["runs"]}
    ok = result["runs"] and all(r["green"] for r in result["runs"]) and len(passed) == 1
    return 0 if ok and not result["interrupted"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
