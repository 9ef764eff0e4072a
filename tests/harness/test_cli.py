"""ssconform CLI: usage errors exit 2, JSON outputs, bounded runs, end-to-end runs."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import jsonschema
import pytest

from harness.cli import main as cli
from harness.cli import suite_run
from harness.core import capabilities, timeouts
from harness.implementations import resolve
from harness.processes import supervisor
from harness.results import expectations, records
from harness.results.fingerprint import fingerprint

CHECKS_DIR = Path(suite_run.CONFORMANCE_DIR) / "checks"
HAS_CHECKS = any(CHECKS_DIR.glob("test_*.py"))
needs_checks = pytest.mark.skipif(not HAS_CHECKS, reason="conformance/checks has no checks yet")


@pytest.fixture(autouse=True)
def _restore_multiplier(monkeypatch):
    # `run --timeout-multiplier` sets and exports the multiplier; undo it after each test.
    monkeypatch.setattr(timeouts, "_multiplier", None)
    monkeypatch.setenv(timeouts.ENV_VAR, os.environ.get(timeouts.ENV_VAR, "1.0"))


def _write_record(directory, impl="stdlib", outcomes=None, os_name=None, python=None, repeat=None):
    loaded = resolve("stdlib")
    description = dict(loaded.describe(), name=impl, spec=impl)
    fp = fingerprint(loaded, env={})
    if os_name:
        fp["os"] = os_name
    if python:
        fp["python_version"] = python
    record = records.new_record(description, fp, {"repeat_index": repeat})
    checks = [records.check_entry(id=cid, level="REQUIRED", outcome=outcome, title=cid)
              for cid, outcome in (outcomes or {"TCP-001": "PASS"}).items()]
    records.finish_record(record, checks)
    return records.write_record(record, directory)


# ---------------------------------------------------------------- usage ------


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["report"], ["diff"], ["list"], ["fingerprint"], ["expectations"],
     ["expectations", "update"]],
)
def test_help_on_every_command(command, capsys):
    assert cli.main(command + ["--help"]) == 0
    assert "usage: ssconform" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["run", "--repeat", "x"]) == 2
    assert "invalid int value" in capsys.readouterr().err


def test_unknown_impl_exits_2_before_touching_out(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "--impl", "no_such_impl_xyz", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot load implementation 'no_such_impl_xyz'" in err
    assert "available adapters:" in err and "stdlib" in err
    assert not out.exists()


def test_unwritable_out_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    assert cli.main(["run", "--impl", "stdlib", "--out", str(blocker / "sub")]) == 2
    assert "cannot write to output directory" in capsys.readouterr().err


def test_malformed_expectations_exit_2_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('# x\n[[expectation]]\nid = "TCP-001"\noutcome = "NOPE"\nreason = "r"\n', encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["run", "--impl", "stdlib", "--out", str(out), "--expectations", str(bad)]) == 2
    assert f"{bad}:4: unknown outcome 'NOPE'" in capsys.readouterr().err
    assert list(out.iterdir()) == []  # no pytest process was started


def test_expectations_for_an_impl_not_in_the_run(tmp_path, capsys):
    argv = ["run", "--impl", "stdlib", "--out", str(tmp_path), "--expectations", "gevent=x.toml"]
    assert cli.main(argv) == 2
    assert "no implementation 'gevent' in this run" in capsys.readouterr().err


def test_expectations_per_impl_and_default(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text(expectations.HEADER, encoding="utf-8")
    chosen = suite_run.expectation_files([f"reference={mine}"], ["stdlib", "reference"])
    assert chosen["reference"] == mine.resolve()
    if suite_run.CHECKOUT is not None:
        assert chosen["stdlib"] == suite_run.CHECKOUT / "expectations" / "stdlib.toml"
    everyone = suite_run.expectation_files([str(mine)], ["stdlib", "reference"])
    assert set(everyone.values()) == {mine.resolve()}


def test_bad_repeat_and_multiplier_exit_2(tmp_path, capsys):
    assert cli.main(["run", "--impl", "stdlib", "--out", str(tmp_path), "--repeat", "0"]) == 2
    assert cli.main(["run", "--impl", "stdlib", "--out", str(tmp_path), "--timeout-multiplier", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--repeat must be at least 1" in err and "must be > 0" in err


# ------------------------------------------------------------- fingerprint --


def test_fingerprint_prints_valid_json(capsys):
    assert cli.main(["fingerprint"]) == 0
    data = json.loads(capsys.readouterr().out)
    schema = {"$ref": "#/$defs/fingerprint", "$defs": records.SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(schema).validate(data)


def test_fingerprint_with_impl(capsys):
    assert cli.main(["fingerprint", "--impl", "stdlib"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["implementation"]["name"] == "stdlib"
    assert data["fingerprint"]["impl_extra"] == {}
    assert cli.main(["fingerprint", "--impl", "no_such_impl_xyz"]) == 2


# ----------------------------------------------------- report / expectations --


def test_report_with_a_broken_record_exits_2_and_keeps_the_old_report(tmp_path, capsys):
    good = _write_record(tmp_path / "records")
    broken = tmp_path / "records" / "broken.json"
    broken.write_text(good.read_text(encoding="utf-8")[:100], encoding="utf-8")
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old report", encoding="utf-8")
    assert cli.main(["report", str(tmp_path / "records"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "truncated" in err
    assert (out / "report.md").read_text(encoding="utf-8") == "old report"


def test_report_renders(tmp_path, capsys):
    pytest.importorskip("harness.report")
    _write_record(tmp_path / "records")
    assert cli.main(["report", str(tmp_path / "records"), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.md").is_file()


def test_diff_missing_input_exits_2(tmp_path, capsys):
    assert cli.main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2


def test_diff_of_two_records(tmp_path, capsys):
    pytest.importorskip("harness.report")
    a = _write_record(tmp_path / "a", outcomes={"TCP-001": "PASS"})
    b = _write_record(tmp_path / "b", outcomes={"TCP-001": "FAIL"})
    assert cli.main(["diff", str(a), str(b)]) == 0
    assert "TCP-001" in capsys.readouterr().out
    assert cli.main(["diff", str(a), str(b), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["new_failures"] == 1


def test_expectations_update_writes_and_keeps_reasons(tmp_path, capsys):
    recs = tmp_path / "records"
    _write_record(recs, impl="gevent", outcomes={"TCP-001": "FAIL", "TCP-002": "PASS"}, os_name="linux")
    _write_record(recs, impl="gevent", outcomes={"TCP-001": "PASS", "TCP-002": "PASS"}, os_name="windows")
    _write_record(recs, impl="other", outcomes={"TCP-003": "FAIL"})
    target = tmp_path / "gevent.toml"
    assert cli.main(["expectations", "update", str(recs), "--out", str(target)]) == 2
    assert "several implementations" in capsys.readouterr().err
    assert cli.main(["expectations", "update", str(recs), "--impl", "gevent", "--out", str(target)]) == 0
    loaded = expectations.load(target)
    assert [(e.id, e.outcome, e.conditions, e.reason) for e in loaded] == [
        ("TCP-001", "FAIL", {"os": "linux"}, expectations.TODO_REASON)
    ]
    target.write_text(target.read_text(encoding="utf-8").replace(expectations.TODO_REASON, "known bug"),
                      encoding="utf-8")
    assert cli.main(["expectations", "update", str(recs), "--impl", "gevent", "--out", str(target)]) == 0
    assert [e.reason for e in expectations.load(target)] == ["known bug"]
    assert "1 expectations, 0 need a reason" in capsys.readouterr().err


# --------------------------------------------------------- pytest processes --


def test_pytest_args_load_the_plugin_exactly_once():
    registered = suite_run.pytest_args("stdlib", Path("out"), plugin_registered=True)
    assert "conformance.plugin" not in registered
    assert registered[:4] == ["--pyargs", "conformance.checks", "--impl", "stdlib"]
    assert "-c" in registered and "--rootdir" in registered
    unregistered = suite_run.pytest_args("stdlib", Path("out"), plugin_registered=False)
    assert unregistered.count("conformance.plugin") == 1
    info = {"implementation": {"name": "gevent"}, "bootstrap": "harness.implementations.greenlets:patch"}
    assert suite_run.command_for("py", info, ["-q"]) == ["py", "-m", "harness.implementations.launch", "gevent", "--", "-q"]
    info["bootstrap"] = None
    assert suite_run.command_for("py", info, ["-q"]) == ["py", "-m", "pytest", "-q"]


def _alive(pid: int) -> bool:
    from harness.processes.supervisor import process_running

    return process_running(pid)


@pytest.mark.skipif(not capabilities.caps().signals, reason="needs POSIX process groups")
def run_process(command, env, cwd, budget):
    """``command`` through the suite run's supervision, with no record to wait for:
    ``(returncode, timed_out)``."""
    child = supervisor.start(command, what="the pytest process", env=env, cwd=cwd)
    run = suite_run.Supervised(child, budget, None)
    suite_run.supervise(run, threading.Event(), {})
    return child.stopped.get("returncode"), run.timed_out


def test_run_process_kills_the_whole_group_on_expiry(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, threading;"
        "g = subprocess.Popen([sys.executable, '-c', 'import threading; threading.Event().wait()']);"
        f"open({str(pid_file)!r}, 'w').write(str(g.pid));"
        "threading.Event().wait()"
    )
    # A short bound first; a longer one only if a loaded machine did not even
    # get the grandchild started in time (the pid file is the proof it did).
    for budget in (timeouts.absence() * 4, timeouts.short()):
        deadline = timeouts.Deadline(budget + timeouts.short(), "run_process")
        returncode, timed_out = run_process([sys.executable, "-c", code], dict(os.environ),
                                                str(tmp_path), budget)
        assert timed_out and returncode is not None and returncode != 0
        assert not deadline.expired()
        if pid_file.exists() and pid_file.read_text():
            break
    grandchild = int(pid_file.read_text())
    try:
        timeouts.wait_until(lambda: not _alive(grandchild), timeouts.short(), "the grandchild to die")
    finally:
        if _alive(grandchild):  # the test failed: do not leave it running
            os.kill(grandchild, signal.SIGKILL)


def test_run_process_normal_exit(tmp_path):
    code = "raise SystemExit(3)"
    assert run_process([sys.executable, "-c", code], dict(os.environ), str(tmp_path),
                           timeouts.short()) == (3, False)


def _writer_code(body: str) -> str:
    """Python code for a fake pytest process that writes records with _write_record."""
    root = str(Path(__file__).resolve().parents[2])
    return f"import os, sys; sys.path.insert(0, {root!r}); from tests.harness.test_cli import _write_record; {body}"


def _fake_command(code):
    def command_for(python, info, args):
        return [sys.executable, "-c", code]

    return command_for


def test_killed_run_writes_an_aborted_record_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(suite_run, "command_for", _fake_command("import threading; threading.Event().wait()"))
    argv = ["run", "--impl", "stdlib", "--out", str(tmp_path), "--no-report", "--run-bound", "1.2"]
    assert cli.main(argv) == 1
    [(path, record)] = records.load_records(tmp_path)
    assert record["aborted"].startswith("pytest process killed after 1.2s")
    assert record["checks"] == [] and record["implementation"]["name"] == "stdlib"
    assert "ABORTED" in capsys.readouterr().err


def test_default_run_bound_scales_with_the_timeout_multiplier(tmp_path, monkeypatch):
    # 1800 s * 0.001 = 1.8 s: the multiplier stretches (or shrinks) the whole run's bound too
    monkeypatch.setattr(suite_run, "command_for", _fake_command("import threading; threading.Event().wait()"))
    argv = ["run", "--impl", "stdlib", "--out", str(tmp_path), "--no-report", "--timeout-multiplier", "0.001"]
    assert cli.main(argv) == 1
    [(path, record)] = records.load_records(tmp_path)
    assert record["aborted"].startswith(f"pytest process killed after {suite_run.RUN_BOUND_BASE * 0.001:g}s")
    timeouts.set_multiplier(3, export=False)
    assert suite_run.run_bound() == suite_run.RUN_BOUND_BASE * 3
    assert suite_run.run_bound(7.5) == 7.5  # --run-bound is taken as given


def test_run_bound_is_documented_and_checked(tmp_path, capsys):
    assert cli.main(["run", "--help"]) == 0
    assert "--run-bound SECONDS" in capsys.readouterr().out
    assert cli.main(["run", "--impl", "stdlib", "--out", str(tmp_path), "--run-bound", "0"]) == 2
    assert "--run-bound must be a positive" in capsys.readouterr().err


def test_list_of_a_patching_adapter_goes_through_launch(monkeypatch, capsys):
    """`list --impl gevent` collects in a process started like `run` starts it (harness.implementations.launch)."""
    from harness.implementations import launch

    monkeypatch.setattr(launch, "describe", lambda spec: {
        "spec": spec, "error": None, "bootstrap": "harness.implementations.greenlets:patch_gevent",
        "implementation": {"name": spec}, "fingerprint": {}})
    real = suite_run.command_for
    seen = []
    row = {"id": "TCP-001", "variant": "", "level": "REQUIRED", "title": "t", "requires": []}

    def command_for(python, info, args):
        seen.append((info["implementation"]["name"], info["bootstrap"]))
        target = args[args.index("--ssconform-list") + 1]
        return [sys.executable, "-c", f"open({target!r}, 'w').write({json.dumps(json.dumps(row))} + '\\n')"]

    monkeypatch.setattr(suite_run, "command_for", command_for)
    assert cli.main(["list", "--impl", "gevent"]) == 0
    assert seen == [("gevent", "harness.implementations.greenlets:patch_gevent")]
    assert capsys.readouterr().out.startswith("TCP-001")
    assert real(sys.executable, {"implementation": {"name": "gevent"}, "bootstrap": "m:f"}, ["-q"])[1:5] == \
        ["-m", "harness.implementations.launch", "gevent", "--"]


def test_crashed_run_writes_an_aborted_record(tmp_path, monkeypatch):
    monkeypatch.setattr(suite_run, "command_for", _fake_command("raise SystemExit(3)"))
    assert cli.main(["run", "--impl", "stdlib", "--out", str(tmp_path), "--no-report"]) == 1
    [(path, record)] = records.load_records(tmp_path)
    assert record["aborted"] == "pytest exited with status 3 without writing a record"


def test_pytest_usage_error_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(suite_run, "command_for", _fake_command("raise SystemExit(4)"))
    assert cli.main(["run", "--impl", "stdlib", "--out", str(tmp_path), "--no-report"]) == 2
    assert "pytest rejected the arguments" in capsys.readouterr().err


def test_status_comes_from_records_not_pytest(tmp_path, monkeypatch):
    """A pytest process that exits 0 but wrote a record with a FAIL makes the run fail."""
    fail_dir = tmp_path / "fail"
    code = _writer_code(f"_write_record({str(fail_dir)!r}, outcomes={{'TCP-001': 'FAIL'}})")
    monkeypatch.setattr(suite_run, "command_for", _fake_command(code))
    assert cli.main(["run", "--impl", "stdlib", "--out", str(fail_dir), "--no-report"]) == 1


def test_repeat_reports_varying_outcomes_as_flaky(tmp_path, monkeypatch, capsys):
    """Outcomes PASS then UNSUPPORTED are each fine, but varying makes the run FLAKY (exit 1)."""
    code = _writer_code(
        "i = int(os.environ['SSCONFORM_REPEAT_INDEX']);"
        f"_write_record({str(tmp_path)!r}, outcomes={{'TCP-001': ('PASS', 'UNSUPPORTED')[i], 'TCP-002': 'PASS'}},"
        " repeat=i)"
    )
    monkeypatch.setattr(suite_run, "command_for", _fake_command(code))
    assert cli.main(["run", "--impl", "stdlib", "--out", str(tmp_path), "--repeat", "2", "--no-report"]) == 1
    err = capsys.readouterr().err
    flaky = [line for line in err.splitlines() if line.strip().startswith("FLAKY ")]
    assert len(flaky) == 1 and "TCP-001" in flaky[0] and "PASS UNSUPPORTED" in flaky[0]


# ------------------------------------------------------------------ launch ----


def test_launch_bootstraps_before_importing_pytest(tmp_path, monkeypatch):
    from harness import implementations
    from harness.implementations import launch
    from harness.implementations.base import Implementation

    calls = []
    (tmp_path / "ssc_fake_boot.py").write_text("CALLS = []\ndef patch():\n    CALLS.append('bootstrap')\n",
                                               encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import ssc_fake_boot

    ssc_fake_boot.CALLS = calls
    fake = Implementation(name="fake", description="", load=lambda: None, bootstrap="ssc_fake_boot:patch")
    monkeypatch.setattr(implementations, "get_adapter", lambda name: fake)

    class FakePytest:
        @staticmethod
        def main(args):
            calls.append(("pytest.main", args))
            return 0

    real_import = launch.importlib.import_module

    def import_module(name, *rest):
        if name == "pytest":
            calls.append("import pytest")
            return FakePytest
        return real_import(name, *rest)

    monkeypatch.setattr(launch.importlib, "import_module", import_module)
    assert launch.main(["fake", "--", "-q", "--impl", "fake"]) == 0
    assert calls == ["bootstrap", "import pytest", ("pytest.main", ["-q", "--impl", "fake"])]


def test_launch_usage_and_describe(capsys):
    from harness.implementations import launch

    assert launch.main([]) == 2
    assert launch.main(["stdlib", "-q"]) == 2  # no "--"
    assert "usage: python -m harness.implementations.launch" in capsys.readouterr().err
    assert launch.main(["--describe", "stdlib", "no_such_impl_xyz"]) == 0
    data = json.loads(capsys.readouterr().out)
    ok, bad = data["implementations"]
    assert ok["implementation"]["name"] == "stdlib" and ok["error"] is None and ok["bootstrap"] is None
    assert bad["implementation"] is None and "cannot load implementation" in bad["error"]
    assert isinstance(data["plugin_registered"], bool)


def test_plugin_autoload_disabled_counts_as_unregistered(monkeypatch):
    from harness.implementations import launch

    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert launch.plugin_registered() is False


# ------------------------------------------------------------- end to end ----


@pytest.fixture(scope="module")
def one_check():
    """The test function name of one REQUIRED check, for a tiny -k selection."""
    if not HAS_CHECKS:
        pytest.skip("conformance/checks has no checks yet")
    rows = []
    import subprocess

    listing = subprocess.run([sys.executable, "-m", "harness", "list", "--json"], capture_output=True,
                             text=True, timeout=timeouts.long(), check=False, cwd=str(suite_run.CHECKOUT or "."))
    assert listing.returncode == 0, listing.stderr
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    required = [r for r in rows if r["level"] == "REQUIRED" and not r["requires"] and not r["variant"]]
    assert required, "the suite has no plain REQUIRED check"
    return required[0]


@needs_checks
def test_list_prints_ids_levels_titles(one_check, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(one_check["id"] + " "))
    assert "REQUIRED" in line and one_check["title"] in line


@needs_checks
def test_run_end_to_end(one_check, tmp_path, capfd):
    name = one_check["nodeid"].split("::")[-1]
    out = tmp_path / "out"
    assert cli.main(["run", "--impl", "stdlib", "--out", str(out), "-k", name]) == 0
    found = records.load_records(out)
    assert len(found) == 1
    record = found[0][1]
    assert [(c["id"], c["outcome"]) for c in record["checks"]] == [(one_check["id"], "PASS")]
    assert record["options"]["selection"] == name
    captured = capfd.readouterr()
    assert "[1/1] stdlib" in captured.err and "ssconform stdlib: 1 PASS" in captured.out
    assert (out / "report.md").is_file()


@needs_checks
def test_run_stale_expectation_is_xpass_and_exits_1(one_check, tmp_path, capfd):
    name = one_check["nodeid"].split("::")[-1]
    stale = tmp_path / "stale.toml"
    stale.write_text(f'[[expectation]]\nid = "{one_check["id"]}"\noutcome = "FAIL"\nreason = "stale"\n',
                     encoding="utf-8")
    out = tmp_path / "out"
    argv = ["run", "--impl", "stdlib", "--out", str(out), "-k", name, "--expectations", str(stale),
            "--no-report"]
    assert cli.main(argv) == 1
    [(path, record)] = records.load_records(out)
    [check] = record["checks"]
    assert (check["outcome"], check["expected_outcome"], check["expectation_reason"]) == ("XPASS", "FAIL", "stale")
    assert "XPASS" in capfd.readouterr().err


@needs_checks
def test_run_repeat_without_autoloaded_plugin(one_check, tmp_path, monkeypatch, capfd):
    """--repeat 2, with pytest plugin autoloading off: the CLI adds -p conformance.plugin itself."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    name = one_check["nodeid"].split("::")[-1]
    out = tmp_path / "out"
    assert cli.main(["run", "--impl", "reference", "--out", str(out), "-k", name, "--repeat", "2",
                     "--no-report"]) == 0
    found = [record for _, record in records.load_records(out)]
    assert sorted(r["options"]["repeat_index"] for r in found) == [0, 1]
    err = capfd.readouterr().err
    assert "-p conformance.plugin" in err and "no outcome varied across 2 repeats" in err


