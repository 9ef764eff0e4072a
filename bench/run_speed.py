"""Benchmark: wall time of ``ssconform run`` serial vs its default parallelism, same outcomes.

Theory of operation
-------------------
``ssconform run`` runs the pytest processes of the implementations of a round
at the same time, each with pytest-xdist workers
(:mod:`harness.cli.suite_run`).  This script measures what that buys and proves
it changes nothing: for ``--runs N`` rounds it runs, interleaved (so drift in
machine load falls on both alike), each configuration of ``--config``:

``serial``    ``ssconform run --jobs 1 -n 0``: one implementation after the
              other, one pytest process each, no workers (the old default);
``default``   ``ssconform run``: the new default;
``n2`` ...    ``-n 2``, ``-n 3``, ``-n 4``, ``--jobs 1 -n 2``: the alternatives
              the default was chosen from.

each with the default implementations (or ``--impl``), in a fresh output
directory, bounded by ``timeouts.long() * 12``.  The wall time of every run is
kept, and the run records -- never pytest's output -- are compared: every
check (``id`` and ``variant``) must have the same outcome in every run of an
implementation, whatever the configuration; a check whose outcome differs is
listed (``differs``) with the outcome per run.

``--hog`` loads every core with a busy process for the whole measurement
(:func:`flake_runs.start_hog`, stopped and reaped in a ``finally`` block).

Output: a Markdown table (configuration, runs, median/min/max wall seconds)
and the differing checks on stdout; ``--json FILE`` writes everything.  Exit
status 0 when no outcome differed and no run aborted, 1 otherwise.

Usage::

    python bench/run_speed.py --runs 3
    python bench/run_speed.py --runs 3 --hog
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _path in (_ROOT, _HERE):
    if _path not in sys.path:  # run from a checkout without installing
        sys.path.insert(0, _path)

import flake_runs  # noqa: E402

from harness.core import timeouts  # noqa: E402
from harness.results import records  # noqa: E402

CONFIGS = {"serial": ["--jobs", "1", "-n", "0"], "default": [],
           # alternatives the default was chosen from
           "n2": ["-n", "2"], "n3": ["-n", "3"], "n4": ["-n", "4"], "jobs1-n2": ["--jobs", "1", "-n", "2"]}


def one_run(config: str, impls: Sequence[str], keyword: Optional[str]) -> Dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="ssc-speed-"))
    command = [sys.executable, "-m", "harness", "run", "--out", str(out), "--no-report", *CONFIGS[config]]
    for impl in impls:
        command += ["--impl", impl]
    if keyword:
        command += ["-k", keyword]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=timeouts.long() * 12, check=False)
        wall = time.monotonic() - started
        outcomes: Dict[str, Dict[str, str]] = {}
        aborted = []
        for _path, record in records.load_records([str(out)]):
            name = record["implementation"]["name"]
            outcomes[name] = {(c["id"] + (f"[{c['variant']}]" if c["variant"] else "")): c["outcome"]
                              for c in record["checks"]}
            if record.get("aborted"):
                aborted.append(f"{name}: {record['aborted']}")
        return {"config": config, "wall": round(wall, 2), "returncode": done.returncode, "outcomes": outcomes,
                "aborted": aborted}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def differing(runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    rows = []
    names = sorted({name for run in runs for name in run["outcomes"]})
    for name in names:
        checks = sorted({key for run in runs for key in run["outcomes"].get(name, {})})
        for key in checks:
            seen = [run["outcomes"].get(name, {}).get(key) for run in runs]
            if len(set(seen)) > 1:
                rows.append({"implementation": name, "check": key,
                             "outcomes": [f"{run['config']}:{o}" for run, o in zip(runs, seen)]})
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--impl", action="append", default=[])
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS))
    parser.add_argument("-k", dest="keyword")
    parser.add_argument("--hog", action="store_true", help="load every core with a busy process")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    configs = args.config or ["serial", "default"]
    hogs: List[subprocess.Popen] = []
    runs: List[Dict[str, Any]] = []
    try:
        if args.hog:
            hogs = flake_runs.start_hog(flake_runs.cores(), timeouts.long() * 12 * args.runs * len(configs))
        for number in range(args.runs):
            for config in configs:
                run = one_run(config, args.impl, args.keyword)
                print(f"run {number + 1}/{args.runs} {config}: {run['wall']} s, exit {run['returncode']}",
                      file=sys.stderr, flush=True)
                runs.append(run)
    finally:
        flake_runs.stop_hog(hogs)
    diffs = differing(runs)
    load = "both cores hogged" if args.hog else "idle"
    print(f"| configuration ({load}) | runs | median wall | min | max |")
    print("|---|---|---|---|---|")
    for config in configs:
        walls = [r["wall"] for r in runs if r["config"] == config]
        print(f"| {config} | {len(walls)} | {statistics.median(walls):.1f} s | {min(walls):.1f} s | {max(walls):.1f} s |")
    aborted = [a for r in runs for a in r["aborted"]]
    print(f"\noutcomes differing between runs: {len(diffs)}; aborted runs: {len(aborted)}")
    for row in diffs:
        print(f"    {row['implementation']} {row['check']}: {' '.join(row['outcomes'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"hog": args.hog, "runs": runs, "differing": diffs}, indent=2) + "\n",
                                   encoding="utf-8")
    return 0 if not diffs and not aborted else 1


if __name__ == "__main__":
    raise SystemExit(main())
