"""Reproduce the mutation-testing run of the conformance suite against reference_impl.

Theory of operation
-------------------
Cosmic Ray (https://cosmic-ray.readthedocs.io) mutates a module *on disk*,
runs a test command, and restores the file.  Mutating on disk is what this
suite needs: many checks run the server in a child process
(``python -m harness.processes.server_process``), and a child only sees a mutant that
is really in the file it imports.  Because other people run the suite from
the working tree at the same time, nothing here ever touches it: the run
works in a throw-away ``git clone`` (``--clone``), with the clone first on
``PYTHONPATH`` and as the working directory, and checks before starting
that a child process started the way the harness starts one imports
``reference_impl`` from the clone.

Steps (each resumable; results accumulate in the session database inside
the clone and in ``--out``):

1. clone (or reuse) the repository, restore ``reference_impl/`` there,
   drop byte-code caches;
2. ``cosmic-ray init`` -> every mutant of ``reference_impl`` as a work item;
3. baseline: every area command passes on the unmutated clone (a failing
   baseline would turn flakiness into false kills), then annotation
   mutants are split off: a mutation inside an annotation cannot change
   behaviour because every module has ``from __future__ import
   annotations`` (PEP 563: annotations are never evaluated), so they are
   classified *equivalent by construction*; a seeded random few of them
   are still run as a spot check;
4. stage 1: the other mutants in a seeded random order, each against the
   check areas of its module (``[ssconform-mutation.areas]``) with ``-x``
   and a small timeout multiplier, under Cosmic Ray's wall-clock cap (a
   cap hit is TIMEOUT, counted as killed).  ``--budget`` stops between
   mutants; the completed prefix of a random permutation is a uniform
   random sample;
5. stage 2: each stage-1 survivor is re-run against every area stage 1
   did not run (so by now the whole suite), so the area map saves time
   but cannot hide a kill (``--stage2-budget``;
   survivors judged equivalent in ``verdicts.json`` go last);
6. stage 3: a survivor of the whole suite is run against the reference's
   own unit tests (``--unit-tests``), which may require what a
   stdlib-compatible conformance check cannot (prompt ``shutdown()``, the
   EMFILE back-off); their kills are a second figure, never mixed into the
   suite's kill rate;
7. ``results/summary.json`` (counts, kill rate with a Wilson interval),
   ``results/mutants.jsonl`` (one line per mutant run) and
   ``results/survivors.md`` (diffs to judge by hand).

Carry-over (``--carry-over PREVIOUS_RESULTS``): a second round at a later
commit need not re-run what the first already killed.  Mutants are matched
by what they change (module, operator, changed text; not line numbers or
job ids); a matched kill is recorded as stage ``carried``, a seeded random
sample of those is re-run anyway and reported as a test of the claim, and
everything else (previous survivors, new mutants) runs normally.  A matched
survivor keeps its previous verdict unless given a new one.

Usage::

    /work/venv/bin/python mutation/run.py [--budget SECONDS] [--clone DIR] [--carry-over DIR]
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent
CONFIG = HERE / "cosmic-ray.toml"
SESSION = "mutation-session.sqlite"  # inside the clone, never committed


def sh(args: List[str], cwd: Path, timeout: float, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=str(cwd), timeout=timeout, env=env, capture_output=True, text=True)


def settings() -> Dict[str, Any]:
    with open(CONFIG, "rb") as f:
        data = tomllib.load(f)
    return data


def prepare_clone(clone: Path, update: bool = False) -> str:
    if not (clone / ".git").is_dir():
        sh(["git", "clone", "--quiet", str(SOURCE), str(clone)], SOURCE, 300).check_returncode()
    elif update:
        # A resumed run may take newer commits (tests added meanwhile); each
        # record names the commit it ran at, and a mutant's place in the
        # source must not move, so reference_impl itself must be unchanged.
        # Fetch and check out the source HEAD (detached): the source branch
        # may have been rebased since the clone was made, so a fast-forward
        # cannot be assumed.  Untracked files (the session database) stay.
        before = sh(["git", "rev-parse", "HEAD:reference_impl"], clone, 60).stdout.strip()
        sh(["git", "fetch", "--quiet", str(SOURCE), "HEAD"], clone, 300).check_returncode()
        sh(["git", "checkout", "--quiet", "--detach", "FETCH_HEAD"], clone, 300).check_returncode()
        if sh(["git", "rev-parse", "HEAD:reference_impl"], clone, 60).stdout.strip() != before:
            raise SystemExit("--update: reference_impl changed since the session was made; start a new clone")
    # A previous run killed mid-mutant may have left a mutated file behind.
    sh(["git", "checkout", "--", "reference_impl"], clone, 60).check_returncode()
    (clone / "mutation").mkdir(exist_ok=True)
    shutil.copy(CONFIG, clone / "mutation" / "cosmic-ray.toml")
    for cache in (clone / "reference_impl").rglob("__pycache__"):
        shutil.rmtree(cache)
    return sh(["git", "rev-parse", "HEAD"], clone, 60).stdout.strip()


#: Cosmic Ray's ExceptionReplacer writes ``except CosmicRayTestingException:``
#: but nothing defines that name in the processes that run the tests, so
#: evaluating the clause raises NameError.  For ``except X:`` that changes
#: nothing (the exception escapes either way), but for ``except (X, Y):`` with
#: Y replaced it would also stop X from being caught: a kill that the intended
#: mutant ("no longer catches Y") does not deserve.  A ``sitecustomize`` on
#: PYTHONPATH defines the name in every process of the run (pytest, server
#: processes, forked children) so each mutant means what it says.
SITE_DIR = ".mutation-site"
SITECUSTOMIZE = (
    "import builtins\n"
    "class CosmicRayTestingException(Exception):\n"
    "    \"\"\"Raised by nothing: an except clause naming it catches nothing.\"\"\"\n"
    "builtins.CosmicRayTestingException = CosmicRayTestingException\n"
)


def child_env(clone: Path) -> Dict[str, str]:
    env = dict(os.environ)
    site = clone / SITE_DIR
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in (str(clone), str(site))]
    env["PYTHONPATH"] = os.pathsep.join([str(clone), str(site)] + parts)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def verify_child_import(clone: Path) -> str:
    """A grandchild started with harness.processes.supervisor.child_env() imports the clone."""
    code = (
        "import subprocess, sys; from harness.processes.supervisor import child_env; "
        "print(subprocess.run([sys.executable, '-c', 'import reference_impl, harness; "
        "print(reference_impl.__file__, CosmicRayTestingException.__name__)'], env=child_env(), "
        "capture_output=True, text=True, timeout=60).stdout)"
    )
    out = sh([sys.executable, "-c", code], clone, 120, env=child_env(clone)).stdout.strip()
    if not out.startswith(str(clone)) or not out.endswith(" CosmicRayTestingException"):
        raise SystemExit(f"child process imports reference_impl from {out!r}, not the clone {clone}, "
                         "or lacks CosmicRayTestingException")
    return out.split()[0]


#: Every area, cheapest first (seconds on the unmutated suite: all about 1 s
#: except EXT 4, FORKING 10, DISCONNECT 13, CONCURRENCY 24), so that a stage-2
#: run with -x reaches a cheap failing check before an expensive one.  EXT
#: holds the declared extensions, which the reference declares (round 3).
ALL_AREAS = ["API", "BIND", "HANDLER", "PIPELINE", "SERVE", "SHUTDOWN", "THREADING", "TUTORIAL", "UDP",
             "UNIX", "EXT", "FORKING", "DISCONNECT", "CONCURRENCY"]


#: Checks left out of every mutant run (``--deselect``): a check whose
#: outcome on the unmutated reference depends on machine load would turn
#: load into kills.  Leaving one out can only lose kills, never make one.
DESELECTED: List[str] = []


def pytest_command(areas: Optional[List[str]], multiplier: float, rest_of: Optional[List[str]] = None) -> str:
    """The suite restricted to ``areas``; or, with ``rest_of``, every other area in ALL_AREAS order."""
    cmd = [sys.executable, "-m", "pytest", "--pyargs"]
    if rest_of is not None:
        cmd += ["conformance.checks.test_" + a.lower() for a in ALL_AREAS if a not in rest_of]
    else:
        cmd += ["conformance.checks"]
    cmd += ["-c", "conformance/suite.ini", "--rootdir", ".", "--impl", "reference", "-q", "-x", "-p", "no:xdist",
            "--timeout-multiplier", str(multiplier)]
    if areas:
        cmd += ["--check", ",".join(areas)]
    for node in DESELECTED:
        cmd += ["--deselect", node]
    return " ".join(cmd)


def unit_command(path: str, multiplier: float) -> str:
    """The reference's own unit tests (stage 3), same interpreter, no xdist.

    ``path`` may carry pytest arguments (the default leaves out the CPython
    test-suite replay, which re-runs five interpreters and adds nothing the
    conformance suite did not already run)."""
    # -o addopts=: pyproject's addopts carry xdist's -n, unknown with -p no:xdist
    # (round 4's first unit runs all failed on it, in 1-3 s, naming no test).
    return " ".join([sys.executable, "-m", "pytest", *path.split(), "-q", "-x", "-p", "no:xdist", "-p", "no:cacheprovider",
                     "-o", "addopts="])


def signature(module: str, operator: str, diff: str) -> Tuple[str, str, Tuple[str, ...], Tuple[str, ...]]:
    """What a mutant changes, independent of line numbers and Cosmic Ray job ids.

    Two runs at different commits share a mutant when the same operator makes
    the same textual change in the same module; line numbers move when
    unrelated code above changes, so they are not part of the key.
    """
    rows = [r for r in diff.splitlines() if not r.startswith(("---", "+++"))]
    minus = tuple(r[1:].strip() for r in rows if r.startswith("-"))
    plus = tuple(r[1:].strip() for r in rows if r.startswith("+"))
    return (module, operator, minus, plus)


def mutant_diff(clone: Path, mutation: Any) -> str:
    """The unified diff of one mutant, computed in memory (the file is not touched)."""
    import difflib

    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    code = (clone / str(mutation.module_path)).read_text(encoding="utf-8")
    operator = cosmic_ray.plugins.get_operator(mutation.operator_name)(**getattr(mutation, "operator_args", {}) or {})
    mutated = mutate_code(code, operator, mutation.occurrence)
    if mutated is None:
        return ""
    return "\n".join(difflib.unified_diff(code.splitlines(), mutated.splitlines(), lineterm="", n=0))


def carry_over(clone: Path, behavioural: List[Any], previous: Path, record: Any, done: Dict[Any, Dict[str, Any]],
               rng: random.Random, spot_checks: int, rerun_kills: bool = False) -> None:
    """Carry kills over from a previous run at another commit.

    A mutant the previous run killed, whose signature (module, operator,
    changed text) is unchanged, is recorded as stage ``carried`` with the
    previous outcome and failing check instead of being run again: the
    checks that killed it are still in the suite.  A seeded random sample of
    them is re-run anyway (``spot_check``) and reported, which tests that
    claim.  Every other mutant - previous survivors, and mutants new at this
    commit - runs normally.  Equal signatures are paired in source order.
    With ``rerun_kills`` (round 4: the suite was rewritten since) no kill is
    carried: only the ``match`` records are made, so verdicts follow the
    mutant, and every mutant runs again.
    """
    prev: Dict[Any, List[Dict[str, Any]]] = {}
    records: Dict[Any, Dict[str, Any]] = {}
    for line in (previous / "mutants.jsonl").read_text().splitlines():
        rec = json.loads(line)
        records[(rec["job_id"], rec["stage"])] = rec
    for (job, stage), rec in sorted(records.items(), key=lambda kv: (kv[1].get("module", ""), kv[1].get("line", 0))):
        # A mutant the previous run ran (stage "area", then "full"), or one it
        # carried over itself from the run before (stage "carried": a kill).
        if stage == "carried" and (job, "area") in records:
            continue  # a carried kill re-run as a spot check: its own run counts
        if stage not in ("area", "carried"):
            continue
        final = records.get((job, "full"), rec) if rec["outcome"] == "survived" else rec
        prev.setdefault(signature(rec["module"], rec["operator"], rec["diff"]), []).append(final)
    matched: List[Tuple[Any, Dict[str, Any]]] = []
    for item in sorted(behavioural, key=lambda i: (str(i.mutations[0].module_path), tuple(i.mutations[0].start_pos))):
        m = item.mutations[0]
        candidates = prev.get(signature(str(m.module_path), m.operator_name, mutant_diff(clone, m)))
        if candidates:
            matched.append((item, candidates.pop(0)))
    # The previous run's own matches (to the run before it): a verdict may be
    # keyed by the job id of any earlier round, so the chain is kept.
    earlier = {rec["job_id"]: [rec["from_job"]] + list(rec.get("earlier_jobs", []))
               for (job, stage), rec in records.items() if stage == "match"}
    for item, old in matched:
        if (item.job_id, "match") not in done:  # lets a survivor keep its previous verdict
            record({"job_id": item.job_id, "stage": "match", "from_job": old["job_id"], "outcome": old["outcome"],
                    "earlier_jobs": earlier.get(old["job_id"], [])})
    # ExceptionReplacer kills of a run without CosmicRayTestingException defined
    # (see SITECUSTOMIZE) may be NameError artefacts: never carried, always re-run.
    kills = [(item, old) for item, old in matched if old["outcome"] in ("killed", "timeout")
             and (old.get("exception_name_defined")
                  or not item.mutations[0].operator_name.endswith("ExceptionReplacer"))]
    sample = {item.job_id for item, _ in rng.sample(kills, min(spot_checks, len(kills)))}
    for item, old in kills:
        if rerun_kills:
            break
        if (item.job_id, "carried") in done:
            continue
        m = item.mutations[0]
        record({"job_id": item.job_id, "stage": "carried", "module": str(m.module_path), "operator": m.operator_name,
                "occurrence": m.occurrence, "line": m.start_pos[0], "outcome": old["outcome"],
                "from_job": old["job_id"], "failed": old.get("failed", []), "diff": old.get("diff", ""),
                "spot_check": item.job_id in sample, "seconds": 0.0})
    if rerun_kills:
        print(f"matched to {previous}: {len(matched)} of {len(behavioural)} mutants; "
              f"no kill carried (--rerun-kills)", flush=True)
    else:
        print(f"carry-over from {previous}: {len(matched)} of {len(behavioural)} mutants matched, "
              f"{len(kills)} kills carried, {len(sample)} of them re-run as spot checks", flush=True)


def annotation_ranges(path: Path) -> List[Tuple[Tuple[int, int], Tuple[int, int]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            nodes.append(node.returns)
        elif isinstance(node, ast.arg) and node.annotation is not None or isinstance(node, ast.AnnAssign):
            nodes.append(node.annotation)
    return [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in nodes]


def in_annotation(clone: Path, mutation: Any, cache: Dict[str, Any]) -> bool:
    key = str(mutation.module_path)
    if key not in cache:
        source = (clone / key).read_text(encoding="utf-8")
        cache[key] = (annotation_ranges(clone / key), "from __future__ import annotations" in source)
    ranges, postponed = cache[key]
    start, end = tuple(mutation.start_pos), tuple(mutation.end_pos)
    return postponed and any(s <= start and end <= e for s, e in ranges)


def failed_nodes(output: str) -> List[str]:
    return [line.split(" ", 1)[1].split(" - ")[0] for line in output.splitlines()
            if line.startswith(("FAILED ", "ERROR "))][:5]


def wilson(k: int, n: int, z: float = 1.96) -> Optional[List[float]]:
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 4), round(centre + half, 4)]


def deadline_arg(text: str) -> float:
    """HH:MM (UTC, today) -> epoch seconds."""
    import datetime
    hour, minute = (int(x) for x in text.split(":"))
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def replace_records(log_path: Path, prefixes: List[str]) -> None:
    """Move the run records (not match/carry records) of these jobs to rerun-replaced.jsonl."""
    if not prefixes or not log_path.exists():
        return
    keep, moved = [], []
    for line in log_path.read_text().splitlines():
        rec = json.loads(line)
        hit = rec["stage"] in ("area", "full", "unit", "annotation") and rec["job_id"].startswith(tuple(prefixes))
        (moved if hit else keep).append(line)
    with open(log_path.with_name("rerun-replaced.jsonl"), "a") as f:
        f.writelines(line + "\n" for line in moved)
    log_path.write_text("".join(line + "\n" for line in keep))
    print(f"--rerun: {len(moved)} records moved to rerun-replaced.jsonl", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clone", default="/tmp/ssconform-mutation-clone", type=Path)
    parser.add_argument("--out", default=HERE / "results", type=Path)
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for stage 1 (default: run every mutant)")
    parser.add_argument("--stage2-budget", type=float, default=None, help="seconds for stage 2")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--update", action="store_true",
                        help="fast-forward an existing clone to the source HEAD first (reference_impl must be unchanged)")
    parser.add_argument("--carry-over", type=Path, default=None, metavar="PREVIOUS_RESULTS",
                        help="a previous run's results dir: its killed mutants are carried over (a seeded sample "
                             "re-run), every other mutant is run again")
    parser.add_argument("--carry-over-spot-checks", type=int, default=30,
                        help="how many carried-over kills to re-run as a check of the carry-over")
    parser.add_argument("--rerun-kills", action="store_true",
                        help="with --carry-over: carry no kill, run every mutant not judged equivalent again "
                             "(the suite changed); equivalent verdicts are carried (see --equivalent-spot-checks)")
    parser.add_argument("--equivalent-spot-checks", type=int, default=10,
                        help="with --rerun-kills: how many mutants judged equivalent run anyway (seeded sample)")
    parser.add_argument("--annotation-spot-checks", type=int, default=None,
                        help="how many annotation mutants run as a spot check (default: cosmic-ray.toml)")
    parser.add_argument("--interleave", action="store_true",
                        help="take each mutant through stages 1-3 before the next (a deadline then leaves a "
                             "uniform sample of finished mutants)")
    parser.add_argument("--deadline", type=deadline_arg, default=None, metavar="HH:MM",
                        help="UTC time of day after which no mutant starts (with --interleave)")
    parser.add_argument("--rerun", default="", metavar="JOB[,JOB...]",
                        help="run these mutants again (job id prefixes): their records move to "
                             "rerun-replaced.jsonl, e.g. a kill judged an artefact of load")
    parser.add_argument("--deselect", action="append", default=[], metavar="NODEID",
                        help="leave this check out of every mutant run (a check that fails the unmutated "
                             "reference under load); recorded in each record")
    parser.add_argument("--unit-tests",
                        default="tests/reference_impl --ignore=tests/reference_impl/test_cpython_suite.py",
                        help="reference-only unit tests run against every survivor of the suite (stage 3); "
                             "'' to skip")
    args = parser.parse_args(argv)

    data = settings()
    opts = data["ssconform-mutation"]
    areas_of: Dict[str, List[str]] = opts["areas"]
    multiplier = float(opts["timeout-multiplier"])
    cap = float(data["cosmic-ray"]["timeout"])
    full_cap = float(opts["full-suite-timeout"])
    clone: Path = args.clone.resolve()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "mutants.jsonl"
    DESELECTED[:] = args.deselect
    replace_records(log_path, [p for p in args.rerun.split(",") if p])

    commit = prepare_clone(clone, args.update)
    os.chdir(str(clone))  # cosmic-ray runs the test command in the cwd
    os.environ.update(child_env(clone))
    print(f"clone {clone} at {commit[:12]}; child imports {verify_child_import(clone)}", flush=True)

    from cosmic_ray.mutating import mutate_and_test
    from cosmic_ray.work_db import WorkDB, use_db

    session = clone / SESSION
    if not session.exists():
        sh([str(Path(sys.executable).with_name("cosmic-ray")), "init", "mutation/cosmic-ray.toml", str(session)],
           clone, 600).check_returncode()

    done: Dict[str, Dict[str, Any]] = {}
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            rec = json.loads(line)
            done[(rec["job_id"], rec["stage"])] = rec  # type: ignore[index]

    # An ExceptionReplacer result from before CosmicRayTestingException was
    # defined (see SITECUSTOMIZE) is not trusted: that mutant runs again.
    for key in [k for k, rec in done.items() if str(rec.get("operator", "")).endswith("ExceptionReplacer")
                and k[1] in ("area", "full", "unit", "carried") and not rec.get("exception_name_defined")]:
        del done[key]

    def record(rec: Dict[str, Any]) -> None:
        done[(rec["job_id"], rec["stage"])] = rec  # type: ignore[index]
        with open(log_path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")

    with use_db(str(session), WorkDB.Mode.open) as db:
        items = sorted(db.work_items, key=lambda item: item.job_id)
        cache: Dict[str, Any] = {}
        annotation = [i for i in items if in_annotation(clone, i.mutations[0], cache)]
        behavioural = [i for i in items if not in_annotation(clone, i.mutations[0], cache)]
        rng = random.Random(int(opts["seed"]))
        rng.shuffle(behavioural)
        spot = rng.sample(annotation, min(int(args.annotation_spot_checks if args.annotation_spot_checks is not None
                                              else opts["annotation-spot-checks"]), len(annotation)))
        if args.carry_over is not None:
            carry_over(clone, behavioural, args.carry_over, record, done, rng,
                                 args.carry_over_spot_checks, rerun_kills=args.rerun_kills)
        if args.rerun_kills:
            carry_equivalent_verdicts(behavioural, done, record, random.Random(int(opts["seed"]) + 4),
                                      args.equivalent_spot_checks)

        def run_one(item: Any, stage: str) -> Dict[str, Any]:
            m = item.mutations[0]
            module = str(m.module_path)
            if stage == "full":  # stage 2: the areas stage 1 did not run
                areas = [a for a in ALL_AREAS if a not in areas_of[module]]
                command = pytest_command(None, multiplier, rest_of=areas_of[module])
            elif stage == "unit":  # stage 3: reference-only behaviour, outside the conformance suite
                areas = ["unit:" + args.unit_tests]
                command = unit_command(args.unit_tests, multiplier)
            else:
                areas = areas_of[module]
                command = pytest_command(areas, multiplier)
            started = time.monotonic()
            result = mutate_and_test([m], command, cap if stage != "full" else full_cap)
            elapsed = time.monotonic() - started
            if sh(["git", "status", "--porcelain", "reference_impl"], clone, 60).stdout.strip():
                raise SystemExit(f"reference_impl in the clone was not restored after {item.job_id}")
            output = result.output or ""
            outcome = (result.test_outcome.value if result.test_outcome else result.worker_outcome.value)
            if output == "timeout":
                outcome = "timeout"
            rec = {"job_id": item.job_id, "stage": stage, "module": module, "operator": m.operator_name,
                   "occurrence": m.occurrence, "line": m.start_pos[0], "areas": areas or "ALL",
                   "outcome": outcome, "seconds": round(elapsed, 1), "failed": failed_nodes(output), "commit": commit,
                   "exception_name_defined": True, "deselected": list(DESELECTED),
                   "diff": result.diff or ""}
            if result.test_outcome is not None:
                db.set_result(item.job_id, result)
            record(rec)
            print("%-9s %-6s %-28s %5d %-48s %5.1fs %s" % (outcome, stage, module, m.start_pos[0], m.operator_name,
                                                           elapsed, (rec["failed"] or [""])[0]), flush=True)
            return rec

        if not args.report_only:
            # A baseline at every commit the run uses: a run resumed with
            # --update runs a changed suite.  (Round 4's first baselines
            # carry no commit: they count only for a resume without --update.)
            if not any(k[1] == "baseline" and (rec.get("commit") == commit or "commit" not in rec and not args.update)
                       for k, rec in done.items()):
                # Every area command of stage 1, and the whole suite (stage 2).
                for areas in sorted({tuple(a) for a in areas_of.values()}) + [tuple(ALL_AREAS)]:
                    started = time.monotonic()
                    whole = areas == tuple(ALL_AREAS)
                    proc = sh(pytest_command(None if whole else list(areas), multiplier).split(), clone,
                              full_cap if whole else cap)
                    rec = {"job_id": "baseline:" + ",".join(areas), "stage": "baseline", "commit": commit,
                           "deselected": list(DESELECTED),
                           "outcome": "pass" if proc.returncode == 0 else "FAIL",
                           "seconds": round(time.monotonic() - started, 1), "failed": failed_nodes(proc.stdout)}
                    print("baseline {}: {} in {:.1f}s".format(",".join(areas), rec["outcome"], rec["seconds"]), flush=True)
                    if proc.returncode != 0:
                        print(proc.stdout[-3000:])
                        raise SystemExit("baseline fails: fix the suite or raise the multiplier first")
                    record(rec)
            stop_at = None if args.deadline is None else args.deadline
            if args.interleave:
                run_interleaved(behavioural, spot, done, run_one, stop_at, bool(args.unit_tests))
            else:
                run_by_stage(behavioural, spot, done, run_one, args, bool(args.unit_tests))

        summarise(out, commit, items, annotation, behavioural, spot, done, multiplier, cap, full_cap)
    return 0


def skipped(item: Any, done: Dict[Any, Dict[str, Any]]) -> bool:
    """A mutant not to run: a carried kill (unless a spot check) or a carried equivalent verdict."""
    carried = done.get((item.job_id, "carried"))
    return (carried is not None and not carried.get("spot_check")) or (item.job_id, "carried-verdict") in done


def survived(rec: Optional[Dict[str, Any]]) -> bool:
    return rec is not None and rec["outcome"] == "survived"


def run_by_stage(behavioural: List[Any], spot: List[Any], done: Dict[Any, Dict[str, Any]], run_one: Any,
                 args: Any, unit_tests: bool) -> None:
    """Rounds 1-3: every mutant's stage 1, then stage 2 of the survivors, then stage 3."""
    for item in spot:
        if (item.job_id, "annotation") not in done:
            run_one(item, "annotation")
    deadline = None if args.budget is None else time.monotonic() + args.budget
    for item in behavioural:
        if deadline is not None and time.monotonic() > deadline:
            break
        if (item.job_id, "area") not in done and not skipped(item, done):
            run_one(item, "area")
    deadline = None if args.stage2_budget is None else time.monotonic() + args.stage2_budget
    # Survivors judged equivalent (verdicts.json) go last: the whole
    # suite cannot kill a truly equivalent mutant, so their re-run only
    # tests the judgement, while the others may turn out killed.
    judged = resolve_verdicts(done)
    rank = {"gap": 1, "gap-extension": 2, "equivalent": 3}  # unjudged/pending first
    order = sorted(behavioural, key=lambda i: rank.get(judged.get(i.job_id, {}).get("verdict", ""), 0))
    for item in order:
        if survived(done.get((item.job_id, "area"))) and (item.job_id, "full") not in done:
            if deadline is not None and time.monotonic() > deadline:
                break
            run_one(item, "full")
    if unit_tests:
        # Stage 3: what survived the whole conformance suite, against
        # the reference's own unit tests (reported as a second figure:
        # the suite alone cannot require reference-only behaviour).
        for item in order:
            area, full = done.get((item.job_id, "area")), done.get((item.job_id, "full"))
            if survived(full or area) and (item.job_id, "unit") not in done:
                run_one(item, "unit")


