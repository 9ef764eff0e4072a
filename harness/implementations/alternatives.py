"""docs/alternatives.md: where each alternative implementation deviates from the standard library.

Theory of operation
-------------------
An *alternative* is any run record that is not the plain CPython standard
library or ``reference_impl`` on CPython: the gevent and eventlet adapters,
eventlet's green module, ``future``'s backport, and the standard library
and ``reference_impl`` under PyPy.  Each alternative record is compared with
a **baseline** record of the same platform (same OS):

* the baseline implementation is ``stdlib``, except for an alternative that
  *is* ``stdlib`` or ``reference`` under another interpreter, which is
  compared with the same implementation on CPython;
* the baseline interpreter is CPython with the same ``major.minor`` as the
  alternative's Python (PyPy 3.9 is compared with CPython 3.9); when the
  records hold none, the nearest CPython version is used and the page says
  so.

A check *deviates* when its raw outcome (the outcome before expectations:
``XFAIL`` counts as what was expected, ``XPASS`` as ``PASS``) differs from
the baseline's, or when both are ``INFO`` but the PLATFORM observation
(``observed.summary``) differs.  Each deviation is shown with its one-line
reason: the ``expectation_reason`` in the record, else the reason of the
matching entry in ``expectations/<implementation>.toml`` (looked up with the
record's own fingerprint, so the conditions apply), else the first matching
``[[note]]`` of ``docs/alternatives-notes.toml``, else "unexplained".  A
deviation that comes and goes between runs is an expectation entry with
``intermittent = true`` (its PASS is accepted, not XPASS).  Notes explain
what no expectation can state: *observation* differences of PLATFORM
checks (INFO on both sides, so nothing to expect; ``ssconform expectations
update`` would drop such entries), and a deviation seen in one run that an
entry does not cover.  A note names ``implementation``, ``id``, ``reason`` and
optionally ``variant`` (exact, or an ``fnmatch`` pattern such as
``"killed-*"``), ``python_implementation`` and ``link``; the most specific
match wins (exact variant, then pattern, then none; file order breaks ties).
``--strict`` makes unexplained deviations (and ``TODO`` reasons) an error,
so a CI job can insist that every deviation is explained.

Usage::

    python -m harness.implementations.alternatives RECORDS... --out docs/alternatives.md
        [--expectations-dir expectations/] [--notes docs/alternatives-notes.toml] [--strict]

RECORDS are record files or directories (searched recursively), and must
include the baseline records.  The page is deterministic for a given set of
records (sorted sections and rows; no timestamps other than the records').
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from harness.core import tomlfile
from harness.core.outcomes import raw_outcome
from harness.results import records as records_module

UNEXPLAINED = "unexplained"
BASELINE_IMPLS = ("stdlib", "reference")
CHECKOUT = Path(__file__).resolve().parent.parent.parent
DEFAULT_EXPECTATIONS = CHECKOUT / "expectations"
#: Reasons an expectation cannot state: observation differences of PLATFORM
#: checks, and a one-off deviation no entry covers (see the module docstring).
DEFAULT_NOTES = CHECKOUT / "docs" / "alternatives-notes.toml"

#: The raw outcome behind a final one (see the module docstring).
_GOOD = ("PASS", "INFO")


def _python(record: Dict[str, Any]) -> Tuple[int, ...]:
    text = record["fingerprint"]["python_version"]
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _minor(record: Dict[str, Any]) -> Tuple[int, int]:
    version = _python(record) + (0, 0)
    return (version[0], version[1])


def is_baseline(record: Dict[str, Any]) -> bool:
    return (record["fingerprint"]["python_implementation"] == "CPython"
            and record["implementation"]["name"] in BASELINE_IMPLS)


def baseline_for(record: Dict[str, Any], candidates: Sequence[Dict[str, Any]]) -> Tuple[Optional[Dict[str, Any]], bool]:
    """The baseline record for ``record`` and whether it has the same ``major.minor``."""
    name = record["implementation"]["name"]
    wanted = name if name in BASELINE_IMPLS else "stdlib"
    pool = [c for c in candidates if is_baseline(c) and c["implementation"]["name"] == wanted
            and c["fingerprint"]["os"] == record["fingerprint"]["os"] and not c.get("aborted")]
    if not pool:
        return None, False
    target = _minor(record)

    def distance(candidate: Dict[str, Any]) -> Tuple[int, Tuple[int, ...]]:
        minor = _minor(candidate)
        gap = abs((minor[0] - target[0]) * 100 + (minor[1] - target[1]))
        return (gap, tuple(-p for p in _python(candidate)))  # nearest, then newest

    best = min(pool, key=distance)
    return best, _minor(best) == target


def _key(check: Dict[str, Any]) -> Tuple[str, str]:
    return (check["id"], check.get("variant") or "")


def _summary(check: Dict[str, Any]) -> Optional[str]:
    observed = check.get("observed") or {}
    value = observed.get("summary")
    return None if value is None else str(value)


def deviations(record: Dict[str, Any], baseline: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Rows ``{id, variant, title, level, baseline, outcome, kind, check}`` in check order."""
    base = {_key(c): c for c in baseline["checks"]}
    rows = []
    for check in sorted(record["checks"], key=_key):
        other = base.get(_key(check))
        mine = raw_outcome(check)
        theirs = raw_outcome(other) if other is not None else None
        kind = None
        if other is None or theirs is None:  # (theirs is None when other is)
            kind = "not in baseline"
        elif mine != theirs:
            kind = "outcome"
        elif mine == "INFO" and _summary(check) != _summary(other):
            kind = "observation"
        if kind is None:
            continue
        rows.append({
            "id": check["id"], "variant": check.get("variant") or "", "title": check.get("title") or "",
            "level": check.get("level") or "", "baseline": theirs, "outcome": mine, "kind": kind,
            "observed": _summary(check), "baseline_observed": _summary(other) if other else None,
            "check": check,
        })
    return rows


