"""The report shows declared extensions apart from the contract."""

from __future__ import annotations

import report_samples as rs

from harness.report.merge import merge_records
from harness.report.model import extension_lines
from harness.report.render_html import render_html
from harness.report.render_md import render_markdown
from harness.results import records

EXT_ID = "EXT-001"


def _record(impl, ext_outcome, declared, **kw):
    checks = [rs.check("API-001", "REQUIRED", "PASS"), rs.check("SHUTDOWN-001", "REQUIRED", "PASS"),
              rs.check(EXT_ID, "EXTENSION", ext_outcome, title="shutdown() is prompt",
                       message="" if ext_outcome != "UNSUPPORTED" else "UNSUPPORTED: not declared")]
    record = rs.make_record(checks, impl=impl, **kw)
    record["implementation"]["extensions"] = sorted(declared)
    records.validate(record)
    return record


def _model(*recs):
    return merge_records([(f"r{i}.json", rec) for i, rec in enumerate(recs)])


def test_undeclared_is_not_a_divergence_but_two_declaring_runs_that_differ_are():
    model = _model(_record("stdlib", "UNSUPPORTED", []), _record("reference", "PASS", ["prompt-shutdown"]))
    row = next(r for r in model.rows if r.id == EXT_ID)
    assert row.extension and not row.divergent and not any(row.odd)
    model = _model(_record("stdlib", "UNSUPPORTED", []), _record("reference", "PASS", ["prompt-shutdown"]),
                   _record("other", "FAIL", ["prompt-shutdown"]))
    row = next(r for r in model.rows if r.id == EXT_ID)
    assert row.divergent and row.failing
    assert [odd for odd in row.odd] == [False, False, True]  # the FAIL differs; UNSUPPORTED takes no part


def test_extension_rows_come_after_every_contract_row_in_their_own_group():
    model = _model(_record("stdlib", "UNSUPPORTED", []), _record("reference", "PASS", ["prompt-shutdown"]))
    assert [r.id for r in model.rows] == ["API-001", "SHUTDOWN-001", EXT_ID]  # by area alone EXT would come first
    assert [(area, rows[0].extension) for area, rows in model.areas()] == [
        ("API", False), ("SHUTDOWN", False), ("EXT", True)]
    before_ext = _model(_record("stdlib", "UNSUPPORTED", []) | {"checks": [
        rs.check(EXT_ID, "EXTENSION", "UNSUPPORTED"), rs.check("FORKING-001", "REQUIRED", "PASS")]})
    assert [r.id for r in before_ext.rows] == ["FORKING-001", EXT_ID]  # likewise before FORKING


def test_extension_lines_say_what_each_run_declared_and_how_its_check_ended():
    model = _model(_record("stdlib", "UNSUPPORTED", []), _record("reference", "PASS", ["prompt-shutdown"]),
                   _record("other", "FAIL", ["prompt-shutdown"]))
    (line,) = extension_lines(model)
    assert (line.name, line.check) == ("prompt-shutdown", EXT_ID)
    assert line.cells == ["not declared", "PASS", "FAIL"] and line.failing


def test_markdown_and_html_show_a_declared_extensions_section_apart_from_the_matrix():
    model = _model(_record("stdlib", "UNSUPPORTED", []), _record("reference", "PASS", ["prompt-shutdown"]))
    text = render_markdown(model)
    section = text.split("## Declared extensions", 1)[1].split("## All checks", 1)[0]
    assert "prompt-shutdown" in section and "not declared" in section and "PASS" in section
    matrix = text.split("## All checks", 1)[1]
    assert "API-001" in matrix and EXT_ID not in matrix
    page = render_html(model)
    assert 'id="extensions"' in page and 'class="area ext" data-area="EXT"' in page
    assert page.index('data-area="SHUTDOWN"') < page.index('data-area="EXT"')


def test_records_without_declarations_still_render():
    old = rs.make_record([rs.check("API-001", "REQUIRED", "PASS")], impl="stdlib")
    assert "extensions" not in old["implementation"]
    model = _model(old)
    assert extension_lines(model) == [] and "## Declared extensions" not in render_markdown(model)
