"""docs/versions.md is a pure function of records: behaviours, first version, outcomes."""

from __future__ import annotations

from harness.report.versions import render


def _record(version, entries, implementation="CPython", name="stdlib", subject=True):
    fingerprint = {"python_implementation": implementation, "python_version": version}
    if subject:
        fingerprint["subject"] = {"via": "agent"}
    return {"implementation": {"name": name}, "fingerprint": fingerprint, "checks": entries}


def _entry(present, outcome="PASS", check="API-018", level="VERSION"):
    return {"id": check, "variant": "", "level": level, "title": "block_on_close default",
            "outcome": outcome, "observed": {"block_on_close": present, "duration": 0.1}}


def test_each_behaviour_with_the_first_version_that_showed_it():
    records = [
        _record("3.7.16", [_entry(True)]),
        _record("2.7.18", [_entry("<absent>")]),
        _record("3.6.15", [_entry("<absent>")]),
        _record("3.11.7", [_entry(True)], subject=False),
        _record("3.11.7", [_entry(False)], name="reference"),  # not the stdlib: left out
        _record("3.8.18", [_entry(True, check="API-001", level="REQUIRED")]),  # not VERSION
    ]
    page = render(records)
    assert render(list(reversed(records))) == page  # order of the records does not matter
    assert "## API-018: block_on_close default" in page and "API-001" not in page
    absent = '| `{"block_on_close": "<absent>"}` | CPython 2.7.18 | CPython 2.7.18, CPython 3.6.15 |'
    present = '| `{"block_on_close": true}` | CPython 3.7.16 | CPython 3.7.16, CPython 3.11.7 |'
    assert absent in page and present in page
    assert page.index(absent) < page.index(present)
    assert "CPython 3.11.7 (in-process)" in page and "CPython 2.7.18 (agent)" in page
    assert "duration" not in page  # measurements are not behaviours


def test_an_unsupported_cell_is_no_behaviour():
    page = render([_record("2.7.18", [_entry("<absent>", outcome="UNSUPPORTED")])])
    assert "first measured in" not in page
    assert "| UNSUPPORTED |" in page


def test_a_subject_column_says_the_implementation_ran_in_the_agent():
    import report_samples as rs

    from harness.report.model import build_model

    subject = {"via": "agent", "protocol": 1, "python": "python2.7", "executable": "/usr/bin/python2.7",
               "clock": "time.time", "host_python": "CPython 3.11.7"}
    agent = rs.make_record([rs.check("API-001")], python_version="2.7.18", subject=subject)
    local = rs.make_record([rs.check("API-001")], python_version="3.11.7")
    model = build_model([("agent.json", agent), ("local.json", local)])
    labels = sorted(column.label for column in model.columns)
    assert any("CPython 2.7.18 (subject agent)" in label for label in labels), labels
    assert any("CPython 3.11.7" in label and "agent" not in label for label in labels), labels
