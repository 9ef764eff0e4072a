"""diff()/format_diff(): records and merged reports, per cell."""

from __future__ import annotations

import json

import pytest
import report_samples as rs

from harness.report.build import render_report
from harness.report.diff import diff, format_diff
from harness.results import records
from harness.results.records import RecordError


def _pair(tmp_path):
    before = rs.make_record([
        rs.check("TCP-001"),
        rs.check("TCP-002", outcome="FAIL", message="was broken"),
        rs.check("TCP-003"),
        rs.check("TCP-004", "PLATFORM", "INFO", observed={"summary": "b''"}),
        rs.check("TCP-005"),
        rs.check("TCP-006", outcome="FAIL", message="still broken"),
    ])
    after = rs.make_record([
        rs.check("TCP-001", outcome="ERROR", message="now \x1b[31mbroken\x1b[0m"),
        rs.check("TCP-002"),
        rs.check("TCP-003", outcome="UNSUPPORTED"),
        rs.check("TCP-004", "PLATFORM", "INFO", observed={"summary": "ConnectionResetError [ECONNRESET]"}),
        rs.check("TCP-006", outcome="FAIL", message="still broken"),
        rs.check("TCP-007", outcome="TIMEOUT", message="hung"),
    ], python_version="3.13.0")
    a = records.write_record(before, tmp_path / "a")
    b = records.write_record(after, tmp_path / "b")
    return a, b


def _checks(cell, name):
    return [item["check"] for item in cell[name]]


def test_diff_of_two_records(tmp_path):
    a, b = _pair(tmp_path)
    d = diff(a, b)
    assert len(d["cells"]) == 1  # two single runs are compared whatever they are
    cell = d["cells"][0]
    assert _checks(cell, "new_failures") == ["TCP-001", "TCP-007"]
    assert _checks(cell, "fixes") == ["TCP-002"]
    assert _checks(cell, "changed") == ["TCP-003", "TCP-004"]
    assert _checks(cell, "added") == ["TCP-007"]
    assert _checks(cell, "removed") == ["TCP-005"]
    assert d["counts"] == {"new_failures": 2, "fixes": 1, "changed": 2, "added": 1, "removed": 1}
    json.dumps(d)  # plain data


def test_format_diff_is_readable_and_strips_control_characters(tmp_path):
    a, b = _pair(tmp_path)
    text = format_diff(diff(a, b))
    assert "\x1b" not in text
    assert "new failures (2):" in text and "TCP-001  PASS -> ERROR" in text
    assert "TCP-004  INFO \"b''\" -> INFO \"ConnectionResetError [ECONNRESET]\"" in text
    assert "TCP-005  PASS -> (absent)" in text
    assert text.rstrip().endswith("2 new failures, 1 fixes, 2 changed, 1 checks added, 1 checks removed")


def test_no_difference(tmp_path):
    a, _ = _pair(tmp_path)
    d = diff(a, a)
    assert d["counts"] == {"new_failures": 0, "fixes": 0, "changed": 0, "added": 0, "removed": 0}
    assert "no differences" in format_diff(d)


def test_diff_of_merged_reports_pairs_columns(tmp_path):
    old = [rs.make_record([rs.check("TCP-001"), rs.check("TCP-002")], python_version="3.12.6"),
           rs.make_record([rs.check("TCP-001")], **rs.WINDOWS),
           rs.make_record([rs.check("TCP-001")], **rs.MACOS)]
    new = [rs.make_record([rs.check("TCP-001"), rs.check("TCP-002", outcome="FAIL")], python_version="3.12.7"),
           rs.make_record([rs.check("TCP-001", outcome="FAIL")], **rs.WINDOWS),
           rs.make_record([rs.check("TCP-001")], python_implementation="PyPy", python_version="3.10.14")]
    rs.write_all(old, tmp_path / "old")
    rs.write_all(new, tmp_path / "new")
    render_report([tmp_path / "old"], tmp_path / "old-report")
    render_report([tmp_path / "new"], tmp_path / "new-report")
    d = diff(tmp_path / "old-report" / "report.json", tmp_path / "new-report" / "report.json")
    pairs = {(c["a"], c["b"]): c for c in d["cells"]}
    assert len(pairs) == 2
    windows = next(c for c in d["cells"] if "Windows" in c["b"])
    assert _checks(windows, "new_failures") == ["TCP-001"]
    patch = next(c for c in d["cells"] if "Linux" in c["b"])  # 3.12.7 paired with 3.12.6 by minor version
    assert "3.12.6" in patch["a"] and _checks(patch, "new_failures") == ["TCP-002"]
    assert len(d["only_in_a"]) == 1 and "macOS" in d["only_in_a"][0]
    assert len(d["only_in_b"]) == 1 and "PyPy" in d["only_in_b"][0]
    assert "only in a: macOS" in format_diff(d)


def test_record_and_report_can_be_mixed(tmp_path):
    a, b = _pair(tmp_path)
    render_report([b], tmp_path / "rep")
    d = diff(a, tmp_path / "rep" / "report.json")
    assert _checks(d["cells"][0], "fixes") == ["TCP-002"]


def test_bad_inputs_are_errors_naming_the_file(tmp_path):
    a, _ = _pair(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "ssconform-report", "report_version": 1, "columns": 3}')
    with pytest.raises(RecordError, match="broken.json"):
        diff(a, broken)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{nope")
    with pytest.raises(RecordError, match="garbage.json"):
        diff(garbage, a)
    future = tmp_path / "future.json"
    future.write_text('{"kind": "ssconform-report", "report_version": 99, "columns": [], "rows": []}')
    with pytest.raises(RecordError, match="report_version"):
        diff(a, future)