# ------------------------------------------------------------------ parallel runs --


def test_the_implementations_of_a_round_run_at_once_with_their_output_prefixed(tmp_path, monkeypatch, capsys):
    """Each fake pytest process waits (bounded) until the other one has started: run one
    after the other, the first would wait in vain and the run would be aborted."""
    out = tmp_path / "out"
    marks = tmp_path / "marks"
    marks.mkdir()

    def command_for(python, info, args):
        name = info["implementation"]["name"]
        other = "reference" if name == "stdlib" else "stdlib"
        body = (f"open(os.path.join({str(marks)!r}, {name!r}), 'w').close(); "
                "from harness.core import timeouts; "
                f"timeouts.wait_until(lambda: os.path.exists(os.path.join({str(marks)!r}, {other!r})), "
                f"timeouts.medium(), 'the other run'); print('hello from {name}'); "
                f"_write_record({str(out)!r}, impl={name!r})")
        return [sys.executable, "-c", _writer_code(body)]

    monkeypatch.setattr(suite_run, "command_for", command_for)
    assert cli.main(["run", "--out", str(out), "--no-report"]) == 0
    names = sorted(r["implementation"]["name"] for _, r in records.load_records(out))
    assert names == ["reference", "stdlib"]
    stdout = capsys.readouterr().out
    assert "[stdlib] hello from stdlib" in stdout and "[reference] hello from reference" in stdout


