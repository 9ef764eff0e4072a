"""Markdown rendering of the report model, sized for a GitHub job summary.

Theory of operation
-------------------
GitHub caps a step summary at 1 MiB and shows it inline on the run page,
so the Markdown is the short form of the report: totals per run, the
divergent checks with an explanation per topic, the failures, and the
full matrix only when it is small.  :func:`render_markdown` renders with
generous limits first and, while the text is over :data:`BUDGET` bytes,
drops the matrix and then shrinks the lists (each cut says how many rows
are left out and points at ``report.html``), so the result always fits.

Escaping: every string from a record goes through :func:`md_escape`,
which turns ``& < >`` (and ``@``, so no one is mentioned) into HTML
entities, backslash-escapes the Markdown punctuation (`` ` * _ [ ] | ~ #
! \\ ``) and folds newlines, so a record can neither break a table, open a
link (``](javascript:...)``) nor pass raw HTML through.  Only the
reproduction snippets of ``harness.report.platform_notes`` (kit data, not record
data) are emitted verbatim, inside fenced code blocks.

The renderer is a pure function of the model.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence

from harness.report import platform_notes
from harness.report.model import (
    OUTCOMES,
    Cell,
    Column,
    Model,
    Row,
    extension_lines,
    measured_on,
    pretty_os,
    shorten,
)

#: Target size of the Markdown (bytes, UTF-8): well under GitHub's 1 MiB.
BUDGET = 400 * 1024

#: Render attempts, most detailed first: (matrix cell limit, divergent rows, failures, message chars).
_PLANS = (
    (1500, 400, 400, 300),
    (0, 400, 400, 300),
    (0, 150, 150, 200),
    (0, 50, 50, 120),
    (0, 10, 10, 80),
)

_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "@": "&#64;",
    "\\": "\\\\",
    "`": "\\`",
    "*": "\\*",
    "_": "\\_",
    "[": "\\[",
    "]": "\\]",
    "|": "\\|",
    "~": "\\~",
    "#": "\\#",
    "!": "\\!",
}
_SPECIAL = re.compile(r"[&<>@\\`*_\[\]|~#!]")

_MARK = {"PASS": "\u2705", "FAIL": "\u274c", "ERROR": "\u274c", "TIMEOUT": "\u23f1\ufe0f", "XPASS": "\u2757",
         "FLAKY": "\u2757", "PRECONDITION_FAILED": "\u26d4", "INFO": "\u2139\ufe0f", "UNSUPPORTED": "\u2796", "SKIP": "\u2796", "XFAIL": "\u2611\ufe0f"}


def md_escape(text: object) -> str:
    """``text`` safe inside Markdown prose and table cells (one line)."""
    flat = " ".join(str(text).split())
    return _SPECIAL.sub(lambda match: _ESCAPES[match.group(0)], flat)


def _outcome(outcome: str) -> str:
    return f"{_MARK.get(outcome, '')} {outcome}".strip()


def _cell(row: Row, cell: Optional[Cell], odd: bool = False) -> str:
    if cell is None:
        return "\u2014"
    text = _outcome(cell.outcome)
    if row.compares_observation and cell.summary:
        text += ": " + md_escape(cell.summary)
    if cell.agrees is False:
        text += " \u26a0\ufe0f differs from documented"
    return f"**{text}**" if odd else text


def _check(row: Row, with_title: bool = True) -> str:
    text = f"**{md_escape(row.id)}**"
    if row.variant:
        text += f" \\[{md_escape(row.variant)}\\]"
    if with_title and row.title:
        text += " " + md_escape(shorten(row.title, 90))
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _column_head(column: Column) -> str:
    return md_escape(" \u00b7 ".join(column.header))


def _totals(model: Model) -> List[str]:
    shown = [outcome for outcome in OUTCOMES if any(c.totals.get(outcome) for c in model.columns)]
    rows = []
    for column in model.columns:
        cells = [md_escape(column.label)]
        cells += [str(column.totals.get(outcome, 0) or "") for outcome in shown]
        note = "; ".join(f"aborted: {md_escape(shorten(reason, 120))}" for reason in column.aborted)
        if len(column.runs) > 1:
            note = (f"{len(column.runs)} repeats" + ("; " + note if note else ""))
        cells.append(note)
        rows.append(cells)
    return ["## Totals", ""] + _table(["run"] + shown + ["notes"], rows) + [""]


def _documented_table(topic: str, model: Model, rows: Sequence[Row]) -> List[str]:
    info = platform_notes.TOPICS[topic]
    oses = [os for os in platform_notes.OSES if os in info["expect"]]
    oses += sorted({c.os for c in model.columns} - set(oses))
    table = []
    for os_name in oses:
        entry = info["expect"].get(platform_notes.normalize_os(os_name) or "")
        measured: List[str] = []
        for row in rows:
            for text in measured_on(row, model.columns, os_name):
                if md_escape(text) not in measured:
                    measured.append(md_escape(text))
        if entry is None and not measured:
            continue
        table.append([
            pretty_os(os_name),
            md_escape(entry["value"]) if entry else "\u2014",
            f"{entry['confidence']} ({platform_notes.confidence_label(entry['confidence'])})" if entry else "",
            "; ".join(measured) or "not run",
            md_escape(entry["source"]) if entry else "",
        ])
    return _table(["OS", "documented", "confidence", "measured here", "source"], table)


def _divergence(model: Model, limit: int) -> List[str]:
    rows = model.divergent_rows
    lines = [f"## Where runs disagree ({len(rows)})", ""]
    if not rows:
        return lines + ["Every run that ran a check saw the same outcome and observation.", ""]
    lines.append("Cells in **bold** differ from the most common result of their row.")
    lines.append("")
    header = ["check"] + [_column_head(column) for column in model.columns]
    body = [[_check(row)] + [_cell(row, cell, odd) for cell, odd in zip(row.cells, row.odd)]
            for row in rows[:limit]]
    lines += _table(header, body)
    if len(rows) > limit:
        lines.append(f"\n\u2026 and {len(rows) - limit} more divergent checks in report.html.")
    lines.append("")
    shown = rows[:limit]
    topics = [topic for topic in model.topics() if any(row.topic == topic for row in shown)]
    if topics:
        lines += ["### Why they disagree", ""]
    for topic in topics:
        info = platform_notes.TOPICS[topic]
        members = [row for row in shown if row.topic == topic]
        lines.append(f"#### {md_escape(info['title'])}")
        lines.append("")
        lines.append("Checks: " + ", ".join(_check(row, with_title=False) for row in members))
        lines.append("")
        lines.append(md_escape(info["mechanism"]))
        lines.append("")
        lines += _documented_table(topic, model, members)
        lines.append("")
        lines += ["<details><summary>Minimal reproduction</summary>", "", "```python",
                  info["repro"].rstrip("\n"), "```", "", "</details>", ""]
    unexplained = [row for row in shown if row.topic not in platform_notes.TOPICS]
    by_version = [row for row in unexplained if row.level == "VERSION"]
    others = [row for row in unexplained if row.level != "VERSION"]
    if by_version:
        lines.append("VERSION checks, which differ by the API level an implementation claims (for the stdlib, "
                     "the running Python): " + ", ".join(_check(r, with_title=False) for r in by_version) + ".")
        lines.append("")
    platform = [row for row in others if row.level == "PLATFORM"]
    required = [row for row in others if row.level != "PLATFORM"]
    if platform:
        lines.append("No platform note explains the PLATFORM checks " + ", ".join(_check(r, with_title=False)
                     for r in platform) + " yet: an undocumented platform behaviour or an implementation difference.")
        lines.append("")
    if required:
        lines.append("REQUIRED checks that should agree everywhere: " + ", ".join(_check(r, with_title=False)
                     for r in required) + ". The highlighted runs are worth investigating.")
        lines.append("")
    return lines


def _failures(model: Model, limit: int, message_limit: int) -> List[str]:
    items = [(row, column, cell) for row in model.failing_rows
             for column, cell in zip(model.columns, row.cells) if cell is not None and cell.bad]
    lines = [f"## Failures ({len(items)})", ""]
    if not items:
        return lines + ["No run had an unexpected FAIL, ERROR, TIMEOUT, XPASS, FLAKY or PRECONDITION_FAILED "
                        "outcome.", ""]
    body = []
    for row, column, cell in items[:limit]:
        outcome = _outcome(cell.outcome)
        if cell.outcome == "FLAKY":
            outcome += " (" + ", ".join(cell.outcomes) + ")"
        body.append([_check(row), md_escape(column.label), outcome,
                     md_escape(shorten(cell.message, message_limit)) if cell.message else ""])
    lines += _table(["check", "run", "outcome", "message"], body)
    if len(items) > limit:
        lines.append(f"\n\u2026 and {len(items) - limit} more failures in report.html.")
    return lines + [""]


def _extensions(model: Model) -> List[str]:
    """Declared extensions, apart from the contract: what each run declared and how its checks ended."""
    lines = extension_lines(model)
    if not lines:
        return []
    out = ["## Declared extensions", "",
           "Promises beyond the socketserver contract. An implementation declares the ones it keeps "
           "(`__socketserver_extensions__`); its EXT checks verify them, and are UNSUPPORTED where not declared.",
           ""]
    header = ["extension", "check"] + [_column_head(column) for column in model.columns]
    body = [[f"**{md_escape(line.name)}** {md_escape(line.title)}", md_escape(line.check)]
            + [md_escape(cell) for cell in line.cells] for line in lines]
    return out + _table(header, body) + [""]


def _matrix(model: Model, cell_limit: int) -> List[str]:
    contract = [row for row in model.rows if not row.extension]
    size = len(contract) * len(model.columns)
    lines = ["## All checks", ""]
    if size > cell_limit or not contract:
        return lines + [f"The full matrix ({len(contract)} checks \u00d7 {len(model.columns)} runs) "
                        "is in report.html (filters: divergent only, failures only).", ""]
    header = ["area", "check"] + [_column_head(column) for column in model.columns]
    body = [[md_escape(row.area), _check(row)] + [_cell(row, cell) for cell in row.cells] for row in contract]
    return lines + _table(header, body) + [""]


def _free_threading(model: Model) -> List[str]:
    """What free-threading changes, when a column ran without the GIL (else nothing)."""
    if not any(column.gil == "disabled" for column in model.columns):
        return []
    note = platform_notes.NOTES["free_threading"]
    sources = "; ".join(md_escape(platform_notes.source_text([source])) for source in note["sources"])
    return [f"## {md_escape(note['title'])}", ""] + [md_escape(p) + "\n" for p in note["text"].split("\n\n")] + [
        f"Sources: {sources}", ""]


def _render(model: Model, plan: tuple) -> str:
    cell_limit, divergent_limit, failure_limit, message_limit = plan
    runs = sum(len(column.runs) for column in model.columns)
    lines = ["# socketserver platform behaviour report", ""]
    facts = [f"{runs} run{'s' if runs != 1 else ''} in {len(model.columns)} column"
             f"{'s' if len(model.columns) != 1 else ''}", f"{len(model.rows)} checks",
             f"{len(model.divergent_rows)} divergent", f"{len(model.failing_rows)} failing",
             "suite " + ", ".join(md_escape(v) for v in model.suite_versions)]
    lines.append(" \u00b7 ".join(facts))
    if model.common:
        lines.append("")
        lines.append("All runs: " + md_escape(", ".join(model.common)))
    lines.append("")
    lines += _totals(model)
    lines += _free_threading(model)
    lines += _divergence(model, divergent_limit)
    lines += _failures(model, failure_limit, message_limit)
    lines += _extensions(model)
    lines += _matrix(model, cell_limit)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_markdown(model: Model, budget: int = BUDGET) -> str:
    """The Markdown report: at most ``budget`` bytes whenever possible."""
    text = ""
    for plan in _PLANS:
        text = _render(model, plan)
        if len(text.encode("utf-8")) <= budget:
            return text
    return text

