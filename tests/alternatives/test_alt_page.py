"""harness.implementations.alternatives: baselines, deviations, reasons and the generated page."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness.implementations import alternatives
from harness.results import records

FP = {
    "os": "linux", "os_release": "6.1", "os_version": "#1", "machine": "x86_64",
    "python_implementation": "CPython", "python_version": "3.11.7", "python_build": "main",
    "gil": "enabled",
    "capabilities": {"fork": True, "af_unix": True, "ipv6": True, "reuse_port": True, "signals": True,
                     "rlimit": True, "poll": True, "simulated_absent": []},
    "selector": "PollSelector", "default_selector": "EpollSelector", "mp_start_method": "fork",
    "rlimit_nofile": [1024, 4096], "hostname_hash": "0123456789abcdef", "ci": None,
}


def _impl(name, version="1.0", module="socketserver", extra=None):
    return {"name": name, "spec": name, "kind": "adapter", "module": module, "file": None,
            "version": version, "api_version": "3.11", "extra": dict(extra or {})}


def _record(name, outcomes, python="3.11.7", pyimpl="CPython", version="1.0", extra=None, summaries=None):
    fp = dict(FP, python_version=python, python_implementation=pyimpl)
    if extra:
        fp["impl_extra"] = dict(extra)
    record = records.new_record(_impl(name, version, extra=extra), fp, {})
    checks = []
    for key, outcome in outcomes.items():
        check_id, _, variant = key.partition("[")
        variant = variant.rstrip("]")
        expected = None
        if outcome.startswith("XFAIL:"):
            outcome, expected = "XFAIL", outcome.split(":", 1)[1]
        observed = {}
        if summaries and key in summaries:
            observed["summary"] = summaries[key]
        checks.append(records.check_entry(
            id=check_id, variant=variant, nodeid=f"x::{check_id}{variant}", area=check_id.split("-")[0],
            level="PLATFORM" if outcome == "INFO" else "REQUIRED", title=f"title of {check_id}",
            clause="c", outcome=outcome, expected_outcome=expected, observed=observed))
    records.finish_record(record, checks)
    records.validate(record)
    return record


BASE = {"TCP-001": "PASS", "TCP-002": "PASS", "TCP-003": "INFO", "TCP-004": "FAIL"}


def test_raw_outcome_undoes_expectations():
    assert alternatives.raw_outcome({"outcome": "XFAIL", "expected_outcome": "TIMEOUT"}) == "TIMEOUT"
    assert alternatives.raw_outcome({"outcome": "XPASS", "expected_outcome": "FAIL"}) == "PASS"
    assert alternatives.raw_outcome({"outcome": "ERROR"}) == "ERROR"


def test_deviations_are_outcome_and_observation_differences():
    base = _record("stdlib", BASE, summaries={"TCP-003": "PollSelector"})
    alt = _record("eventlet", {"TCP-001": "PASS", "TCP-002": "XFAIL:TIMEOUT", "TCP-003": "INFO",
                               "TCP-004": "FAIL", "TCP-005": "PASS"},
                  summaries={"TCP-003": "SelectSelector"})
    rows = {row["id"]: row for row in alternatives.deviations(alt, base)}
    assert set(rows) == {"TCP-002", "TCP-003", "TCP-005"}  # TCP-004 fails in both: not a deviation
    assert (rows["TCP-002"]["baseline"], rows["TCP-002"]["outcome"]) == ("PASS", "TIMEOUT")
    assert rows["TCP-003"]["kind"] == "observation"
    assert rows["TCP-005"]["kind"] == "not in baseline"


def test_identical_records_have_no_deviation():
    base = _record("stdlib", BASE)
    assert alternatives.deviations(_record("gevent", BASE), base) == []


def test_baseline_is_cpython_stdlib_of_the_same_minor():
    cpy39 = _record("stdlib", BASE, python="3.9.18")
    cpy311 = _record("stdlib", BASE, python="3.11.7")
    ref311 = _record("reference", BASE, python="3.11.7")
    pypy = _record("stdlib", BASE, python="3.9.16", pyimpl="PyPy")
    pypy_ref = _record("reference", BASE, python="3.9.16", pyimpl="PyPy")
    gevent = _record("gevent", BASE, python="3.11.2")
    pool = [cpy39, cpy311, ref311, pypy, pypy_ref, gevent]
    assert alternatives.baseline_for(pypy, pool) == (cpy39, True)
    assert alternatives.baseline_for(gevent, pool) == (cpy311, True)
    assert alternatives.baseline_for(pypy_ref, pool) == (ref311, False)  # nearest reference on CPython
    assert alternatives.baseline_for(_record("future", BASE, python="3.12.1"), [cpy39, cpy311]) == (cpy311, False)
    assert alternatives.baseline_for(gevent, [pypy, gevent]) == (None, False)
    assert not alternatives.is_baseline(pypy) and alternatives.is_baseline(cpy39)


def _expectations(tmp_path: Path, name: str, text: str) -> Path:
    directory = tmp_path / "exp"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.toml").write_text(text, encoding="utf-8")
    return directory


def test_reasons_come_from_the_record_then_the_expectations_file(tmp_path):
    base = _record("stdlib", BASE)
    alt = _record("gevent", {"TCP-001": "FAIL", "TCP-002": "XFAIL:TIMEOUT", "TCP-003": "INFO", "TCP-004": "FAIL"},
                  version="26.9.0", extra={"gevent": "26.9.0"})
    alt["checks"][1]["expectation_reason"] = "reason kept in the record"
    directory = _expectations(tmp_path, "gevent", """