def test_default_workers_and_a_users_n_wins(tmp_path, monkeypatch):
    seen = {}

    def command_for(python, info, args):
        name = info["implementation"]["name"]
        seen[name] = args[args.index("-n") + 1] if "-n" in args else None
        return [sys.executable, "-c", _writer_code(f"_write_record({str(tmp_path / 'out')!r}, impl={name!r})")]

    monkeypatch.setattr(suite_run, "command_for", command_for)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    assert cli.main(["run", "--out", str(tmp_path / "out"), "--no-report"]) == 0
    assert seen == {"stdlib": suite_run.DEFAULT_WORKERS, "reference": suite_run.DEFAULT_WORKERS}
    assert cli.main(["run", "--out", str(tmp_path / "out"), "--no-report", "-n", "0", "--jobs", "1"]) == 0
    assert seen == {"stdlib": "0", "reference": "0"}
    # an adapter that patches the process first gets no default workers (xdist bypasses harness.implementations.launch)
    real = suite_run.resolve_all
    monkeypatch.setattr(suite_run, "resolve_all", lambda specs, python: [
        dict(info, bootstrap="harness.implementations.greenlets:patch") for info in real(specs, python)])
    assert cli.main(["run", "--impl", "stdlib", "--out", str(tmp_path / "out"), "--no-report"]) == 0
    assert seen["stdlib"] is None
