"""Precision of the suite's diagnosis: does a defect fail only the checks that own it, and quickly?

Theory of operation
-------------------
Every file in ``tests/broken/impls`` and every ``hang_*.py`` in
``tests/reliability/impls`` is a copy of the stdlib's socketserver broken in
one behaviour, and names (``BREAKS``, a tuple of check IDs or a dict
``{ID: outcome}``) the checks that own that behaviour.  For each, this
script runs the **whole** suite once (``python -m pytest --pyargs
conformance.checks --impl FILE``, one fresh process, serial inside) and reads
the run record:

* **collateral failures**: checks not named in ``BREAKS`` whose outcome is
  FAIL, ERROR, TIMEOUT or XPASS, plus PRECONDITION_FAILED outcomes whose
  prerequisite is not named either (a PRECONDITION_FAILED naming a named
  check is the precise diagnosis of a check that could not run);
* **missed**: named checks that did not fail (``tests/broken/test_broken.py``
  proves those; they are listed here only as a sanity check);
* **time ratio**: the run's wall time over the median wall time of the
  unbroken control (``tests/broken/impls/_control.py``) in its nearest
  ``--clean-near`` clean runs (by the midpoints of the runs in time).  Clean
  runs are interleaved with the broken ones: one first, one after every
  ``--clean-every`` implementations and one last, so a drift of the machine's
  load (other people's jobs on a shared machine) does not decide a ratio.  A
  run is bounded by ``--bound-ratio`` times the nearest clean runs' wall time
  when it starts; a run that hits the bound is killed and counted with its
  bound as its time (it is over the aim anyway).

Each row also lists the run's five slowest checks (from the record's
durations): where a run spends its time is the first question about a slow
one, and the machine's one-minute load average when the run started
(``os.getloadavg()``).  The summary gives their range and the commit measured.
Measure on an otherwise idle machine: interleaving corrects a slow drift of
load, not other jobs that come and go within a run.  This kit measured it:
idle, ``--jobs 2`` gave the ratios ``--jobs 1`` gave (1.01 / 1.17 / 2.91 vs
1.00 / 1.18 / 3.00 for three implementations, 317b25b), while at load 3-14
(other engineers' test runs, 4a9dc26) runs of the same code took up to 2x
their idle time against clean runs that happened to be spared.

The summary gives, over all implementations, the median and maximum of both
figures, the share with 0 collateral failures, and the share within twice the
clean wall time, which README.md publishes.  ``--jobs N`` runs N suites at
once (each is still serial; on a 2-core machine ``--jobs 2`` roughly halves
the total but lengthens each run; the interleaved clean runs are made at the
same parallelism).

``--only PREFIX`` (repeatable) selects the files whose name starts with it.
``--sample N`` measures every N-th file of ``tests/broken/impls`` (in name
order) plus every ``hang_*.py`` and every file ``--only`` names: a full
measurement runs the suite ~165 times, which a shared 2-core machine cannot
do in an hour.

``--merge A.json B.json ... --json OUT`` measures nothing: it combines
results measured separately (e.g. one per lane of a team, each named by its
``--lane`` or its file name) into one summary, per lane and overall.  Every
row keeps the ratio it was measured with, against its own clean runs.

Each suite runs in a session of its own; on Ctrl-C or SIGTERM the script
kills the process groups it started before it exits, so nothing is orphaned.

Usage::

    python bench/precision.py --jobs 2 --json precision.json
    python bench/precision.py --only api_no_ --only hang_shutdown    # a subset, by file-name prefix
    python bench/precision.py --merge a.json b.json --json all.json   # one summary of several
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "tests" / "broken" / "impls"
HANGS = ROOT / "tests" / "reliability" / "impls"
CONTROL = BROKEN / "_control.py"
BAD = {"FAIL", "ERROR", "TIMEOUT", "XPASS"}


def declared(path: Path) -> Optional[Dict[str, str]]:
    """``BREAKS`` of an implementation file as ``{ID: outcome}``, None without one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "BREAKS" for target in node.targets):
            value = ast.literal_eval(node.value)
            return {cid: "FAIL" for cid in value} if isinstance(value, (tuple, list)) else dict(value)
    return None


def implementations(only: List[str], sample: int = 1) -> List[Path]:
    broken = [p for p in sorted(BROKEN.glob("*.py")) if not p.name.startswith("_")]
    hangs = sorted(HANGS.glob("hang_*.py"))
    if sample > 1:
        named = [p for p in broken if p.name.startswith(tuple(only))]
        return sorted(set(broken[::sample] + named + hangs))
    found = broken + hangs
    if only:
        found = [p for p in found if p.name.startswith(tuple(only))]
    return found


#: process groups of the suites running now (killed on Ctrl-C / SIGTERM)
_RUNNING: set = set()
#: held while a suite is started or the running ones are killed; once _STOPPING is set no
#: worker starts another suite (a pool's queued runs would otherwise start after the kill)
_LOCK = threading.Lock()
_STOPPING = threading.Event()


