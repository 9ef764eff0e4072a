"""Bad input end to end: one clear message, exit status 2, nothing already written touched.

Theory of operation
-------------------
A real ``ssconform run`` (a few API checks of stdlib, seconds) leaves an
output directory with a record and the three report files.  Each case copies
it, hashes every file (:func:`reliability_support.tree`), feeds the CLI one
bad input -- a truncated, non-JSON, wrong-schema, future-version or
duplicated record; a malformed expectations file; an unknown ``--impl``; an
output directory that cannot be written even by root -- and asserts:

* exit status 2 and no traceback;
* exactly one ``ssconform:`` message on stderr, naming the offending file
  (and ``file:line`` for TOML);
* the output directory is byte-for-byte what it was (no report re-rendered,
  no record added, removed or rewritten, no temporary file left).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import reliability_support as rs

from harness.core import timeouts

pytestmark = pytest.mark.skipif(not rs.proc_environ_readable(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory):
    """An output directory as a real run leaves it: one record plus report.md/html/json."""
    out = tmp_path_factory.mktemp("previous") / "out"
    run = rs.ssconform(["run", "--impl", "stdlib", "--out", str(out), "-k", "test_api"], timeouts.long() * 2)
    rs.cleanup(run)
    assert run.returncode == 0, run.stderr[-3000:]
    assert {"report.md", "report.html", "report.json"} <= {p.name for p in out.iterdir()}
    return out


@pytest.fixture
def out(previous_run, tmp_path):
    target = tmp_path / "out"
    shutil.copytree(previous_run, target)
    return target


def _record_file(out: Path) -> Path:
    return next(p for p in out.glob("*.json") if p.name != "report.json")


def _assert_clean_refusal(run: rs.Run, names: str, before: dict, out: Path) -> str:
    rs.cleanup(run)
    err = run.stderr
    assert run.returncode == 2, f"exit {run.returncode}\n{err[-3000:]}"
    assert "Traceback" not in err, err
    assert err.count("ssconform:") == 1, f"not one message:\n{err}"
    assert names in err, f"message does not name {names}:\n{err}"
    assert rs.tree(out) == before, "the existing output directory was changed"
    return err


def _bad_record_cases(record_text: str):
    record = json.loads(record_text)
    future = dict(record, schema_version=99)
    wrong = dict(record)
    wrong["checks"] = [dict(record["checks"][0], outcome="MAYBE")]
    return {
        "truncated": (record_text[: len(record_text) // 2], "truncated"),
        "not-json": ("<html>this is not a record</html>\n", "not valid JSON"),
        "wrong-schema": (json.dumps(wrong), "MAYBE"),
        "future-version": (json.dumps(future), "newer kit"),
    }


@pytest.mark.parametrize("case", ["truncated", "not-json", "wrong-schema", "future-version"])
def test_report_refuses_a_bad_record_and_keeps_the_old_report(out, tmp_path, case):
    text, why = _bad_record_cases(_record_file(out).read_text(encoding="utf-8"))[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(_record_file(out), inputs / "good.json")
    bad = inputs / f"{case}.json"
    bad.write_text(text, encoding="utf-8")
    before = rs.tree(out)
    run = rs.ssconform(["report", str(inputs), "--out", str(out)], timeouts.medium())
    err = _assert_clean_refusal(run, str(bad), before, out)
    assert why in err


def test_report_refuses_a_duplicated_record(out, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(_record_file(out), inputs / "a.json")
    shutil.copy(_record_file(out), inputs / "b.json")  # the same run twice
    before = rs.tree(out)
    run = rs.ssconform(["report", str(inputs), "--out", str(out)], timeouts.medium())
    err = _assert_clean_refusal(run, str(inputs / "b.json"), before, out)
    assert str(inputs / "a.json") in err, "the clash should name both files"


@pytest.mark.parametrize("case", ["truncated", "future-version"])
def test_diff_and_expectations_update_refuse_a_bad_record(out, tmp_path, case):
    text, _why = _bad_record_cases(_record_file(out).read_text(encoding="utf-8"))[case]
    bad = tmp_path / f"{case}.json"
    bad.write_text(text, encoding="utf-8")
    before = rs.tree(out)
    run = rs.ssconform(["diff", str(_record_file(out)), str(bad)], timeouts.medium())
    _assert_clean_refusal(run, str(bad), before, out)
    toml = out / "stdlib.toml"
    run = rs.ssconform(["expectations", "update", str(bad), "--out", str(toml)], timeouts.medium())
    _assert_clean_refusal(run, str(bad), before, out)
    assert not toml.exists()


def test_run_refuses_malformed_expectations_with_file_and_line(out, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[expectation]]\nid = "API-001"\noutcome = "FAIL"\nreason = "x"\n\n'
                   '[[expectation]]\nid = "API-002"\noutcome = "SOMETIMES"\nreason = "y"\n', encoding="utf-8")
    before = rs.tree(out)
    run = rs.ssconform(["run", "--impl", "stdlib", "--out", str(out), "--expectations", str(bad), "-k", "test_api"],
                       timeouts.medium())
    err = _assert_clean_refusal(run, f"{bad}:", before, out)
    line = err.split(f"{bad}:", 1)[1].split(":", 1)[0]
    assert line == "8", f"expected line 8 (the bad outcome), got {line!r}:\n{err}"


def test_run_refuses_toml_syntax_errors_with_file_and_line(out, tmp_path):
    bad = tmp_path / "syntax.toml"
    bad.write_text('[[expectation]]\nid = "API-001"\noutcome = FAIL\n', encoding="utf-8")
    before = rs.tree(out)
    run = rs.ssconform(["run", "--out", str(out), "--expectations", str(bad)], timeouts.medium())
    _assert_clean_refusal(run, f"{bad}:3", before, out)


def test_run_refuses_an_unknown_impl(out, tmp_path):
    before = rs.tree(out)
    missing = tmp_path / "no_such_impl.py"
    run = rs.ssconform(["run", "--impl", str(missing), "--out", str(out)], timeouts.medium())
    _assert_clean_refusal(run, "no_such_impl", before, out)
    run = rs.ssconform(["run", "--impl", "no.such.module_xyz", "--out", str(out)], timeouts.medium())
    _assert_clean_refusal(run, "no.such.module_xyz", before, out)


def _unwritable_outs(tmp_path):
    """Output paths that cannot be created even by root, each with what makes it so."""
    plain_file = tmp_path / "plain-file"
    plain_file.write_text("I am a file, not a directory\n", encoding="utf-8")
    cases = [(plain_file / "sub", "a path under a regular file"),
             (plain_file, "an existing regular file")]
    name_max = os.pathconf(str(tmp_path), "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    cases.append((tmp_path / ("x" * (name_max + 1)), "a name longer than NAME_MAX"))
    for candidate in ("/proc/ssconform-out", "/sys/ssconform-out"):  # read-only pseudo file systems
        if os.path.isdir(os.path.dirname(candidate)) and not os.path.exists(candidate):
            cases.append((Path(candidate), "a pseudo file system"))
    return cases


def test_run_refuses_an_unwritable_output_directory(previous_run, tmp_path):
    before = rs.tree(previous_run)
    for target, why in _unwritable_outs(tmp_path):
        try:
            target.mkdir(parents=True)
        except OSError:
            pass
        else:  # pragma: no cover - not unwritable here after all
            shutil.rmtree(target)
            continue
        run = rs.ssconform(["run", "--impl", "stdlib", "--out", str(target), "-k", "test_api"], timeouts.medium())
        rs.cleanup(run)
        assert run.returncode == 2, f"{why}: exit {run.returncode}\n{run.stderr[-2000:]}"
        assert run.stderr.count("ssconform:") == 1 and "Traceback" not in run.stderr, f"{why}:\n{run.stderr}"
        assert "cannot write to output directory" in run.stderr and str(target)[:60] in run.stderr, run.stderr
        assert "[1/1]" not in run.stderr, f"{why}: the suite started before the output was checked"
    assert rs.tree(previous_run) == before


def test_report_refuses_an_unwritable_output_directory(out, tmp_path):
    plain_file = tmp_path / "plain-file"
    plain_file.write_text("x\n", encoding="utf-8")
    before = rs.tree(out)
    run = rs.ssconform(["report", str(out), "--out", str(plain_file / "sub")], timeouts.medium())
    _assert_clean_refusal(run, str(plain_file / "sub"), before, out)
    assert plain_file.read_text(encoding="utf-8") == "x\n"
