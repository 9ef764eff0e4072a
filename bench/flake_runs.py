"""Flake measurement: N consecutive full runs of the suite, outcomes compared per check.

Theory of operation
-------------------
A conformance suite that sometimes fails on a healthy implementation is
worse than none: nobody believes its failures.  This script measures how
often that happens.  For each of ``--runs N`` rounds it runs ``ssconform
run --impl X --no-report`` once per ``--impl`` (interleaved: round 1 of
every implementation, then round 2, ... so drift in machine load falls on
all of them), each in a fresh process and output directory, bounded by
``timeouts.long() * 12`` (720 s: far above a healthy run's 20-40 s;
the CLI's own bound, ``--run-bound``, is longer and is not what stops a
stuck round here).  The run records -- never pytest's output -- are then
compared: a check (``id`` and ``variant``) is **flaky** when its outcome
differs between rounds of the same implementation; a round whose record is
missing or aborted is counted separately (a whole run that failed is not a
per-check flake, but it is reported).

``--hog`` loads every core the script may use (``os.sched_getaffinity``
where it exists, else ``os.cpu_count()``) with one busy Python process
each, started before the first round and stopped (SIGTERM/``terminate``,
then kill, always reaped) in a ``finally`` block -- also on Ctrl-C and
SIGTERM, which this script turns into an exception so the block runs.  A
hog also stops by itself when its parent disappears (it polls
``os.getppid()``) or after ``--hog-lifetime`` seconds, so even a SIGKILL of
this script cannot leave a core burning.

Output: a text summary on stderr (runs, cores loaded, load averages, wall
time, flaky checks with their outcome sets, checks that never passed) and,
with ``--json FILE`` (``-`` for stdout), one JSON document.  Exit status 0
when no check was flaky and no round aborted, 1 otherwise, 2 for usage
errors.

Usage::

    python bench/flake_runs.py --runs 20 --impl stdlib --impl reference --hog --json flake.json
    python bench/flake_runs.py --runs 3 --impl stdlib -k "test_api"     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
if _ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, _ROOT)

from harness.core import timeouts  # noqa: E402
from harness.results import records  # noqa: E402

GOOD = ("PASS", "INFO", "UNSUPPORTED", "SKIP", "XFAIL")

#: The busy loop of one hog process: burn a core until the parent is gone or
#: the lifetime is over (checked every few milliseconds of work).
HOG_SOURCE = """
import os, sys, time
parent, end = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while os.getppid() == parent and time.monotonic() < end:
    for _ in range(200000):
        pass