def run_suite(impl: Path, bound: float) -> Dict[str, Any]:
    """One whole-suite run: wall time, whether it hit the bound, the record's checks."""
    with tempfile.TemporaryDirectory(prefix="ssc-precision-") as out:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.checks",
                   "-c", str(ROOT / "conformance" / "suite.ini"), "--rootdir", str(ROOT),
                   "--impl", str(impl), "--ssconform-out", out, "-q", "-p", "no:cacheprovider",
                   "-p", "no:xdist"]
        start = time.monotonic()
        with _LOCK:
            if _STOPPING.is_set():
                raise KeyboardInterrupt("stopping: no new suite")
            proc = subprocess.Popen(command, cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            _RUNNING.add(proc.pid)
        try:
            proc.wait(timeout=bound)
            hit_bound = False
        except subprocess.TimeoutExpired:
            hit_bound = True
            _kill_group(proc.pid)
            proc.wait()
        finally:
            _RUNNING.discard(proc.pid)
        wall = time.monotonic() - start
        records = [p for p in Path(out).glob("*.json")]
        checks = json.loads(records[0].read_text(encoding="utf-8"))["checks"] if records else []
    return {"wall": bound if hit_bound else wall, "hit_bound": hit_bound, "checks": checks}


def _load() -> Optional[float]:
    """The one-minute load average now (None where the OS has none: Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _commit() -> Optional[str]:
    """The commit measured (None outside a git checkout)."""
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(ROOT), capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("SIGTERM")


def judge(breaks: Dict[str, str], checks: List[dict]) -> Dict[str, Any]:
    named = set(breaks)
    collateral, failing = set(), set()
    for check in checks:
        label = check["id"] + (f"[{check['variant']}]" if check["variant"] else "")
        outcome = check["outcome"]
        if outcome == breaks.get(check["id"]):
            failing.add(check["id"])  # as declared (also a declared PRECONDITION_FAILED)
        if outcome in BAD:
            failing.add(check["id"])
            if check["id"] not in named:
                collateral.add(f"{label}={outcome}")
        elif outcome == "PRECONDITION_FAILED" and check["id"] not in named and check.get("prerequisite") not in named:
            collateral.add(f"{label}=PRECONDITION_FAILED({check.get('prerequisite')})")
    seen = {f"{c['id']}[{c['variant']}]" if c["variant"] else c["id"]: c["outcome"]
            + (f"({c.get('prerequisite')})" if c.get("prerequisite") else "")
            for c in checks if c["id"] in named}
    return {"collateral": sorted(collateral), "missed": sorted(named - failing), "named": seen}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[],
                        help="select files whose name starts with this (repeatable)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--clean-runs", type=int, default=1, metavar="N",
                        help="clean runs before the first implementation")
    parser.add_argument("--clean-every", type=int, default=5, metavar="K",
                        help="one clean run before the first and after every K implementations")
    parser.add_argument("--clean-near", type=int, default=3, metavar="M",
                        help="each ratio is against the median of the M clean runs nearest in time")
    parser.add_argument("--bound-ratio", type=float, default=4.0)
    parser.add_argument("--sample", type=int, default=1, metavar="N")
    parser.add_argument("--lane", help="a name for this measurement in --merge summaries")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="combine earlier results (each file one lane) instead of measuring")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    if args.merge:
        result = merge([Path(p) for p in args.merge])
        print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1), file=sys.stderr)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _measure(args, parser)
    finally:
        _stop_all()


@contextlib.contextmanager
def _pool(jobs: int) -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """A pool of ``jobs`` workers; on Ctrl-C or SIGTERM its queued suites are cancelled and
    its running ones killed before it is waited for (it would otherwise run them all)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1))
    try:
        yield pool
    except BaseException:
        _stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _stop_all() -> None:
    """No suite starts any more; every running one is killed (its whole process group)."""
    with _LOCK:
        _STOPPING.set()
        for pid in list(_RUNNING):
            _kill_group(pid)


def schedule(impls: List[Path], every: int) -> List[Optional[Path]]:
    """The order of the runs: ``None`` (a clean run) first, after every ``every``
    implementations, and last, so every implementation has clean runs on both sides."""
    order: List[Optional[Path]] = [None]
    for index, path in enumerate(impls, 1):
        order.append(path)
        if index % max(every, 1) == 0 or index == len(impls):
            order.append(None)
    return order


def nearest_clean(at: float, cleans: List[Dict[str, Any]], count: int) -> float:
    """Median wall time of the ``count`` clean runs whose midpoints lie nearest to ``at``."""
    near = sorted(cleans, key=lambda run: abs(run["mid"] - at))[:max(count, 1)]
    return statistics.median(run["wall"] for run in near)