def run_interleaved(behavioural: List[Any], spot: List[Any], done: Dict[Any, Dict[str, Any]], run_one: Any,
                    stop_at: Optional[float], unit_tests: bool) -> None:
    """Round 4: each mutant through all its stages before the next one starts.

    The mutants go in the seeded random order, the sampled equivalent ones
    (their verdict under test) after every other, the annotation spot checks
    last.  No mutant starts after ``stop_at`` (epoch seconds): what finished
    is then a uniform random sample of the non-equivalent mutants, each
    judged by the whole suite, so a rate over it is an honest estimate.
    """
    spot_equivalent = {job for (job, stage) in done if stage == "equivalent-spot-check"}
    order = ([i for i in behavioural if i.job_id not in spot_equivalent]
             + [i for i in behavioural if i.job_id in spot_equivalent])

    def late() -> bool:
        return stop_at is not None and time.time() > stop_at

    for item in order:
        if skipped(item, done):
            continue
        for stage, before in (("area", None), ("full", "area"), ("unit", "full")):
            if stage == "unit" and not unit_tests:
                break
            if before is not None and not survived(done.get((item.job_id, before))):
                break
            if (item.job_id, stage) not in done:
                if late():
                    print("deadline reached: no further mutant is started", flush=True)
                    return
                run_one(item, stage)
    for item in spot:
        if (item.job_id, "annotation") not in done:
            if late():
                print("deadline reached before the annotation spot checks", flush=True)
                return
            run_one(item, "annotation")