"""


# ------------------------------------------------------------------ the hog --


def cores() -> int:
    """How many cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def start_hog(count: int, lifetime: float) -> List[subprocess.Popen]:
    hogs: List[subprocess.Popen] = []
    try:
        for _ in range(count):
            hogs.append(subprocess.Popen([sys.executable, "-c", HOG_SOURCE, str(os.getpid()), repr(lifetime)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
    except BaseException:
        stop_hog(hogs)
        raise
    return hogs


def stop_hog(hogs: Sequence[subprocess.Popen]) -> List[Optional[int]]:
    """Terminate, then kill what remains; every hog is reaped.  Returns exit codes."""
    for hog in hogs:
        if hog.poll() is None:
            hog.terminate()
    codes: List[Optional[int]] = []
    for hog in hogs:
        try:
            codes.append(hog.wait(timeout=timeouts.short()))
        except subprocess.TimeoutExpired:
            hog.kill()
            codes.append(hog.wait(timeout=timeouts.short()))
    return codes


def _terminate_as_exception(signum, frame):  # pragma: no cover - signal path
    raise KeyboardInterrupt(f"signal {signum}")


# ----------------------------------------------------------------- the runs --


def run_once(python: str, impl: str, out: Path, keyword: Optional[str], multiplier: Optional[str],
             budget: float) -> Dict[str, Any]:
    """One ``ssconform run`` of one implementation into ``out``; what it left."""
    command = [python, "-m", "harness", "run", "--impl", impl, "--out", str(out), "--no-report"]
    if keyword:
        command += ["-k", keyword]
    if multiplier:
        command += ["--timeout-multiplier", multiplier]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    started = time.monotonic()
    load_before = _load()
    try:
        done = subprocess.run(command, cwd=_ROOT, env=env, capture_output=True, text=True,
                              timeout=budget, check=False)
        status: Optional[int] = done.returncode
        tail = (done.stdout[-1500:] + done.stderr[-1500:]) if status not in (0, 1) else ""
    except subprocess.TimeoutExpired as exc:
        status, tail = None, f"ssconform run killed after {budget:g}s: {str(exc.stderr or '')[-1500:]}"
    result: Dict[str, Any] = {"impl": impl, "status": status, "wall": round(time.monotonic() - started, 2),
                              "load_before": load_before, "load_after": _load(), "record": None,
                              "aborted": None, "outcomes": {}, "tail": tail}
    found = sorted(out.glob("*.json"))
    if len(found) != 1:
        result["aborted"] = f"{len(found)} records written"
        return result
    try:
        record = records.read_record(found[0])
    except records.RecordError as exc:
        result["aborted"] = str(exc)
        return result
    result["record"] = str(found[0])
    result["aborted"] = record.get("aborted")
    result["outcomes"] = {f"{c['id']}[{c['variant']}]" if c["variant"] else c["id"]: c["outcome"]
                          for c in record["checks"]}
    return result


def _load() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def compare(rounds: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(flaky, never_good) rows over the completed rounds of one implementation."""
    complete = [r for r in rounds if r["outcomes"] and not r["aborted"]]
    per_check: Dict[str, List[Optional[str]]] = {}
    for index, result in enumerate(complete):
        for key, outcome in result["outcomes"].items():
            per_check.setdefault(key, [None] * len(complete))[index] = outcome
    flaky, never_good = [], []
    for key in sorted(per_check):
        sequence = per_check[key]
        counts: Dict[str, int] = {}
        for outcome in sequence:
            name = outcome or "missing"
            counts[name] = counts.get(name, 0) + 1
        if len(counts) > 1:
            flaky.append({"check": key, "outcomes": counts, "sequence": sequence})
        elif not set(counts) <= set(GOOD):
            never_good.append({"check": key, "outcomes": counts})
    return flaky, never_good


def measure(args: argparse.Namespace) -> Dict[str, Any]:
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ssconform-flake-"))
    out_root.mkdir(parents=True, exist_ok=True)
    budget = timeouts.long() * 12
    hog_count = cores() if args.hog else 0
    previous = signal.signal(signal.SIGTERM, _terminate_as_exception)
    hogs: List[subprocess.Popen] = []
    per_impl: Dict[str, List[Dict[str, Any]]] = {impl: [] for impl in args.impl}
    started = time.monotonic()
    load_start = _load()
    interrupted = None
    try:
        if hog_count:
            hogs = start_hog(hog_count, args.hog_lifetime)
        for number in range(1, args.runs + 1):
            for impl in args.impl:
                slug = "".join(ch if ch.isalnum() else "_" for ch in impl)[-40:]
                out = out_root / f"run{number:03d}-{slug}"
                result = run_once(args.python, impl, out, args.keyword, args.timeout_multiplier, budget)
                result["run"] = number
                per_impl[impl].append(result)
                bad = [k for k, v in result["outcomes"].items() if v not in GOOD]
                print(f"flake_runs: run {number}/{args.runs} {impl}: exit {result['status']}, "
                      f"{len(result['outcomes'])} checks, {len(bad)} not good {bad[:5]}, "
                      f"{result['wall']}s, load {result['load_after']}"
                      + (f", ABORTED {result['aborted']}" if result["aborted"] else ""),
                      file=sys.stderr, flush=True)
    except KeyboardInterrupt as exc:
        interrupted = str(exc) or "interrupted"
    finally:
        hog_codes = stop_hog(hogs)
        signal.signal(signal.SIGTERM, previous)
        if not args.out and not args.keep:
            shutil.rmtree(out_root, ignore_errors=True)
    implementations = {}
    for impl, rounds in per_impl.items():
        flaky, never_good = compare(rounds)
        implementations[impl] = {
            "runs": len(rounds),
            "complete_runs": sum(1 for r in rounds if r["outcomes"] and not r["aborted"]),
            "checks": max([len(r["outcomes"]) for r in rounds] or [0]),
            "aborted": [{"run": r["run"], "reason": r["aborted"], "status": r["status"], "tail": r["tail"]}
                        for r in rounds if r["aborted"] or not r["outcomes"]],
            "flaky": flaky,
            "never_good": never_good,
            "wall": [r["wall"] for r in rounds],
            "load": [r["load_after"] for r in rounds],
            "status": [r["status"] for r in rounds],
        }
    return {
        "command": " ".join([os.path.basename(sys.argv[0])] + list(args.argv)),
        "runs": args.runs,
        "impls": list(args.impl),
        "selection": args.keyword,
        "timeout_multiplier": args.timeout_multiplier,
        "cores": cores(),
        "cores_loaded": hog_count,
        "hog_exit_codes": hog_codes,
        "load_start": load_start,
        "load_end": _load(),
        "wall": round(time.monotonic() - started, 1),
        "machine": {"python": platform.python_implementation() + " " + platform.python_version(),
                    "platform": platform.platform()},
        "interrupted": interrupted,
        "records": str(out_root) if (args.out or args.keep) else None,
        "implementations": implementations,
    }


def summary(result: Dict[str, Any]) -> str:
    lines = [f"flake_runs: {result['runs']} runs x {', '.join(result['impls'])}; "
             f"cores loaded by the hog: {result['cores_loaded']} of {result['cores']}; "
             f"load average {result['load_start']} -> {result['load_end']}; wall {result['wall']}s"]
    if result["interrupted"]:
        lines.append(f"  INTERRUPTED: {result['interrupted']}")
    for impl, data in result["implementations"].items():
        walls = sorted(data["wall"]) or [0]
        lines.append(f"  {impl}: {data['complete_runs']}/{data['runs']} complete runs of {data['checks']} checks, "
                     f"{len(data['flaky'])} flaky, run wall median {walls[len(walls) // 2]}s "
                     f"(min {walls[0]}, max {walls[-1]})")
        for row in data["flaky"]:
            counts = ", ".join(f"{k} x{v}" for k, v in sorted(row["outcomes"].items()))
            lines.append(f"    FLAKY {row['check']}: {counts}")
        for row in data["never_good"]:
            lines.append(f"    NEVER GOOD {row['check']}: {row['outcomes']}")
        for row in data["aborted"]:
            lines.append(f"    ABORTED run {row['run']} (exit {row['status']}): {row['reason']}")
    return "\n".join(lines)


def write_json(result: Dict[str, Any], target: str) -> None:
    """``result`` as indented JSON into the file ``target`` (``-``: stdout)."""
    text = json.dumps(result, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).write_text(text, encoding="utf-8")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="rounds per implementation (default 20)")
    parser.add_argument("--impl", action="append", help="implementation (repeatable; default stdlib, reference)")
    parser.add_argument("--hog", action="store_true", help="load every core with a busy process while measuring")
    parser.add_argument("--hog-lifetime", type=float, default=None,
                        help="a hog stops by itself after this many seconds (default: generous for the runs)")
    parser.add_argument("-k", dest="keyword", help="pytest -k selection (default: the full suite)")
    parser.add_argument("--timeout-multiplier", help="passed to ssconform run")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs ssconform")
    parser.add_argument("--out", help="keep the records in this directory (default: a temporary one, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary record directory")
    parser.add_argument("--json", metavar="FILE", help="write the result as JSON ('-': stdout)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    args.impl = list(dict.fromkeys(args.impl or ["stdlib", "reference"]))
    if not 1 <= args.runs <= 1000:
        print("flake_runs: --runs must be 1..1000", file=sys.stderr)
        return 2
    if args.hog_lifetime is None:
        args.hog_lifetime = timeouts.long() * 12 * args.runs * len(args.impl)
    result = measure(args)
    print(summary(result), file=sys.stderr)
    if args.json:
        write_json(result, args.json)
    bad = result["interrupted"] or any(d["flaky"] or d["aborted"] for d in result["implementations"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