[[expectation]]
id = "TCP-001"
outcome = "FAIL"
reason = "a   reason\\nspread over lines"
link = "https://example.org/issue/1"
[expectation.when]
impl_version = ">=26"
""")
    text, unexplained = alternatives.render([base, alt], alternatives.Reasons(directory))
    assert unexplained == []
    assert "a reason spread over lines ([link](https://example.org/issue/1))" in text
    assert "reason kept in the record" in text
    assert "| gevent 26.9.0 | CPython 3.11.7 | stdlib on CPython 3.11.7 |" in text


def test_a_condition_that_does_not_hold_leaves_the_deviation_unexplained(tmp_path):
    base = _record("stdlib", BASE)
    alt = _record("gevent", dict(BASE, **{"TCP-001": "FAIL"}), version="26.9.0")
    directory = _expectations(tmp_path, "gevent", """
[[expectation]]
id = "TCP-001"
outcome = "FAIL"
reason = "only on PyPy"
[expectation.when]
python_implementation = "PyPy"
""")
    text, unexplained = alternatives.render([base, alt], alternatives.Reasons(directory))
    assert unexplained == ["gevent (CPython 3.11.7): TCP-001"]
    assert "| unexplained |" in text and "only on PyPy" not in text


def test_pypy_entries_in_stdlib_toml_explain_pypy_only(tmp_path):
    cpy = _record("stdlib", BASE, python="3.9.18")
    pypy = _record("stdlib", dict(BASE, **{"TCP-002": "FAIL"}), python="3.9.16", pyimpl="PyPy",
                   version="PyPy 3.9.16")
    directory = _expectations(tmp_path, "stdlib", """
[[expectation]]
id = "TCP-002"
outcome = "FAIL"
reason = "PyPy closes sockets only when the GC runs"
[expectation.when]
python_implementation = "PyPy"
""")
    text, unexplained = alternatives.render([cpy, pypy], alternatives.Reasons(directory))
    assert unexplained == []
    assert "## stdlib on PyPy 3.9.16" in text
    assert "PyPy closes sockets only when the GC runs" in text


def test_todo_reasons_count_as_unexplained_and_strict_fails(tmp_path):
    out = tmp_path / "records"
    records.write_record(_record("stdlib", BASE), out)
    records.write_record(_record("future", dict(BASE, **{"TCP-002": "FAIL"})), out)
    directory = _expectations(tmp_path, "future", """
