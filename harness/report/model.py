"""The merged, render-ready report: columns (runs), rows (checks), cells.

Theory of operation
-------------------
Renderers never look at records.  :func:`build_model` turns validated,
consistent records (``merge.py`` decides what is consistent) into plain
dataclasses that the Markdown, HTML and JSON renderers and ``diff`` share:

* a **column** is one interpreter/implementation/platform combination:
  implementation name and version, Python implementation and version, OS
  and machine, refined by the GIL mode and by simulated-absent
  capabilities (a free-threaded build or a ``SSCONFORM_SIMULATE_ABSENT``
  run is its own column).  Repeats of the same column (``repeat_index``)
  are folded into it: a check whose outcome differed between repeats
  becomes ``FLAKY`` with the individual outcomes kept;
* a **row** is one check ``(id, variant)``, grouped by area;
* a **cell** is what that check did in that column: outcome, the
  *observation summary*, the documented expectation and whether the two
  agree, the failure message, and a concurrency timeline if recorded.

Observation summary rule: if ``observed["summary"]`` is a string (a short
form the check chose, see ``harness.core.observations.summary``) it is the
summary; otherwise the rest of ``observed`` (without ``timeline``) is
rendered compactly -- a single value on its own, several as ``k=v``
pairs -- and cut to :data:`SUMMARY_LIMIT` characters.

Declared extensions (``harness.core.extensions``, level ``EXTENSION``): rows of
promises beyond the contract come after every contract row, in their own
group (:meth:`Model.areas` lists them last), and each column lists what its
implementation declared.  A column that did not declare a promise is
UNSUPPORTED there, which is a declaration, not a disagreement: such cells
do not make an extension row divergent; two columns that declared it and
differ do.

Divergence rule: a row is *divergent* when at least two columns ran it
and they differ in outcome, or -- for PLATFORM checks and for checks that
chose a summary -- in the summary compared without platform-specific
numbers (``harness.core.observations.comparable``: the ``(WinError 10054)``
detail is not a disagreement).  Columns where the check did not run at
all do not make a row divergent.  Other observations (ports, timings,
counts) vary from run to run and are not compared: a VERSION check that
wants its per-version behaviour compared says so with a summary.

Everything here is pure: no clock, no filesystem.  ``generated`` is the
latest ``finished`` time among the records, so the same records always
give the same report.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from harness.core import extensions
from harness.core.observations import comparable
from harness.core.observations import summary as value_summary
from harness.core.outcomes import BAD, Outcome
from harness.report import platform_notes

REPORT_KIND = "ssconform-report"
REPORT_VERSION = 1

#: Outcomes in vocabulary order; renderers list totals in this order.
OUTCOMES: Tuple[str, ...] = tuple(outcome.value for outcome in Outcome)
BAD_OUTCOMES = frozenset(outcome.value for outcome in BAD)
#: Outcomes shown as failures (the Failures section, the diff's new failures):
#: the bad ones and PRECONDITION_FAILED, whose message names the check it waits on.
FAILING_OUTCOMES = BAD_OUTCOMES | {Outcome.PRECONDITION_FAILED.value}

#: Longest observation summary shown in a cell (characters).
SUMMARY_LIMIT = 80

_OS_ORDER = {"linux": 0, "macos": 1, "windows": 2, "freebsd": 3}
_OS_PRETTY = {"linux": "Linux", "macos": "macOS", "windows": "Windows", "freebsd": "FreeBSD"}
_PYIMPL_ORDER = {"CPython": 0, "PyPy": 1}
_IMPL_ORDER = {"stdlib": 0, "reference": 1}


@dataclasses.dataclass
class Run:
    """One record folded into a column."""

    file: str
    run_id: str
    repeat_index: Optional[int]
    suite_version: str
    started: str
    finished: str
    aborted: Optional[str]
    ci: Optional[dict]


#: The level of declared-extension checks (``harness.core.outcomes.Level.EXTENSION``).
EXTENSION = "EXTENSION"


@dataclasses.dataclass
class Column:
    id: str
    os: str
    os_release: str
    machine: str
    python_implementation: str
    python_version: str
    gil: str
    simulated_absent: Tuple[str, ...]
    impl_name: str
    impl_version: str
    api_version: str
    fingerprint: dict
    runs: List[Run]
    header: List[str] = dataclasses.field(default_factory=list)
    label: str = ""
    #: the extensions the implementation declared (empty in older records)
    extensions: List[str] = dataclasses.field(default_factory=list)
    totals: Dict[str, int] = dataclasses.field(default_factory=dict)
    #: the OS shape the run was reshaped as (harness.shapes), "" for a real run
    shape: str = ""

    @property
    def key(self) -> Tuple[str, ...]:
        return (self.impl_name, self.impl_version, self.python_implementation, self.python_version,
                self.os, self.machine, self.gil, simulated_part(self.simulated_absent, self.shape))

    @property
    def aborted(self) -> List[str]:
        return [run.aborted for run in self.runs if run.aborted]

    @property
    def bad_count(self) -> int:
        return sum(self.totals.get(outcome, 0) for outcome in BAD_OUTCOMES)


@dataclasses.dataclass
class Cell:
    outcome: str
    summary: str
    observed: dict
    documented: Optional[dict]
    agrees: Optional[bool]
    message: str
    expected_outcome: Optional[str]
    expectation_reason: Optional[str]
    duration: float
    timeline: Optional[List[dict]]
    outcomes: List[str]

    @property
    def bad(self) -> bool:
        return self.outcome in FAILING_OUTCOMES


@dataclasses.dataclass
class Row:
    id: str
    variant: str
    area: str
    level: str
    title: str
    clause: Optional[str]
    requires: List[str]
    cells: List[Optional[Cell]]
    topic: Optional[str] = None
    divergent: bool = False
    failing: bool = False
    disagrees: bool = False
    compares_observation: bool = False
    odd: List[bool] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.id}[{self.variant}]" if self.variant else self.id

    @property
    def extension(self) -> bool:
        """A declared-extension check: a promise beyond the contract."""
        return self.level == EXTENSION

    @property
    def note(self) -> Optional[dict]:
        return platform_notes.TOPICS.get(self.topic) if self.topic else None


@dataclasses.dataclass
class Model:
    columns: List[Column]
    rows: List[Row]
    common: List[str]
    suite_versions: List[str]
    schema_version: int
    generated: str

    @property
    def divergent_rows(self) -> List[Row]:
        return [row for row in self.rows if row.divergent]

    @property
    def failing_rows(self) -> List[Row]:
        return [row for row in self.rows if row.failing]

    def areas(self) -> List[Tuple[str, List[Row]]]:
        """Every row by area: the contract's areas, then the extensions'."""
        groups: Dict[str, List[Row]] = {}
        for row in self.rows:
            groups.setdefault(row.area, []).append(row)
        return list(groups.items())

    def topics(self) -> List[str]:
        """Topics explaining divergent rows, in row order, each once."""
        seen: List[str] = []
        for row in self.divergent_rows:
            if row.topic and row.topic not in seen and row.topic in platform_notes.TOPICS:
                seen.append(row.topic)
        return seen

    def totals(self) -> Dict[str, int]:
        total = {outcome: 0 for outcome in OUTCOMES}
        for column in self.columns:
            for outcome, count in column.totals.items():
                total[outcome] = total.get(outcome, 0) + count
        return total

    def to_json(self) -> dict:
        return {
            "kind": REPORT_KIND,
            "report_version": REPORT_VERSION,
            "schema_version": self.schema_version,
            "suite_versions": list(self.suite_versions),
            "generated": self.generated,
            "common": list(self.common),
            "columns": [_column_json(column) for column in self.columns],
            "rows": [_row_json(row, self.columns) for row in self.rows],
        }


def _column_json(column: Column) -> dict:
    data = dataclasses.asdict(column)
    data["simulated_absent"] = list(column.simulated_absent)
    data["key"] = list(column.key)
    return data


def _row_json(row: Row, columns: Sequence[Column]) -> dict:
    data: Dict[str, Any] = {
        "id": row.id,
        "variant": row.variant,
        "area": row.area,
        "level": row.level,
        "extension": row.extension,
        "title": row.title,
        "clause": row.clause,
        "requires": list(row.requires),
        "topic": row.topic,
        "divergent": row.divergent,
        "failing": row.failing,
        "disagrees": row.disagrees,
        "compares_observation": row.compares_observation,
        "odd": [column.id for column, odd in zip(columns, row.odd) if odd],
        "cells": {},
    }
    for column, cell in zip(columns, row.cells):
        if cell is not None:
            data["cells"][column.id] = dataclasses.asdict(cell)
    return data


# --------------------------------------------------------------------------- summaries


@dataclasses.dataclass
class ExtensionLine:
    """One declared extension across the columns (the report's extensions section)."""

    name: str
    check: str
    title: str
    meaning: str
    source: str
    #: per column: "not declared", or the outcomes of its check's variants ("PASS", "FAIL 1/4", ...)
    cells: List[str]
    failing: bool


def extension_lines(model: Model) -> List[ExtensionLine]:
    """Each extension of the vocabulary that a column declared or a row checked, in vocabulary order."""
    by_check: Dict[str, List[Row]] = {}
    for row in model.rows:
        if row.extension:
            by_check.setdefault(row.id, []).append(row)
    lines = []
    for name, entry in extensions.vocabulary().items():
        declared = [name in column.extensions for column in model.columns]
        rows = by_check.get(entry["check"], [])
        if not any(declared) and not rows:
            continue
        cells, failing = [], False
        for index, is_declared in enumerate(declared):
            present = [row.cells[index] for row in rows if row.cells[index] is not None]
            outcomes = [cell.outcome for cell in present]  # type: ignore[union-attr]
            failing = failing or any(cell.bad for cell in present)  # type: ignore[union-attr]
            if not is_declared and all(outcome == Outcome.UNSUPPORTED.value for outcome in outcomes):
                cells.append("not declared")
            elif not outcomes:
                cells.append("declared, not run")
            else:
                counts = {outcome: outcomes.count(outcome) for outcome in outcomes}
                cells.append(", ".join(outcome if count == len(outcomes) else f"{outcome} {count}/{len(outcomes)}"
                                       for outcome, count in counts.items()))
        lines.append(ExtensionLine(name=name, check=entry["check"], title=entry["title"], meaning=entry["meaning"],
                                   source=entry["source"], cells=cells, failing=failing))
    return lines


def shorten(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` on one line, at most ``limit`` characters (``…`` marks a cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "\u2026"


def short_value(value: Any) -> str:
    """A compact rendering of one observed value."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "type" in value and ("errno" in value or "errno_name" in value):
        return value_summary(value)
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def observation_summary(observed: Optional[dict], limit: int = SUMMARY_LIMIT) -> str:
    """The observation summary rule (see the module docstring)."""
    if not observed:
        return ""
    chosen = observed.get("summary")
    if isinstance(chosen, str):
        return shorten(chosen, limit)
    items = [(key, value) for key, value in observed.items() if key not in ("timeline", "summary")]
    if not items:
        return ""
    if len(items) == 1:
        return shorten(short_value(items[0][1]), limit)
    return shorten(", ".join(f"{key}={short_value(value)}" for key, value in items), limit)


def measured_on(row: Row, columns: Sequence[Column], os_key: str) -> List[str]:
    """What ``row`` measured in the columns of one OS (an ``expect`` key), one
    entry per distinct value; when the OS's columns disagree each value
    names its columns, e.g. ``["spins (stdlib)", "idles (reference 1.0)"]``.
    A trailing `` \u26a0`` marks a value that disagrees with the documentation."""
    groups: Dict[str, List[Any]] = {}
    for column, cell in zip(columns, row.cells):
        if cell is None or (platform_notes.normalize_os(column.os) or column.os) != os_key:
            continue
        text = cell.summary if row.compares_observation and cell.summary else cell.outcome
        group = groups.setdefault(text, [[], False])
        group[0].append(" ".join(column.header))
        group[1] = group[1] or cell.agrees is False
    result = []
    for text, (names, disagrees) in groups.items():
        shown = f"{text} ({', '.join(names)})" if len(groups) > 1 else text
        result.append(shown + (" \u26a0" if disagrees else ""))
    return result


# --------------------------------------------------------------------------- keys and labels


def pretty_os(name: str) -> str:
    return _OS_PRETTY.get(name, name)


def column_key(record: dict) -> Tuple[str, ...]:
    """The column a record belongs to (see the module docstring)."""
    impl = record["implementation"]
    fp = record["fingerprint"]
    absent = sorted(fp.get("capabilities", {}).get("simulated_absent", []) or [])
    return (impl["name"], impl["version"], fp["python_implementation"], fp["python_version"],
            fp["os"], fp["machine"], fp.get("gil", "unknown"), simulated_part(absent, shape_of(fp)))


def shape_of(fingerprint: dict) -> str:
    """The OS shape a record was simulated as, or "" (a real run)."""
    return str((fingerprint.get("simulated") or {}).get("shape") or "")


def simulated_part(absent: Sequence[str], shape: str) -> str:
    """The key's last part: what was simulated (an OS shape, absent capabilities), "" for nothing."""
    return ",".join(([f"os-shape:{shape}"] if shape else []) + sorted(absent))


def cell_key(record: dict) -> Tuple[Any, ...]:
    """``column_key`` plus ``options.repeat_index``: two records may never share it."""
    return column_key(record) + (record.get("options", {}).get("repeat_index"),)


def _version_tuple(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:4])


def _column_sort(column: Column) -> tuple:
    return (
        _OS_ORDER.get(column.os, 9), column.os, bool(column.shape), _OS_ORDER.get(column.shape, 9), column.shape,
        column.machine,
        _PYIMPL_ORDER.get(column.python_implementation, 9), column.python_implementation,
        _version_tuple(column.python_version), column.gil,
        _IMPL_ORDER.get(column.impl_name, 9), column.impl_name, column.impl_version,
        column.simulated_absent,
    )


def _impl_label(column: Column) -> str:
    version = column.impl_version or ""
    if not version or column.python_version in version:
        return column.impl_name
    if version.lower().startswith(column.impl_name.lower()):
        return version
    return f"{column.impl_name} {version}"


_LABEL_PARTS = ("os", "machine", "python", "impl", "simulated")


def _label_parts(column: Column) -> Dict[str, str]:
    python = f"{column.python_implementation} {column.python_version}"
    if column.gil == "disabled":
        python += " (free-threaded)"
    if (column.fingerprint or {}).get("subject"):  # --subject-python: the implementation ran there
        python += " (subject agent)"
    simulated = ("simulated: no " + ", no ".join(column.simulated_absent)) if column.simulated_absent else ""
    place = pretty_os(column.os)
    if column.shape:  # never merged with, nor labelled as, a real run on that OS
        place = f"{pretty_os(column.shape)} (simulated on {place})"
    return {"os": place, "machine": column.machine, "python": python,
            "impl": _impl_label(column), "simulated": simulated}


def _assign_labels(columns: List[Column]) -> List[str]:
    """Give each column its header lines (only the parts that vary between
    columns) and a full label; return the parts all columns share."""
    parts = [_label_parts(column) for column in columns]
    varying = {name for name in _LABEL_PARTS
               if len(columns) == 1 or len({part[name] for part in parts}) > 1}
    common = [parts[0][name] for name in _LABEL_PARTS if name not in varying and parts[0][name]]
    for column, part in zip(columns, parts):
        place = " ".join(part[name] for name in ("os", "machine") if name in varying and part[name])
        lines = [place] if place else []
        lines += [part[name] for name in ("python", "impl", "simulated") if name in varying and part[name]]
        column.header = lines or [part["impl"]]
        column.label = " \u00b7 ".join(
            text for text in (f"{part['os']} {part['machine']}".strip(), part["python"], part["impl"],
                              part["simulated"]) if text
        )
    return common


# --------------------------------------------------------------------------- building


def _id_sort(check_id: str) -> tuple:
    area, _, number = check_id.partition("-")
    return (area, int(number) if number.isdigit() else 0, check_id)


def _merge_cell(entries: List[dict]) -> Cell:
    """Fold one check's entries from a column's repeats into a cell."""
    first = entries[0]
    outcomes = [entry["outcome"] for entry in entries]
    outcome = outcomes[0] if len(set(outcomes)) == 1 else Outcome.FLAKY.value
    summaries = []
    for entry in entries:
        text = observation_summary(entry.get("observed"))
        if text not in summaries:
            summaries.append(text)
    summary = summaries[0] if len(summaries) == 1 else shorten("varies: " + " | ".join(summaries))
    bad = [entry for entry in entries if entry["outcome"] in FAILING_OUTCOMES and entry.get("message")]
    message = (bad[0] if bad else first).get("message", "") or ""
    agrees_values = [entry.get("agrees") for entry in entries]
    agrees = False if False in agrees_values else (True if True in agrees_values else None)
    timeline = (first.get("observed") or {}).get("timeline")
    return Cell(
        outcome=outcome,
        summary=summary,
        observed=first.get("observed") or {},
        documented=first.get("documented"),
        agrees=agrees,
        message=message,
        expected_outcome=first.get("expected_outcome"),
        expectation_reason=first.get("expectation_reason"),
        duration=float(sum(entry.get("duration", 0.0) for entry in entries) / len(entries)),
        timeline=timeline if isinstance(timeline, list) and timeline else None,
        outcomes=outcomes,
    )


def _reverse_topic(cells: Iterable[Optional[Cell]]) -> Optional[str]:
    """The topic whose documentation a record's ``documented`` came from."""
    for cell in cells:
        documented = cell.documented if cell else None
        if not documented:
            continue
        os_key = platform_notes.normalize_os(documented.get("os"))
        matches = [
            name for name, info in platform_notes.TOPICS.items()
            if (info["expect"].get(os_key or "") or {}).get("value") == documented.get("value")
            and info["expect"][os_key].get("source") == documented.get("source")
        ]
        if len(matches) == 1:
            return matches[0]
    return None


def _resolve_topic(row: Row) -> Optional[str]:
    topic = platform_notes.topic_for(row.id, row.variant)
    if topic is None:
        topic = _reverse_topic(row.cells)
    if topic is None and row.requires:
        topic = platform_notes.topic_for(row.id, "", row.requires)
    return topic


def signature(row: Row, cell: Cell) -> Tuple[str, Optional[str]]:
    """What two cells of ``row`` must share to agree (see the divergence rule)."""
    return (cell.outcome, comparable(cell.summary) if row.compares_observation else None)


def _compared(row: Row, cell: Optional[Cell]) -> bool:
    """Whether ``cell`` takes part in the row's divergence (see the module doc)."""
    if cell is None:
        return False
    return not (row.extension and cell.outcome == Outcome.UNSUPPORTED.value)


def _judge(row: Row) -> None:
    present = [cell for cell in row.cells if cell is not None and _compared(row, cell)]
    chose_summary = any(isinstance(cell.observed.get("summary"), str) for cell in present)
    row.compares_observation = row.level == "PLATFORM" or chose_summary
    signatures = [signature(row, cell) for cell in present]
    row.divergent = len(present) > 1 and len(set(signatures)) > 1
    row.failing = any(cell.bad for cell in row.cells if cell is not None)
    row.disagrees = any(cell.agrees is False for cell in present)
    # The cells that differ from the most common signature (ties: the first
    # column's wins) are the ones a reader should look at.
    majority = max(signatures, key=lambda sig: (signatures.count(sig), -signatures.index(sig)), default=None)
    row.odd = [cell is not None and _compared(row, cell) and row.divergent and signature(row, cell) != majority
               for cell in row.cells]


def build_model(loaded: Sequence[Tuple[str, dict]]) -> Model:
    """The report model of validated, mutually consistent records.

    ``loaded`` is ``(file name, record)`` pairs; consistency (no duplicate
    runs, one schema version, agreeing fingerprints) is checked by
    :func:`harness.report.merge.check_consistency` before this is called.
    """
    by_column: Dict[Tuple[str, ...], List[Tuple[str, dict]]] = {}
    for name, record in loaded:
        by_column.setdefault(column_key(record), []).append((str(name), record))

    columns: List[Column] = []
    members: Dict[int, List[dict]] = {}
    for group in by_column.values():
        group.sort(key=lambda pair: (pair[1]["options"].get("repeat_index") is not None,
                                     pair[1]["options"].get("repeat_index") or 0, pair[0]))
        name, record = group[0]
        impl, fp = record["implementation"], record["fingerprint"]
        column = Column(
            id="",
            os=fp["os"],
            os_release=fp.get("os_release", ""),
            machine=fp.get("machine", ""),
            python_implementation=fp["python_implementation"],
            python_version=fp["python_version"],
            gil=fp.get("gil", "unknown"),
            simulated_absent=tuple(sorted(fp.get("capabilities", {}).get("simulated_absent", []) or [])),
            impl_name=impl["name"],
            impl_version=impl.get("version", ""),
            api_version=impl.get("api_version", ""),
            extensions=sorted(impl.get("extensions", [])),
            fingerprint=fp,
            shape=shape_of(fp),
            runs=[
                Run(file=member_name, run_id=member["run_id"],
                    repeat_index=member["options"].get("repeat_index"),
                    suite_version=member["suite_version"], started=member["started"],
                    finished=member["finished"], aborted=member.get("aborted"),
                    ci=member["fingerprint"].get("ci"))
                for member_name, member in group
            ],
        )
        columns.append(column)
        members[id(column)] = [member for _, member in group]
    columns.sort(key=_column_sort)
    for index, column in enumerate(columns):
        column.id = f"c{index}"
    common = _assign_labels(columns)

    meta: Dict[Tuple[str, str], dict] = {}
    entries: Dict[Tuple[str, str], Dict[int, List[dict]]] = {}
    for col_index, column in enumerate(columns):
        for record in members[id(column)]:
            for check in record["checks"]:
                key = (check["id"], check.get("variant", ""))
                meta.setdefault(key, check)
                entries.setdefault(key, {}).setdefault(col_index, []).append(check)

    rows: List[Row] = []
    for key in sorted(meta, key=lambda k: (meta[k]["level"] == EXTENSION, meta[k].get("area") or k[0].split("-")[0],
                                           _id_sort(k[0]), k[1])):
        check = meta[key]
        cells: List[Optional[Cell]] = []
        for col_index in range(len(columns)):
            found = entries[key].get(col_index)
            cells.append(_merge_cell(found) if found else None)
        row = Row(
            id=check["id"], variant=check.get("variant", ""),
            area=check.get("area") or check["id"].split("-")[0], level=check["level"],
            title=check.get("title", ""), clause=check.get("clause"),
            requires=list(check.get("requires", [])), cells=cells,
        )
        row.topic = _resolve_topic(row)
        _judge(row)
        rows.append(row)

    for col_index, column in enumerate(columns):
        totals = {outcome: 0 for outcome in OUTCOMES}
        for row in rows:
            cell = row.cells[col_index]
            if cell is not None:
                totals[cell.outcome] = totals.get(cell.outcome, 0) + 1
        column.totals = totals

    records = [record for _, record in loaded]
    return Model(
        columns=columns,
        rows=rows,
        common=common,
        suite_versions=sorted({record["suite_version"] for record in records}),
        schema_version=records[0]["schema_version"] if records else 1,
        generated=max((record["finished"] for record in records), default=""),
    )
