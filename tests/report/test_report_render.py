"""Rendered content: Markdown sections and size budget, HTML structure."""

from __future__ import annotations

import copy
import uuid

import report_samples as rs

from harness.report.merge import merge_records
from harness.report.render_html import render_html
from harness.report.render_md import BUDGET, render_markdown


def _realistic():
    return merge_records([(f"r{i}.json", r) for i, r in enumerate(rs.realistic_records())])


def test_markdown_sections_for_a_realistic_merge():
    text = render_markdown(_realistic())
    assert text.startswith("# socketserver platform behaviour report\n")
    for heading in ("## Totals", "## Where runs disagree (13)", "### Why they disagree",
                    "## Failures (1)", "## All checks"):
        assert heading in text, heading
    # Documented expectations per OS next to the measurement, with the disagreement flagged.
    assert "| Windows | ConnectionResetError \\[ECONNRESET\\] (WinError 10054) | D (documented) |" in text
    assert "⚠️ differs from documented" in text
    assert "```python\nimport socket" in text
    # Small enough for the full matrix.
    assert "| area | check |" in text


def _big_model(columns=30, checks=400):
    message = "AssertionError: " + "x" * 3000
    base = rs.make_record([rs.check(f"TCP-{i:03d}", outcome="FAIL", message=message, title="t" * 200)
                           for i in range(checks)])
    loaded = []
    for index in range(columns):
        record = copy.deepcopy(base)
        record["run_id"] = str(uuid.uuid4())
        record["fingerprint"]["python_version"] = f"3.{index}.0"
        for number, check in enumerate(record["checks"]):
            check["outcome"] = "FAIL" if (number + index) % 3 else "PASS"
        loaded.append((f"r{index}.json", record))
    return merge_records(loaded)


def test_markdown_stays_under_the_job_summary_budget():
    model = _big_model()
    assert len(model.divergent_rows) == 400 and len(model.failing_rows) == 400
    text = render_markdown(model)
    size = len(text.encode("utf-8"))
    assert size <= BUDGET < 1024 * 1024, size
    assert "is in report.html" in text  # the matrix was left out
    assert "more divergent checks in report.html" in text or "more failures in report.html" in text
    assert "## Totals" in text and "## Failures (" in text


def test_html_opens_on_divergent_rows_and_marks_rows_for_filters():
    page = render_html(_realistic())
    assert 'data-default="divergent"' in page
    assert page.count('<tr class="check divergent') == 13
    assert page.count("failing\" data-area") == 1
    assert page.count("<svg") >= 7 * 3 - 1  # three timeline checks, Windows cannot fork
    assert "Why they disagree (13)" in page and "Totals per run" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page.split("<main>")[0]  # nothing fetched from the web in <head>


def test_html_without_divergence_opens_on_all_checks():
    model = merge_records([("a.json", rs.make_record([rs.check("TCP-001")]))])
    page = render_html(model)
    assert 'data-default="all"' in page
    assert "Every run that ran a check saw the same outcome" in page
