"""``ssconform``: run the suite, render and compare reports, manage expectations.

Theory of operation
-------------------
The CLI parses arguments and dispatches; the work lives in the modules it
calls: ``run`` is :func:`harness.cli.suite_run.run_suite` (plan, bound, records,
verdict, and the pytest processes through :mod:`harness.processes`), the
other commands call ``records``, ``fingerprint``, ``expectations``,
``report`` and ``bench``.

Exit status: 0 nothing unexpected failed, 1 an unexpected outcome or an
aborted run, 2 for usage and input errors -- which is also what
:class:`~harness.cli.suite_run.UsageProblem`, :class:`~harness.results.records.RecordError`,
:class:`~harness.results.expectations.ExpectationError` and
:class:`~harness.implementations.ImplementationError` map to everywhere --
and ``128 + N`` when signal N (Ctrl-C, SIGTERM, SIGHUP) stopped a run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import __version__, shapes
from harness.cli import suite_run
from harness.cli.suite_run import (
    DEFAULT_IMPLS,
    DEFAULT_OUT,
    EXIT_BAD,
    EXIT_OK,
    EXIT_USAGE,
    UsageProblem,
)
from harness.core import timeouts
from harness.implementations import ImplementationError
from harness.processes import supervisor
from harness.results import records
from harness.results.expectations import ExpectationError

_err = suite_run.err


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
                              "implementation (and per repeat; the implementations of a repeat at "
                              "the same time), then render the report.")
    run.add_argument("--impl", action="append", metavar="IMPL",
                     help="adapter name, dotted module or .py path (repeatable; default: "
                     + " and ".join(DEFAULT_IMPLS) + ")")
    run.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                     help=f"directory for records and the report (default: ./{DEFAULT_OUT})")
    run.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k selection")
    run.add_argument("-n", dest="workers", metavar="N",
                     help=f"pytest-xdist workers per implementation (e.g. 0, 2, auto; default "
                     f"{suite_run.DEFAULT_WORKERS})")
    run.add_argument("--jobs", type=int, metavar="N",
                     help="pytest processes at once (default: every implementation of a repeat; "
                     "1: one after the other, output straight to the terminal)")
    run.add_argument("--expectations", action="append", metavar="[IMPL=]FILE",
                     help="expectations file for every implementation, or IMPL=FILE for one "
                     "(repeatable; default: expectations/<impl>.toml of the checkout if present)")
    run.add_argument("--repeat", type=int, default=1, metavar="N",
                     help="run the suite N times per implementation and report outcomes that vary "
                     "as FLAKY")
    run.add_argument("--timeout-multiplier", metavar="X",
                     help="multiply every timeout of the kit (slow machines)")
    run.add_argument("--run-bound", type=float, metavar="SECONDS",
                     help="stop the pytest processes that have not ended after SECONDS and mark their "
                     f"records aborted (default: {suite_run.RUN_BOUND_BASE:g} s times the timeout "
                     "multiplier)")
    run.add_argument("--python", metavar="EXE", default=sys.executable,
                     help="interpreter that runs the suite (default: this one)")
    run.add_argument("--subject-python", metavar="EXE",
                     help="run the implementation inside EXE (CPython 2.7, 3.6+, PyPy), driven by the "
                     "subject agent (docs/subject-protocol.md); the suite still runs on --python")
    run.add_argument("--no-report", action="store_true", help="only write records")
    run.add_argument("--os-shape", choices=shapes.available(), metavar="OS",
                     help="reshape every child interpreter as OS (windows, macos) is documented to differ; "
                          "records say simulated")
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
    try:
        return int(args.handler(args))
    except (UsageProblem, records.RecordError, ExpectationError, ImplementationError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except suite_run.StopRequested as exc:
        _err(f"interrupted by {exc.name}")
        return 128 + exc.signum
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # `ssconform list | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return EXIT_BAD


# ------------------------------------------------------------------- run --


def cmd_run(args: argparse.Namespace) -> int:
    shape = args.os_shape or os.environ.get(shapes.ENV_VAR, "").strip()
    if shape:  # every child starts shaped (harness.shapes)
        try:
            os.environ.update(shapes.env_for(shape))
        except shapes.ShapeError as exc:
            raise UsageProblem(str(exc)) from None
    impls = args.impl or ()
    if args.subject_python:  # every pytest process drives this interpreter (harness.subject)
        impls = impls or ("stdlib",)
        os.environ["SSCONFORM_SUBJECT_PYTHON"] = _probe_subject(args.subject_python, impls)
    return suite_run.run_suite(impls, args.out, keyword=args.keyword, workers=args.workers,
                               expectations=args.expectations, repeat=args.repeat,
                               timeout_multiplier=args.timeout_multiplier, run_bound_seconds=args.run_bound,
                               python=args.python, report=not args.no_report, jobs=args.jobs)


def _probe_subject(python: str, impls: Sequence[str]) -> str:
    """The subject interpreter's path, once an agent in it said hello in this kit's
    protocol and loaded every implementation; else a usage error (exit 2) saying why."""
    from harness.subject.client import interpreter_words
    from harness.subject.session import open_subject

    try:
        words = interpreter_words(python)
    except ValueError as exc:  # shlex: an unclosed quote
        raise UsageProblem(f"--subject-python {python}: {exc}") from None
    found = shutil.which(words[0]) if words else None
    if found is None:
        raise UsageProblem(f"--subject-python {python}: no such interpreter")
    # a bare path is resolved on PATH; words with flags stay as given (quoted again for the children)
    command = found if len(words) == 1 else shlex.join([found, *words[1:]])
    for impl in impls:
        session, _ = open_subject(command, impl)  # ImplementationError: exit 2 with its message
        session.close()
    return command


# ---------------------------------------------------------- other commands --


def _record_paths(items: Sequence[str]) -> List[Path]:
    return [path for path, _ in records.load_records(items)]


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.build import render_report

    paths = _record_paths(args.records)  # RecordError names the file; nothing written
    if not paths:
        raise UsageProblem(f"no run records in {' '.join(args.records)}")
    out = suite_run.writable_dir(args.out)
    suite_run.print_written(render_report(paths, out))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from harness.report.diff import diff, format_diff

    for path in (args.a, args.b):
        if not os.path.exists(path):
            raise UsageProblem(f"{path}: no such file or directory")
    result = diff(args.a, args.b)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(format_diff(result))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    spec = suite_run.absolute_spec(args.impl) if args.impl else None
    infos = suite_run.resolve_all([spec], args.python) if spec else None
    registered = infos[0]["plugin_registered"] if infos else suite_run.plugin_registered(args.python)
    with tempfile.TemporaryDirectory(prefix="ssconform-list-") as scratch:
        listing = Path(scratch) / "checks.jsonl"
        pargs = suite_run.pytest_args(spec, None, registered,
                                      extra=["--collect-only", "--ssconform-list", str(listing)])
        # Through harness.implementations.launch like `run`: gevent/eventlet collect under the patch.
        command = suite_run.command_for(args.python, infos[0] if infos else None, pargs)
        done = supervisor.run_captured(command, what="collecting the suite", budget=timeouts.long())
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


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from harness.results.fingerprint import fingerprint

    if args.impl:
        from harness.implementations import resolve

        impl = resolve(args.impl)
        data: Dict[str, Any] = {"implementation": impl.describe(), "fingerprint": fingerprint(impl)}
    else:
        data = fingerprint()
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_expectations_update(args: argparse.Namespace) -> int:
    from harness.results import expectations

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
    from harness.bench import runner as bench
    from harness.implementations import resolve

    if args.timeout_multiplier:
        try:
            timeouts.set_multiplier(args.timeout_multiplier)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
    if args.rounds is not None and not 1 <= args.rounds <= 100:
        raise UsageProblem(f"--rounds must be 1..100, not {args.rounds}")
    specs = [suite_run.absolute_spec(args.impl), suite_run.absolute_spec(args.against)]
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