def summarize(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The published figures over ``rows`` (each row keeps the ratio it was measured with)."""
    counts = [len(row["collateral"]) for row in rows]
    ratios = [row["ratio"] for row in rows]
    if not rows:
        return {"implementations": 0}
    return {
        "implementations": len(rows),
        "collateral_median": statistics.median(counts),
        "collateral_max": max(counts),
        "share_without_collateral": round(sum(1 for c in counts if c == 0) / len(counts), 4),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "share_within_2x": round(sum(1 for r in ratios if r <= 2) / len(ratios), 4),
    }


def merge(paths: List[Path]) -> Dict[str, Any]:
    """One summary of several results (each file a lane, named by its ``lane`` or its stem):
    per lane and overall.  An implementation measured in more than one file keeps its last row."""
    lanes: Dict[str, Any] = {}
    rows: Dict[str, Dict[str, Any]] = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        lane = data["summary"].get("lane") or path.stem
        for row in data["rows"]:
            rows[row["impl"]] = dict(row, lane=lane)
        lanes[lane] = {"file": str(path), "clean_wall": data["summary"].get("clean_wall"),
                       **summarize(data["rows"])}
    return {"summary": {"lanes": lanes, "overall": summarize(list(rows.values()))},
            "rows": sorted(rows.values(), key=lambda row: row["impl"])}


def _measure(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    impls = implementations(args.only, args.sample)
    undeclared = [p.name for p in impls if declared(p) is None]
    if undeclared:
        parser.error(f"no BREAKS in: {', '.join(undeclared)}")
    origin = time.monotonic()
    cleans: List[Dict[str, Any]] = []
    done = threading.Condition()

    def clean_run(_: Any = None) -> None:
        start = time.monotonic() - origin
        load = _load()
        run = run_suite(CONTROL, 3600.0)
        bad = [c["id"] for c in run["checks"] if c["outcome"] in BAD]
        with done:
            cleans.append({"wall": run["wall"], "mid": start + run["wall"] / 2, "bad": bad, "load": load})
            done.notify_all()
        print(f"clean run: {run['wall']:.1f}s; bad outcomes: {bad or 'none'}", file=sys.stderr)

    def one(path: Path) -> Dict[str, Any]:
        with done:  # the bound is set from the clean runs so far (the first one always exists)
            bound = nearest_clean(time.monotonic() - origin, cleans, args.clean_near) * args.bound_ratio
        start = time.monotonic() - origin
        load = _load()
        run = run_suite(path, bound)
        verdict = judge(declared(path) or {}, run["checks"])
        if not run["checks"]:
            verdict["collateral"] = ["(no record: the run was killed at its bound)"]
        slowest = sorted(run["checks"], key=lambda c: -c.get("duration", 0.0))[:5]
        row = {"impl": path.name, "wall": round(run["wall"], 2), "mid": start + run["wall"] / 2,
               "hit_bound": run["hit_bound"], "checks": len(run["checks"]), "load": load, **verdict,
               "slowest": [f"{c['id']}" + (f"[{c['variant']}]" if c["variant"] else "")
                           + f"={c['outcome']} {c.get('duration', 0.0):.1f}s" for c in slowest]}
        print(f"{path.name}: {len(verdict['collateral'])} collateral, {row['wall']:.1f}s"
              f"{' (bound)' if run['hit_bound'] else ''} {verdict['collateral'][:6]}; "
              f"slowest {row['slowest'][:3]}", file=sys.stderr)
        return row

    order = schedule(impls, args.clean_every)
    for _ in range(max(args.clean_runs, 1)):  # the first bound needs a clean run
        clean_run()
    rows: List[Dict[str, Any]] = []
    with _pool(args.jobs) as pool:
        futures = [pool.submit(clean_run) if path is None else pool.submit(one, path) for path in order[1:]]
        for future in futures:
            result = future.result()
            if result is not None:
                rows.append(result)
    for row in rows:  # against the clean runs nearest in time, made under the same drift of load
        near = nearest_clean(row.pop("mid"), cleans, args.clean_near)
        row["clean_near"] = round(near, 2)
        row["ratio"] = round(row["wall"] / near, 3)
    print(f"clean runs: {[round(run['wall'], 1) for run in cleans]}", file=sys.stderr)
    loads = [entry["load"] for entry in rows + cleans if entry.get("load") is not None]
    summary = {
        **summarize(rows),
        "lane": args.lane,
        "clean_wall": round(statistics.median(run["wall"] for run in cleans), 2),
        "clean_walls": [round(run["wall"], 2) for run in cleans],
        "clean_bad": sorted({cid for run in cleans for cid in run["bad"]}),
        "clean_every": args.clean_every,
        "clean_near": args.clean_near,
        "jobs": args.jobs,
        "sample": args.sample,
        "commit": _commit(),
        "load_range": [min(loads), max(loads)] if loads else None,
    }
    print(json.dumps(summary, indent=1), file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n",
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