def carry_equivalent_verdicts(behavioural: List[Any], done: Dict[Any, Dict[str, Any]], record: Any,
                              rng: random.Random, spot_checks: int) -> None:
    """Carry the verdict of a mutant judged equivalent, instead of re-running it.

    "Equivalent" is a judgement of the mutant (it behaves like the original
    wherever the contract looks), not of the suite, so it holds at any
    commit where the mutant's module is unchanged.  Only a previous
    *survivor* with that verdict is carried (a verdict of an earlier round
    may be stale for a mutant killed since).  A seeded random sample of
    ``spot_checks`` runs anyway, as a test of the judgements.
    """
    verdicts = resolve_verdicts(done)
    equivalent = sorted((i for i in behavioural
                         if verdicts.get(i.job_id, {}).get("verdict") == "equivalent"
                         and done.get((i.job_id, "match"), {}).get("outcome") == "survived"),
                        key=lambda i: i.job_id)
    sample = {i.job_id for i in rng.sample(equivalent, min(spot_checks, len(equivalent)))}
    for item in equivalent:
        m = item.mutations[0]
        if item.job_id in sample:
            if (item.job_id, "equivalent-spot-check") not in done:
                record({"job_id": item.job_id, "stage": "equivalent-spot-check"})
        elif (item.job_id, "carried-verdict") not in done:
            match = done[(item.job_id, "match")]
            record({"job_id": item.job_id, "stage": "carried-verdict", "module": str(m.module_path),
                    "operator": m.operator_name, "occurrence": m.occurrence, "line": m.start_pos[0],
                    "outcome": "survived", "from_job": match["from_job"], "failed": [], "seconds": 0.0,
                    "diff": mutant_diff(Path.cwd(), m)})
    print(f"{len(equivalent)} mutants judged equivalent: verdict carried, {len(sample)} run as spot checks",
          flush=True)


