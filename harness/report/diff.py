"""Compare two runs, or two merged reports: what broke, what got fixed, what changed.

Theory of operation
-------------------
Each side is a record file or a merged ``report.json``.  Both are reduced
to the same shape -- columns, each with ``{check key: cell}`` -- by going
through the report model (a record is merged alone and serialised with
``Model.to_json()``; a ``report.json`` already has that form), so a cell
means the same thing here as in the report.

Columns are paired, in this order: two single-column sides are compared
with each other whatever they are (the common "before/after" use); else
columns with the same key (implementation, Python, OS, machine, GIL,
simulation) are paired; then columns that differ only in patch versions,
when that pairing is unambiguous.  Unpaired columns are listed.

Per pair of cells, with *bad* = FAIL ERROR TIMEOUT XPASS FLAKY PRECONDITION_FAILED
(the last does not fail a run when its prerequisite fails, but a check that
could not run is not a pass):

``new_failures``  bad in b, not bad (or absent) in a;
``fixes``         bad in a, present and not bad in b;
``changed``       any other change of outcome, or of the observation
                  summary for checks that compare observations
                  (PLATFORM, or a check-chosen summary);
``added``/``removed``  checks present on one side only.

:func:`format_diff` renders the result as plain text for a terminal;
record strings are cut to one line and stripped of control characters so
a record cannot move the cursor or recolour the terminal.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, NoReturn, Optional, Tuple, Union

from harness.report.merge import ReportError
from harness.report.model import FAILING_OUTCOMES, REPORT_VERSION, build_model, shorten
from harness.results.records import REPORT_KIND, RecordError, parse, validate

PathLike = Union[str, "os.PathLike[str]"]
CATEGORIES = ("new_failures", "fixes", "changed", "added", "removed")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _read(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise RecordError(path, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RecordError(path, f"not UTF-8 text (byte {exc.start})") from None
    return parse(text, path)


def _invalid(path: Path, reason: str) -> NoReturn:
    raise ReportError(path, f"not a valid merged report: {reason}")


def _require(condition: bool, path: Path, reason: str) -> None:
    if not condition:
        _invalid(path, reason)


def _report_columns(data: dict, path: Path) -> List[dict]:
    """Columns of a ``report.json`` as ``{"key", "label", "cells": {check: cell}}``."""
    _require(data.get("report_version") == REPORT_VERSION, path,
             f"report_version {data.get('report_version')!r} (this kit reads {REPORT_VERSION})")
    columns, rows = data.get("columns"), data.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):  # spelt out: narrows the types
        _invalid(path, "columns and rows must be lists")
    result: Dict[str, dict] = {}
    for column in columns:
        _require(isinstance(column, dict) and isinstance(column.get("id"), str)
                 and isinstance(column.get("key"), list) and len(column["key"]) == 8,
                 path, "a column lacks id or its 8-part key")
        result[column["id"]] = {"key": tuple(str(part) for part in column["key"]),
                                "label": str(column.get("label", column["id"])), "cells": {}}
    for row in rows:
        _require(isinstance(row, dict) and isinstance(row.get("id"), str)
                 and isinstance(row.get("cells"), dict), path, "a row lacks id or cells")
        variant = str(row.get("variant") or "")
        check = f"{row['id']}[{variant}]" if variant else row["id"]
        for column_id, cell in row["cells"].items():
            _require(column_id in result and isinstance(cell, dict) and isinstance(cell.get("outcome"), str),
                     path, f"row {check} has a cell for an unknown column or without outcome")
            result[column_id]["cells"][check] = {
                "outcome": cell["outcome"],
                "summary": str(cell.get("summary") or ""),
                "message": str(cell.get("message") or ""),
                "title": str(row.get("title") or ""),
                "compares": bool(row.get("compares_observation")),
            }
    return list(result.values())


def load_side(path: PathLike) -> Tuple[str, List[dict]]:
    """``(label, columns)`` of a record file or a merged ``report.json``."""
    path = Path(path)
    data = _read(path)
    if isinstance(data, dict) and data.get("kind") == REPORT_KIND:
        return str(path), _report_columns(data, path)
    validate(data, source=path)
    model = build_model([(str(path), data)])
    return str(path), _report_columns(model.to_json(), path)


def _loose(key: Tuple[str, ...]) -> Tuple[str, ...]:
    impl, _impl_version, pyimpl, pyver, *rest = key
    return (impl, pyimpl, ".".join(pyver.split(".")[:2]), *rest)


def _pair(a: List[dict], b: List[dict]) -> Tuple[List[Tuple[dict, dict]], List[dict], List[dict]]:
    if len(a) == 1 and len(b) == 1:
        return [(a[0], b[0])], [], []
    pairs: List[Tuple[dict, dict]] = []
    rest_a, rest_b = list(a), list(b)
    for column in list(rest_a):
        match = next((other for other in rest_b if other["key"] == column["key"]), None)
        if match is not None:
            pairs.append((column, match))
            rest_a.remove(column)
            rest_b.remove(match)
    for column in list(rest_a):
        candidates = [other for other in rest_b if _loose(other["key"]) == _loose(column["key"])]
        twins = [other for other in rest_a if _loose(other["key"]) == _loose(column["key"])]
        if len(candidates) == 1 and len(twins) == 1:
            pairs.append((column, candidates[0]))
            rest_a.remove(column)
            rest_b.remove(candidates[0])
    return pairs, rest_a, rest_b


def _side(cell: Optional[dict]) -> Optional[dict]:
    if cell is None:
        return None
    return {"outcome": cell["outcome"], "summary": cell["summary"], "message": cell["message"]}


def _compare(a: dict, b: dict) -> Dict[str, List[dict]]:
    found: Dict[str, List[dict]] = {name: [] for name in CATEGORIES}
    for check in sorted(set(a["cells"]) | set(b["cells"])):
        ca, cb = a["cells"].get(check), b["cells"].get(check)
        item = {"check": check, "title": (cb or ca)["title"], "a": _side(ca), "b": _side(cb)}
        bad_a = ca is not None and ca["outcome"] in FAILING_OUTCOMES
        bad_b = cb is not None and cb["outcome"] in FAILING_OUTCOMES
        if ca is None:
            found["added"].append(item)
            if bad_b:
                found["new_failures"].append(item)
        elif cb is None:
            found["removed"].append(item)
        elif bad_b and not bad_a:
            found["new_failures"].append(item)
        elif bad_a and not bad_b:
            found["fixes"].append(item)
        elif ca["outcome"] != cb["outcome"] or (
            (ca["compares"] or cb["compares"]) and ca["summary"] != cb["summary"]
        ):
            found["changed"].append(item)
    return found


def diff(a: PathLike, b: PathLike) -> dict:
    """What changed from ``a`` to ``b`` (record files or merged ``report.json``), per cell."""
    label_a, columns_a = load_side(a)
    label_b, columns_b = load_side(b)
    pairs, only_a, only_b = _pair(columns_a, columns_b)
    cells = []
    counts = {name: 0 for name in CATEGORIES}
    for column_a, column_b in pairs:
        found = _compare(column_a, column_b)
        for name in CATEGORIES:
            counts[name] += len(found[name])
        cells.append({"a": column_a["label"], "b": column_b["label"],
                      "key_a": list(column_a["key"]), "key_b": list(column_b["key"]), **found})
    return {
        "a": label_a,
        "b": label_b,
        "cells": cells,
        "only_in_a": [column["label"] for column in only_a],
        "only_in_b": [column["label"] for column in only_b],
        "counts": counts,
    }


def _clean(text: Any, limit: int = 100) -> str:
    return shorten(_CONTROL.sub("?", str(text)), limit)


def _state(side: Optional[dict]) -> str:
    if side is None:
        return "(absent)"
    return side["outcome"] + (f" {json.dumps(_clean(side['summary'], 60))}" if side["summary"] else "")


def format_diff(d: dict) -> str:
    """``diff()``'s result as plain text (one line per finding)."""
    lines = [f"diff {_clean(d['a'], 200)} -> {_clean(d['b'], 200)}"]
    titles = {"new_failures": "new failures", "fixes": "fixes", "changed": "changed",
              "added": "checks added", "removed": "checks removed"}
    for cell in d["cells"]:
        same = cell["a"] == cell["b"]
        lines.append("")
        lines.append(f"== {_clean(cell['b'], 160)}" + ("" if same else f"  (was {_clean(cell['a'], 160)})"))
        if not any(cell[name] for name in CATEGORIES):
            lines.append("  no differences")
        for name in CATEGORIES:
            items = cell[name]
            if not items:
                continue
            lines.append(f"  {titles[name]} ({len(items)}):")
            for item in items:
                text = f"    {_clean(item['check'], 60)}  {_state(item['a'])} -> {_state(item['b'])}"
                if name == "new_failures" and item["b"] and item["b"]["message"]:
                    text += f"  -- {_clean(item['b']['message'], 120)}"
                lines.append(text)
    for name, label in (("only_in_a", "only in a"), ("only_in_b", "only in b")):
        for column in d[name]:
            lines.append(f"{label}: {_clean(column, 160)}")
    counts = d["counts"]
    lines.append("")
    lines.append(", ".join(f"{counts[name]} {titles[name]}" for name in CATEGORIES))
    return "\n".join(lines)