# ------------------------------------------------------------------ reasons --


class NotesError(Exception):
    """A malformed notes file; ``str()`` names the file (and entry)."""


@dataclasses.dataclass(frozen=True)
class Note:
    """A reason for a deviation that no expectation states (an observation difference)."""

    implementation: str
    id: str
    reason: str
    variant: Optional[str] = None  # an fnmatch pattern ("killed-*"); None: every variant
    python_implementation: Optional[str] = None
    link: Optional[str] = None

    def specificity(self) -> int:
        """0 for an exact variant, 1 for a pattern, 2 for every variant (lower wins)."""
        if self.variant is None:
            return 2
        return 1 if any(ch in self.variant for ch in "*?[") else 0

    def matches(self, record: Dict[str, Any], check_id: str, variant: str) -> bool:
        if self.implementation != record["implementation"]["name"] or self.id != check_id:
            return False
        wanted = self.python_implementation
        if wanted is not None and wanted != record["fingerprint"]["python_implementation"]:
            return False
        return self.variant is None or fnmatch.fnmatchcase(variant or "", self.variant)


_NOTE_KEYS = ("implementation", "id", "reason", "variant", "python_implementation", "link")


def load_notes(path: Path) -> List[Note]:
    """The ``[[note]]`` entries of ``path`` (see :data:`DEFAULT_NOTES`)."""
    try:
        data = tomlfile.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomlfile.TOMLDecodeError) as exc:
        raise NotesError(f"{path}: {exc}") from None
    notes = []
    for index, raw in enumerate(data.get("note", [])):
        where = f"{path}: note #{index + 1}"
        unknown = sorted(set(raw) - set(_NOTE_KEYS))
        if unknown:
            raise NotesError(f"{where}: unknown keys {unknown}; known: {', '.join(_NOTE_KEYS)}")
        missing = [key for key in ("implementation", "id", "reason") if not str(raw.get(key, "")).strip()]
        if missing:
            raise NotesError(f"{where}: missing {', '.join(missing)}")
        notes.append(Note(**{key: str(value) for key, value in raw.items()}))
    return notes


