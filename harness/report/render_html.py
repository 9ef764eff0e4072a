"""Self-contained HTML rendering of the report model.

Theory of operation
-------------------
The HTML is the full report: totals, the divergent checks (each with the
runs grouped by what they saw, the documented expectation per OS, the
mechanism and a reproduction), failures, and the whole matrix with
concurrency timelines.  It is one file with inline CSS and JavaScript and
no external asset, so it works from a CI artifact, offline, from
``file://``.

The page opens on the matrix, filtered to the divergent checks when there
are any (the question the report answers first: where do OS, Python and
implementation disagree?), followed by the explanation of each
divergence, the failures and the totals per run.  Filters (divergent
only / failures only / all, plus a text search) are a few lines of
JavaScript that set the ``hidden`` attribute on matrix rows.  The initial
filter comes from the URL fragment -- ``report.html#only=divergent``,
``#only=failing``, ``#only=all``, ``#q=rst`` -- and the fragment follows
the controls, so a filtered view can be linked.

Escaping: the template is rendered by jinja2 with autoescape on, and no
record value is ever marked safe.  The only ``Markup`` inserted is the
timeline SVG, which :mod:`harness.report.timeline` builds with every
record string escaped.  As a second line of defence the page carries a
Content-Security-Policy that allows exactly the page's own inline style
and script (by SHA-256 hash) and nothing else: even a string that slipped
through escaping could not run script or load anything.

The renderer is a pure function of the model.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Dict, List, Optional

import jinja2
from markupsafe import Markup

from harness.report import platform_notes
from harness.report import timeline as timeline_mod
from harness.report.model import (
    OUTCOMES,
    Cell,
    Column,
    Model,
    Row,
    extension_lines,
    measured_on,
    pretty_os,
)

TEMPLATES = Path(__file__).with_name("templates")
_CSP_PLACEHOLDER = "@@CSP@@"


@dataclasses.dataclass
class Group:
    """Columns of a divergent row that saw the same thing."""

    outcome: str
    summary: str
    columns: List[Column]
    odd: bool
    agrees: Optional[bool]
    message: str


@dataclasses.dataclass
class OsLine:
    os: str
    documented: Optional[dict]
    measured: List[str]


@dataclasses.dataclass
class Card:
    row: Row
    groups: List[Group]
    missing: List[Column]
    note: Optional[dict]
    oses: List[OsLine]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _groups(row: Row, columns: List[Column]) -> List[Group]:
    groups: Dict[tuple, Group] = {}
    for column, cell, odd in zip(columns, row.cells, row.odd):
        if cell is None:
            continue
        key = (cell.outcome, cell.summary if row.compares_observation else "")
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(cell.outcome, key[1], [], odd, cell.agrees, cell.message)
        group.columns.append(column)
        if cell.agrees is False:
            group.agrees = False
    return sorted(groups.values(), key=lambda g: (g.odd, -len(g.columns)))


def _os_lines(row: Row, columns: List[Column]) -> List[OsLine]:
    info = platform_notes.TOPICS.get(row.topic or "")
    present_oses = []
    for column, cell in zip(columns, row.cells):
        os_key = platform_notes.normalize_os(column.os) or column.os
        if cell is not None and os_key not in present_oses:
            present_oses.append(os_key)
    documented_oses = [os_key for os_key in platform_notes.OSES if info and os_key in info["expect"]]
    lines = []
    for os_key in documented_oses + [o for o in present_oses if o not in documented_oses]:
        measured = measured_on(row, columns, os_key)
        entry = info["expect"].get(os_key) if info else None
        if entry is None and not measured:
            continue
        lines.append(OsLine(pretty_os(os_key), entry, measured))
    return lines


def cards(model: Model) -> List[Card]:
    """The divergence section's view of ``model``."""
    result = []
    for row in model.divergent_rows:
        missing = [column for column, cell in zip(model.columns, row.cells) if cell is None]
        result.append(Card(row, _groups(row, model.columns), missing, row.note, _os_lines(row, model.columns)))
    return result


def _svg(cell: Cell, row: Row, column: Column) -> Markup:
    # timeline_svg escapes every record-derived string itself; see its docstring.
    return Markup(timeline_mod.timeline_svg(cell.timeline or [], title=f"{row.key} on {column.label}"))


def _overlap(cell: Cell) -> int:
    return timeline_mod.max_overlap(cell.timeline or [])


def _when(stamp: str) -> str:
    """``2026-11-30T00:30:21.000000+00:00`` -> ``2026-11-30 00:30 UTC``."""
    match = re.match(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})", stamp or "")
    if not match:
        return stamp or "unknown"
    zone = "UTC" if stamp.endswith(("+00:00", "Z")) else stamp[-6:]
    return f"{match.group(1)} {match.group(2)} {zone}"


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _with_csp(page: str) -> str:
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    policy = "; ".join([
        "default-src 'none'",
        "style-src " + (" ".join(_digest(s) for s in styles) or "'none'"),
        "script-src " + (" ".join(_digest(s) for s in scripts) or "'none'"),
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ])
    return page.replace(_CSP_PLACEHOLDER, policy, 1)


def _free_threading(model: Model):
    """The free-threading note (title, text, sources_text) when a column ran without the GIL."""
    if not any(column.gil == "disabled" for column in model.columns):
        return None
    note = platform_notes.NOTES["free_threading"]
    return {"title": note["title"], "text": note["text"],
            "sources_text": "; ".join(platform_notes.source_text([s]) for s in note["sources"])}


def render_html(model: Model) -> str:
    """The HTML report (one self-contained page)."""
    template = _environment().get_template("report.html.j2")
    failures = [(row, column, cell) for row in model.failing_rows
                for column, cell in zip(model.columns, row.cells) if cell is not None and cell.bad]
    shown_outcomes = [o for o in OUTCOMES if any(c.totals.get(o) for c in model.columns)]
    card_list = cards(model)
    page = template.render(
        model=model,
        generated=_when(model.generated),
        default_filter="divergent" if model.divergent_rows else "all",
        card_index={card.row.key: index for index, card in enumerate(card_list, start=1)},
        columns=model.columns,
        cards=card_list,
        failures=failures,
        areas=model.areas(),
        extension_lines=extension_lines(model),
        outcomes=shown_outcomes,
        runs=sum(len(column.runs) for column in model.columns),
        csp=_CSP_PLACEHOLDER,
        svg=_svg,
        overlap=_overlap,
        confidence_label=platform_notes.confidence_label,
        pretty_os=pretty_os,
        free_threading=_free_threading(model),
    )
    return _with_csp(page)