[[expectation]]
id = "TCP-002"
outcome = "FAIL"
reason = "TODO: explain"
""")
    page = tmp_path / "docs" / "alternatives.md"
    argv = [str(out), "--out", str(page), "--expectations-dir", str(directory), "--notes", ""]
    assert alternatives.main(argv) == 0
    assert "GENERATED by harness/implementations/alternatives.py" in page.read_text(encoding="utf-8")
    assert alternatives.main(argv + ["--strict"]) == 1
    (directory / "future.toml").write_text(
        '[[expectation]]\nid = "TCP-002"\noutcome = "FAIL"\nreason = "3.3 had no such thing"\n', encoding="utf-8")
    assert alternatives.main(argv + ["--strict"]) == 0


def test_page_is_deterministic_and_escapes_table_cells(tmp_path):
    base = _record("stdlib", BASE)
    alt = _record("eventlet", dict(BASE, **{"TCP-001": "ERROR"}))
    alt["checks"][0]["title"] = "a | pipe\nand a newline"
    alt["checks"][0]["expectation_reason"] = "why | it\nfails"
    first, _ = alternatives.render([base, alt], alternatives.Reasons(None))
    second, _ = alternatives.render([copy.deepcopy(alt), base], alternatives.Reasons(None))
    assert first == second
    row = next(line for line in first.splitlines() if line.startswith("| `TCP-001`"))
    assert row.count(" | ") == 4 and "a \\| pipe and a newline" in row and "why \\| it fails" in row


def test_no_baseline_lists_every_non_passing_check():
    alt = _record("future", dict(BASE, **{"TCP-002": "TIMEOUT"}))
    text, unexplained = alternatives.render([alt], alternatives.Reasons(None))
    assert "no baseline record" in text
    assert sorted(unexplained) == ["future (CPython 3.11.7): TCP-002", "future (CPython 3.11.7): TCP-004"]


def test_a_broken_record_is_an_input_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert alternatives.main([str(bad), "--out", "-", "--notes", ""]) == 2
    assert "bad.json" in capsys.readouterr().err


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_missing_reason_is_unexplained(reason):
    assert alternatives.one_line(reason) == alternatives.UNEXPLAINED


def test_notes_explain_intermittent_deviations_by_variant_pattern(tmp_path):
    base = _record("stdlib", dict(BASE, **{"TCP-009[killed-a]": "INFO", "TCP-009[fin-a]": "INFO"}))
    alt = _record("eventlet", dict(BASE, **{"TCP-009[killed-a]": "TIMEOUT", "TCP-009[fin-a]": "TIMEOUT"}))
    notes_file = tmp_path / "notes.toml"
    notes_file.write_text(
        '[[note]]\nimplementation = "eventlet"\nid = "TCP-009"\nvariant = "killed-*"\n'
        'reason = "intermittent: a harness race"\n'
        '[[note]]\nimplementation = "gevent"\nid = "TCP-009"\nreason = "not this implementation"\n',
        encoding="utf-8")
    notes = alternatives.load_notes(notes_file)
    text, unexplained = alternatives.render([base, alt], alternatives.Reasons(None, notes))
    assert "intermittent: a harness race" in text and "not this implementation" not in text
    assert unexplained == ["eventlet (CPython 3.11.7): TCP-009[fin-a]"]


def test_expectations_win_over_notes(tmp_path):
    base = _record("stdlib", BASE)
    alt = _record("eventlet", dict(BASE, **{"TCP-001": "FAIL"}))
    directory = _expectations(tmp_path, "eventlet", '[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\n'
                              'reason = "from the expectation file"\n')
    notes = [alternatives.Note(implementation="eventlet", id="TCP-001", reason="from a note")]
    text, _ = alternatives.render([base, alt], alternatives.Reasons(directory, notes))
    assert "from the expectation file" in text and "from a note" not in text


@pytest.mark.parametrize("body, complaint", [
    ('[[note]]\nimplementation = "x"\nid = "TCP-001"\n', "missing reason"),
    ('[[note]]\nimplementation = "x"\nid = "TCP-001"\nreason = "r"\ncolour = "red"\n', "unknown keys"),
    ("[[note]\n", "notes.toml"),
])
def test_malformed_notes_are_an_input_error(tmp_path, capsys, body, complaint):
    notes_file = tmp_path / "notes.toml"
    notes_file.write_text(body, encoding="utf-8")
    out = tmp_path / "records"
    records.write_record(_record("stdlib", BASE), out)
    assert alternatives.main([str(out), "--out", "-", "--notes", str(notes_file)]) == 2
    assert complaint in capsys.readouterr().err


def test_the_most_specific_note_wins():
    record = _record("eventlet", {"TCP-009[rst-Forking]": "INFO"})
    row = {"id": "TCP-009", "variant": "rst-Forking", "check": record["checks"][0]}
    notes = [alternatives.Note(implementation="eventlet", id="TCP-009", reason="any variant"),
             alternatives.Note(implementation="eventlet", id="TCP-009", variant="*Forking*", reason="pattern"),
             alternatives.Note(implementation="eventlet", id="TCP-009", variant="rst-Forking", reason="exact")]
    assert alternatives.Reasons(None, notes).find(record, row) == ("exact", None)
    assert alternatives.Reasons(None, notes[:2]).find(record, row) == ("pattern", None)
    assert alternatives.Reasons(None, notes[:1]).find(record, row) == ("any variant", None)