class Reasons:
    """Reasons for deviations: the record's, else the expectation file's, else a note's."""

    def __init__(self, directory: Optional[Path], notes: Sequence[Note] = ()):
        self.directory = directory
        self.notes = list(notes)
        self._files: Dict[str, Any] = {}

    def _expectations(self, name: str):
        if name not in self._files:
            loaded = None
            if self.directory is not None:
                path = self.directory / f"{name}.toml"
                if path.is_file():
                    from harness.results import expectations

                    loaded = expectations.load(path)
            self._files[name] = loaded
        return self._files[name]

    def find(self, record: Dict[str, Any], row: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
        """``(reason, link)`` for the deviation ``row`` of ``record``."""
        check = row["check"]
        if check.get("expectation_reason"):
            return check["expectation_reason"], check.get("expectation_link")
        loaded = self._expectations(record["implementation"]["name"])
        if loaded is not None:
            entry = loaded.lookup(row["id"], row["variant"], record["fingerprint"], record["implementation"])
            if entry is not None:
                return entry.reason, entry.link
        matching = [note for note in self.notes if note.matches(record, row["id"], row["variant"])]
        if not matching:
            return None, None
        best = min(matching, key=lambda note: note.specificity())  # stable: file order breaks ties
        return best.reason, best.link


def one_line(text: Optional[str]) -> str:
    """The reason on one line (whitespace collapsed), or ``"unexplained"``."""
    if not text or not text.strip():
        return UNEXPLAINED
    return " ".join(text.split())


# ---------------------------------------------------------------- rendering --


def _cell(text: Any) -> str:
    """Markdown table cell text: no pipes or newlines break the table."""
    return " ".join(str(text).split()).replace("|", "\\|")


def label(record: Dict[str, Any]) -> str:
    impl, fp = record["implementation"], record["fingerprint"]
    extra = impl.get("extra") or {}
    versions = [f"{k} {v}" for k, v in sorted(extra.items())
                if k not in ("monkey_patched", "preimported") and k != impl["name"]]
    name = impl["name"]
    version = impl.get("version") or "unknown"
    head = f"{name} {version}" if not version.startswith(fp["python_implementation"]) else name
    head += f" on {fp['python_implementation']} {fp['python_version']} ({fp['os']}, {fp['machine']})"
    if versions:
        head += f"; {', '.join(versions)}"
    return head


def _sort_key(record: Dict[str, Any]) -> Tuple[Any, ...]:
    fp = record["fingerprint"]
    return (record["implementation"]["name"], record["implementation"].get("version") or "",
            fp["python_implementation"], _python(record), fp["os"])


def _counts(record: Dict[str, Any]) -> str:
    counts = records_module.summarise(record)
    return ", ".join(f"{n} {o}" for o, n in counts.items() if n) or "no checks"


def _raw_counts(record: Dict[str, Any]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for check in record["checks"]:
        outcome = raw_outcome(check)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _duration(record: Dict[str, Any]) -> str:
    import datetime

    try:
        start = datetime.datetime.fromisoformat(record["started"])
        end = datetime.datetime.fromisoformat(record["finished"])
    except (KeyError, TypeError, ValueError):
        return "?"
    return f"{(end - start).total_seconds():.0f} s"


def render(loaded: Sequence[Dict[str, Any]], reasons: Reasons,
           command: Optional[str] = None) -> Tuple[str, List[str]]:
    """The Markdown page and the list of unexplained deviations (``impl: ID[variant]``)."""
    alternatives = sorted((r for r in loaded if not is_baseline(r)), key=_sort_key)
    unexplained: List[str] = []
    out: List[str] = [
        "# Alternative implementations: where they deviate from the standard library",
        "",
        "<!-- GENERATED by harness/implementations/alternatives.py from run records; do not edit by hand. -->",
        "",
        "Each alternative was run through the whole conformance suite (`ssconform run --impl NAME`)"
        " and is compared here with the standard library on CPython of the same Python version and"
        " OS (PyPy with CPython of the same language version; `reference_impl` under PyPy with"
        " `reference_impl` on CPython).  A check is listed when its outcome before expectations"
        " differs from the baseline's, or when a PLATFORM observation differs.  The reason comes"
        " from the implementation's expectation file (`expectations/<name>.toml`; an entry marked"
        " intermittent is a deviation that comes and goes between runs), or, for a PLATFORM"
        " observation difference (which no expectation can state), from"
        " `docs/alternatives-notes.toml`.",
        "",
    ]
    if command:
        out += [f"Regenerate: `{command}`", ""]
    if not alternatives:
        out += ["No alternative records were given.", ""]
        return "\n".join(out), unexplained

    out += ["## Summary", "",
            "| alternative | Python | baseline | outcomes (before expectations) | deviations | unexplained | wall time |",
            "|---|---|---|---|---|---|---|"]
    sections: List[str] = []
    for record in alternatives:
        baseline, exact = baseline_for(record, loaded)
        impl, fp = record["implementation"], record["fingerprint"]
        title = label(record)
        sections += [f"## {title}", ""]
        raw = _raw_counts(record)
        raw_text = ", ".join(f"{raw[o]} {o}" for o in ("PASS", "INFO", "FAIL", "ERROR", "TIMEOUT",
                                                       "UNSUPPORTED", "SKIP") if raw.get(o))
        sections.append(f"* module `{impl['module']}`, API level {impl['api_version']}; "
                        f"{len(record['checks'])} checks: {raw_text or 'none'}")
        sections.append(f"* with expectations: {_counts(record)}; wall time {_duration(record)}; "
                        f"record `{record['run_id']}`")
        if record.get("aborted"):
            sections.append(f"* **aborted**: {_cell(record['aborted'])}")
        if baseline is None:
            sections += ["* no baseline record: every check that did not pass is listed", ""]
            rows = [
                {"id": c["id"], "variant": c.get("variant") or "", "title": c.get("title") or "",
                 "level": c.get("level") or "", "baseline": None, "outcome": raw_outcome(c),
                 "kind": "outcome", "observed": None, "baseline_observed": None, "check": c}
                for c in sorted(record["checks"], key=_key) if raw_outcome(c) not in _GOOD
            ]
            base_text = "none"
        else:
            bfp = baseline["fingerprint"]
            base_text = f"{baseline['implementation']['name']} on {bfp['python_implementation']} {bfp['python_version']}"
            note = "" if exact else " (nearest version in the records: no baseline of the same Python)"
            sections += [f"* baseline: {base_text}{note}", ""]
            rows = deviations(record, baseline)
        explained_missing = 0
        if rows:
            sections += ["| check | level | baseline | here | reason |", "|---|---|---|---|---|"]
            for row in rows:
                reason, link = reasons.find(record, row)
                text = one_line(reason)
                if text == UNEXPLAINED or text.startswith("TODO"):
                    explained_missing += 1
                    name = f"{row['id']}[{row['variant']}]" if row["variant"] else row["id"]
                    unexplained.append(f"{impl['name']} ({fp['python_implementation']} {fp['python_version']}): {name}")
                if link:
                    text += f" ([link]({link}))"
                ident = f"`{row['id']}`" + (f" `[{row['variant']}]`" if row["variant"] else "")
                here, there = row["outcome"], row["baseline"] or "-"
                if row["kind"] == "observation":
                    here = f"INFO: {row['observed']}"
                    there = f"INFO: {row['baseline_observed']}"
                sections.append(f"| {ident} {_cell(row['title'])} | {row['level']} | {_cell(there)} | "
                                f"{_cell(here)} | {_cell(text)} |")
            sections.append("")
        else:
            sections += ["No deviation from the baseline.", ""]
        out.append(f"| {_cell(impl['name'] + ' ' + (impl.get('version') or ''))} | "
                   f"{fp['python_implementation']} {fp['python_version']} | {_cell(base_text)} | "
                   f"{_cell(raw_text)} | {len(rows)} | {explained_missing} | {_duration(record)} |")
    out.append("")
    return "\n".join(out + sections).rstrip() + "\n", unexplained


def build(items: Iterable[str], expectations_dir: Optional[Path] = DEFAULT_EXPECTATIONS,
          command: Optional[str] = None, notes: Optional[Path] = None) -> Tuple[str, List[str]]:
    """Load the records under ``items`` and render the page."""
    loaded = [record for _, record in records_module.load_records(list(items))]
    notes_list = load_notes(notes) if notes is not None and notes.is_file() else []
    return render(loaded, Reasons(expectations_dir, notes_list), command=command)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.implementations.alternatives",
                                     description="Render docs/alternatives.md from run records.")
    parser.add_argument("records", nargs="+", metavar="RECORD_FILE_OR_DIR")
    parser.add_argument("--out", required=True, metavar="FILE", help="the Markdown file ('-': stdout)")
    parser.add_argument("--expectations-dir", default=str(DEFAULT_EXPECTATIONS), metavar="DIR",
                        help="where <implementation>.toml files are (default: the checkout's expectations/)")
    parser.add_argument("--notes", default=str(DEFAULT_NOTES), metavar="FILE",
                        help="[[note]] reasons for observation differences and one-off deviations "
                        "(default: docs/alternatives-notes.toml)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a deviation has no reason (or a TODO reason)")
    args = parser.parse_args(argv)
    directory = Path(args.expectations_dir) if args.expectations_dir else None
    try:
        text, unexplained = build(args.records, directory,
                                  command="python -m harness.implementations.alternatives RECORDS... --out docs/alternatives.md",
                                  notes=Path(args.notes) if args.notes else None)
    except (records_module.RecordError, NotesError) as exc:
        print(f"harness.implementations.alternatives: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # ExpectationError: file:line of a malformed expectations file
        from harness.results.expectations import ExpectationError

        if not isinstance(exc, ExpectationError):
            raise
        print(f"harness.implementations.alternatives: {exc}", file=sys.stderr)
        return 2
    if args.out == "-":
        sys.stdout.write(text)
    else:
        target = Path(args.out)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, target)
        print(f"harness.implementations.alternatives: wrote {target}", file=sys.stderr)
    for item in unexplained:
        print(f"harness.implementations.alternatives: unexplained deviation: {item}", file=sys.stderr)
    return 1 if (args.strict and unexplained) else 0


if __name__ == "__main__":
    raise SystemExit(main())