def resolve_verdicts(done: Dict[Any, Dict[str, Any]]) -> Dict[str, Dict[str, str]]:
    """verdicts.json, plus each matched mutant's verdict from whichever earlier round wrote it."""
    verdicts = load_verdicts()
    for (job, stage), rec in list(done.items()):
        # a mutant matched to one of a previous run keeps that one's verdict
        # unless it has its own
        if stage == "match" and job not in verdicts:
            for source in [rec["from_job"]] + list(rec.get("earlier_jobs", [])):
                if source in verdicts:
                    verdicts[job] = dict(verdicts[source], carried_from=source)
                    break
    return verdicts


def load_verdicts() -> Dict[str, Dict[str, str]]:
    """Hand-written judgements of survivors: {job_id: {"verdict": "equivalent"|"gap", "why": ...}}."""
    path = HERE / "verdicts.json"
    return json.loads(path.read_text()) if path.exists() else {}


def summarise(out: Path, commit: str, items: List[Any], annotation: List[Any], behavioural: List[Any],
              spot_items: List[Any], done: Dict[Any, Dict[str, Any]], multiplier: float, cap: float,
              full_cap: float) -> None:
    verdicts = resolve_verdicts(done)
    counts = {"killed": 0, "timeout": 0, "survived": 0, "incompetent": 0, "survived_area_only": 0, "carried": 0,
              "carried_verdict": 0}
    survivors = []
    equivalent_spot = {"run": 0, "survived": 0, "killed": []}  # carried equivalent verdicts re-run
    spot = {"run": 0, "still_killed": 0, "survived": []}  # carry-over spot checks
    run = 0
    for item in behavioural:
        area = done.get((item.job_id, "area"))
        carried = done.get((item.job_id, "carried"))
        if area is None and carried is not None:
            run += 1
            counts["carried"] += 1
            counts[carried["outcome"]] += 1
            continue
        verdict_only = done.get((item.job_id, "carried-verdict"))
        if verdict_only is not None:  # judged equivalent in an earlier round, not run
            run += 1
            counts["carried_verdict"] += 1
            counts["survived"] += 1
            survivors.append(verdict_only)
            continue
        if area is None:
            continue
        run += 1
        full = done.get((item.job_id, "full"))
        if carried is not None:
            spot["run"] += 1
            killed_now = area["outcome"] in ("killed", "timeout") or (full or {}).get("outcome") in ("killed", "timeout")
            spot["still_killed"] += int(killed_now)
            if not killed_now and (full is not None or area["outcome"] != "survived"):
                spot["survived"].append(item.job_id)
        if (item.job_id, "equivalent-spot-check") in done and (area["outcome"] != "survived" or full is not None):
            equivalent_spot["run"] += 1
            if area["outcome"] == "survived" and full["outcome"] == "survived":
                equivalent_spot["survived"] += 1
            else:
                equivalent_spot["killed"].append(item.job_id)
        if area["outcome"] in ("killed", "timeout", "incompetent"):
            counts[area["outcome"]] += 1
            continue
        if full is None:
            # survived its areas, never ran the whole suite (stopped by a
            # deadline): not judged, so not in any rate
            counts["survived_area_only"] += 1
            run -= 1
        elif full["outcome"] in ("killed", "timeout"):
            counts[full["outcome"]] += 1
        else:
            counts["survived"] += 1
            survivors.append(full)
    equivalent = [s for s in survivors if verdicts.get(s["job_id"], {}).get("verdict") == "equivalent"]
    killed = counts["killed"] + counts["timeout"]
    non_equivalent = run - len(equivalent) - counts["incompetent"]
    unit_killed = [s["job_id"] for s in survivors
                   if verdicts.get(s["job_id"], {}).get("verdict") != "equivalent"
                   and done.get((s["job_id"], "unit"), {}).get("outcome") in ("killed", "timeout")]
    unit_killed_equivalent = [s["job_id"] for s in survivors
                              if verdicts.get(s["job_id"], {}).get("verdict") == "equivalent"
                              and done.get((s["job_id"], "unit"), {}).get("outcome") in ("killed", "timeout")]
    unit_run = [s["job_id"] for s in survivors if (s["job_id"], "unit") in done]
    by_verdict: Dict[str, int] = {}
    for s_ in survivors:
        v = verdicts.get(s_["job_id"], {}).get("verdict", "unjudged")
        by_verdict[v] = by_verdict.get(v, 0) + 1
    spot_outcomes = {i.job_id: done.get((i.job_id, "annotation"), {}).get("outcome") for i in spot_items}
    summary = {
        "tool": "cosmic-ray", "commit": commit, "timeout_multiplier": multiplier,
        # records made before a resumed run's --update carry no commit
        "records_by_commit": {(c if c == "before-update" else c[:12]): n for c, n in sorted(Counter(
            r.get("commit", "before-update") for r in done.values() if r.get("stage") in ("area", "full", "unit")).items())},
        "per_mutant_cap_seconds": {"area": cap, "full": full_cap},
        "total_mutants": len(items),
        "annotation_mutants_equivalent_by_construction": len(annotation),
        "annotation_spot_checks": spot_outcomes,
        "behavioural_mutants": len(behavioural),
        "run": run, "counts": counts,
        "carry_over_spot_checks": spot,
        "equivalent_verdict_spot_checks": equivalent_spot,
        "not_run": len(behavioural) - run,
        "survivors_by_verdict": by_verdict,
        "survivors_equivalent_by_inspection": len(equivalent),
        "survivors_real_gaps": len(survivors) - len(equivalent),
        "kill_rate_non_equivalent": round(killed / non_equivalent, 4) if non_equivalent else None,
        "kill_rate_95ci_wilson": wilson(killed, non_equivalent),
        "kill_rate_raw_behavioural": round(killed / run, 4) if run else None,
        # Over the mutants that break the socketserver contract: without the
        # survivors judged to change only what the contract leaves open
        # (gap-extension: the reference's own promises); a judgement, see verdicts.json.
        "kill_rate_contract_breaking": (round(killed / (non_equivalent - by_verdict.get("gap-extension", 0)), 4)
                                        if non_equivalent > by_verdict.get("gap-extension", 0) else None),
        "unit_tests_stage": {"run": len(unit_run), "killed_non_equivalent": len(unit_killed),
                             "killed_judged_equivalent": len(unit_killed_equivalent)},
        "kill_rate_non_equivalent_with_unit_tests":
            round((killed + len(unit_killed)) / non_equivalent, 4) if non_equivalent else None,
        "seconds": round(sum(r.get("seconds", 0) for r in done.values()), 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    lines = ["# Surviving mutants (%d)\n" % len(survivors)]
    for s in sorted(survivors, key=lambda r: (r["module"], r["line"])):
        v = verdicts.get(s["job_id"], {})
        unit = done.get((s["job_id"], "unit"), {}).get("outcome", "not run")
        lines.append("## %s:%d %s (job %s, stage %s, unit tests: %s)\n\nverdict: %s - %s\n\n```diff\n%s```\n" % (
            s["module"], s["line"], s["operator"], s["job_id"][:8], s["stage"], unit, v.get("verdict", "unjudged"),
            v.get("why", ""), "\n".join(row for row in s["diff"].splitlines() if row.startswith(("+", "-", "@@"))) + "\n"))
    (out / "survivors.md").write_text("\n".join(lines))
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
