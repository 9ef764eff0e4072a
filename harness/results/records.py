"""Run records: one JSON document per run of the suite, validated both ways.

Theory of operation
-------------------
A *run* is one implementation tested on one interpreter.  Its record (shape
pinned in ``docs/design.md``, "Record shape") is the only thing that leaves
the pytest process: the report, ``diff``, ``expectations update`` and the
CLI's exit status are all computed from records, never from pytest's own
output.  So the record must be trustworthy, and this module makes it so:

* it is **validated when written and when read** against
  ``harness/results/schema/record.schema.json`` (JSON Schema 2020-12, strict: an
  unknown key is an error, outcomes and levels are the closed vocabularies
  of :mod:`harness.core.outcomes`), plus the rules a schema cannot say
  (``(id, variant)`` unique in a record);
* it is **written atomically**: validation happens before the disk is
  touched, the text goes to a temporary file in the target directory, and
  :func:`os.replace` moves it into place, so a reader never sees half a
  record and a failed write leaves nothing behind;
* it is **read as JSON only** (never pickle, never eval), and every way a
  file can be wrong -- unreadable, empty, truncated, not JSON, a merged
  report instead of a record, the wrong shape, written by a newer kit --
  raises one :class:`RecordError` whose message starts with the file name.
  The CLI maps it to exit status 2.

``schema_version`` is checked before the schema: a record from a future kit
is rejected with "written by a newer kit" instead of a confusing list of
schema violations.  Merged reports (``report.json``) carry
``"kind": "ssconform-report"`` at top level and are recognised and skipped
when a directory is scanned.

Lifecycle, as the pytest plugin uses it::

    record = new_record(impl.describe(), fingerprint(impl), options)
    ... checks.append(check_entry(id=..., level=..., outcome=..., ...))
    finish_record(record, checks, aborted=None)
    write_record(record, out_dir)
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from harness import __version__ as SUITE_VERSION
from harness.core import addresses, timeouts
from harness.core.observations import to_jsonable
from harness.core.outcomes import Outcome, unexcused
from harness.results import schema as _schema_pkg

SCHEMA_VERSION = 1
SCHEMA: Dict[str, Any] = _schema_pkg.load("record.schema.json")

#: ``kind`` of a merged report (written by harness.report); never a record.
REPORT_KIND = "ssconform-report"

#: Defaults that :func:`check_entry` fills in; ``id``, ``level`` and ``outcome`` are required.
CHECK_DEFAULTS: Dict[str, Any] = {
    "variant": "",
    "nodeid": "",
    "title": "",
    "clause": None,
    "requires": [],
    "expected_outcome": None,
    "expectation_reason": None,
    "observed": {},
    "expected": None,
    "documented": None,
    "agrees": None,
    "duration": 0.0,
    "message": "",
}
CHECK_REQUIRED = ("id", "level", "outcome")
CHECK_OPTIONAL = ("area", "expectation_link", "prerequisite")

OPTION_DEFAULTS: Dict[str, Any] = {
    "expectations": None,
    "xdist_workers": 0,
    "selection": None,
    "repeat_index": None,
}

_validator = None


class RecordError(Exception):
    """A record could not be read, parsed, validated or written.

    ``str(error)`` is ``"<path>: <reason>"`` so that a person knows which
    file to look at.
    """

    def __init__(self, path: Union[str, os.PathLike], reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _get_validator():
    global _validator
    if _validator is None:
        import jsonschema

        _validator = jsonschema.Draft202012Validator(SCHEMA)
    return _validator


def now() -> str:
    """The current time, ISO-8601 in UTC with microseconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def new_record(implementation: dict, fingerprint: dict, options: dict) -> dict:
    """A record for a run that starts now (``finished`` is set by :func:`finish_record`)."""
    opts = dict(OPTION_DEFAULTS)
    opts["timeout_multiplier"] = timeouts.multiplier()
    opts.update(options or {})
    return {
        "schema_version": SCHEMA_VERSION,
        "suite_version": SUITE_VERSION,
        "run_id": str(uuid.uuid4()),
        "started": now(),
        "finished": None,
        "implementation": to_jsonable(dict(implementation)),
        "fingerprint": to_jsonable(dict(fingerprint)),
        "options": to_jsonable(opts),
        "checks": [],
    }


def finish_record(record: dict, checks: List[dict], aborted: Optional[str] = None) -> dict:
    """Store ``checks``, the finish time and (if the run stopped early) why."""
    record["checks"] = list(checks)
    record["finished"] = now()
    if aborted is not None:
        record["aborted"] = str(aborted)
    else:
        record.pop("aborted", None)
    return record


def check_entry(**fields: Any) -> dict:
    """One ``checks[]`` entry with defaults filled in.

    ``id``, ``level`` and ``outcome`` are required; ``area`` defaults to the
    part of the ID before the dash.  Unknown field names raise
    :class:`TypeError` so a typo in the plugin fails at once rather than as
    a schema error at the end of a run.
    """
    missing = [name for name in CHECK_REQUIRED if name not in fields]
    if missing:
        raise TypeError(f"check_entry() missing required field(s): {', '.join(missing)}")
    known = set(CHECK_REQUIRED) | set(CHECK_OPTIONAL) | set(CHECK_DEFAULTS)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"check_entry() got unknown field(s): {', '.join(unknown)}")
    entry: Dict[str, Any] = {"id": str(fields["id"])}
    entry["area"] = str(fields.get("area") or entry["id"].split("-", 1)[0])
    for name, default in CHECK_DEFAULTS.items():
        # to_jsonable builds new containers, so defaults are never shared.
        entry[name] = to_jsonable(fields.get(name, default))
    entry["level"] = to_jsonable(fields["level"])
    entry["outcome"] = to_jsonable(fields["outcome"])
    for name in ("expectation_link", "prerequisite"):
        if name in fields:
            entry[name] = fields[name]
    # Key order as in the design (readable records).
    order = ["id", "variant", "nodeid", "area", "level", "title", "clause", "requires", "outcome",
             "expected_outcome", "expectation_reason", "expectation_link", "observed", "expected",
             "documented", "agrees", "duration", "message", "prerequisite"]
    return {key: entry[key] for key in order if key in entry}


def _where(error) -> str:
    path = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


def problems(record: Any) -> List[str]:
    """Every reason ``record`` is not a valid record, as readable lines (empty if valid)."""
    if not isinstance(record, dict):
        return [f"not a run record: the top level is a JSON {type(record).__name__}, not an object"]
    if record.get("kind") == REPORT_KIND:
        return ["this is a merged report (kind ssconform-report), not a run record"]
    if "schema_version" not in record:
        return ["not a run record: no schema_version"]
    version = record["schema_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return [
            f"written by a newer kit (schema_version {version}; this kit reads schema_version "
            f"{SCHEMA_VERSION}): upgrade socketserver-conformance to read it"
        ]
    found: List[str] = []
    errors = sorted(_get_validator().iter_errors(record), key=lambda e: list(e.absolute_path))
    for error in errors[:20]:
        found.append(f"{_where(error)}: {error.message}")
    if len(errors) > 20:
        found.append(f"... and {len(errors) - 20} more schema violations")
    checks = record.get("checks")
    if isinstance(checks, list):
        seen: Dict[Tuple[Any, Any], int] = {}
        for index, check in enumerate(checks):
            if not isinstance(check, dict):
                continue
            key = (check.get("id"), check.get("variant"))
            if key in seen:
                found.append(
                    f"checks[{index}]: (id, variant) {key!r} repeats checks[{seen[key]}]"
                )
            else:
                seen[key] = index
    return found


def validate(record: Any, source: Union[str, os.PathLike] = "<memory>") -> None:
    """Raise :class:`RecordError` naming ``source`` unless ``record`` is valid."""
    found = problems(record)
    if found:
        raise RecordError(source, "invalid run record: " + "; ".join(found))


def _safe(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("._")
    return cleaned or "impl"


def default_name(record: dict) -> str:
    """``<impl>-<pyimpl><pyver>-<os>-<run_id8>.json``, e.g. ``stdlib-cpython3.11.7-linux-2f0c1a2b.json``."""
    fp = record.get("fingerprint", {})
    impl = _safe(str(record.get("implementation", {}).get("name", "impl")))
    pyimpl = _safe(str(fp.get("python_implementation", "python")).lower())
    pyver = _safe(str(fp.get("python_version", "")))
    osname = _safe(str(fp.get("os", "unknown")))
    return f"{impl}-{pyimpl}{pyver}-{osname}-{str(record.get('run_id', ''))[:8]}.json"


def dumps(record: dict) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_record(record: dict, directory: Union[str, os.PathLike], name: Optional[str] = None) -> Path:
    """Validate, then atomically write ``record`` into ``directory``; return its path."""
    directory = Path(directory)
    target = directory / (name or default_name(record))
    validate(record, source=target)
    try:
        text = dumps(record)
    except (TypeError, ValueError) as exc:
        raise RecordError(target, f"not serialisable as JSON: {exc}") from None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(directory))
    except OSError as exc:
        raise RecordError(target, f"cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        addresses.unlink_quietly(temp)
        raise RecordError(target, f"cannot write: {exc.strerror or exc}") from None
    except BaseException:
        addresses.unlink_quietly(temp)
        raise
    return target


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse(text: str, source: Union[str, os.PathLike]) -> Any:
    """``text`` as JSON (strict: no NaN/Infinity), errors as :class:`RecordError`."""
    if not text.strip():
        raise RecordError(source, "empty file (an interrupted write?)")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) or _ends_inside(text)
        hint = " -- the file looks truncated" if truncated else ""
        raise RecordError(
            source, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}){hint}"
        ) from None
    except ValueError as exc:
        raise RecordError(source, f"not valid JSON: {exc}") from None


def _ends_inside(text: str) -> bool:
    """Whether ``text`` ends inside a string or an open object/array (a cut-off write)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return in_string or depth > 0


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(path, f"not UTF-8 text (byte {exc.start}): not a run record") from None


def read_record(path: Union[str, os.PathLike]) -> dict:
    """The validated record stored at ``path`` (JSON only), or :class:`RecordError`."""
    path = Path(path)
    record = parse(_read_text(path), path)
    validate(record, source=path)
    return record


def _looks_like_record(data: Any) -> bool:
    return isinstance(data, dict) and "schema_version" in data and data.get("kind") != REPORT_KIND


def load_records(
    paths_or_dirs: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]],
) -> List[Tuple[Path, dict]]:
    """Read records from files and directories.

    A file named explicitly must be a valid record.  A directory is searched
    recursively for ``*.json`` (hidden files, such as the temporary files of
    an in-progress write, are ignored); JSON documents that are not records
    -- a merged ``report.json``, anything without ``schema_version`` -- are
    skipped, but a file that is not JSON at all, or a record that fails
    validation, is an error: a broken record must not silently vanish from a
    report.  Returns ``(path, record)`` pairs, sorted by path, each file once.
    """
    if isinstance(paths_or_dirs, (str, os.PathLike)):
        paths_or_dirs = [paths_or_dirs]
    found: Dict[Path, dict] = {}
    for item in paths_or_dirs:
        path = Path(item)
        if path.is_dir():
            for candidate in sorted(path.rglob("*.json")):
                if any(part.startswith(".") for part in candidate.relative_to(path).parts):
                    continue
                if not candidate.is_file():
                    continue
                data = parse(_read_text(candidate), candidate)
                if not _looks_like_record(data):
                    continue
                validate(data, source=candidate)
                found.setdefault(candidate.resolve(), data)
        elif path.exists():
            found.setdefault(path.resolve(), read_record(path))
        else:
            raise RecordError(path, "no such file or directory")
    return sorted(found.items(), key=lambda pair: str(pair[0]))


def summarise(record: dict) -> Dict[str, int]:
    """Counts per outcome, every outcome present (zeros included), in vocabulary order."""
    counts = {outcome.value: 0 for outcome in Outcome}
    for check in record.get("checks", []):
        counts[check["outcome"]] = counts.get(check["outcome"], 0) + 1
    return counts


def unexpected(record: dict) -> List[dict]:
    """The checks whose outcome makes the run fail (FAIL ERROR TIMEOUT XPASS FLAKY, and a
    PRECONDITION_FAILED whose prerequisite did not fail: :func:`harness.core.outcomes.unexcused`)."""
    return unexcused(record.get("checks", []))


def cell_key(record: dict) -> Tuple[str, str, str, str]:
    """What makes two records the same cell: implementation, OS, Python implementation and version."""
    fp = record["fingerprint"]
    return (record["implementation"]["name"], fp["os"], fp["python_implementation"], fp["python_version"])


def compare_repeats(records: Iterable[dict]) -> List[Dict[str, Any]]:
    """Checks whose outcome varies between records of the same cell (``--repeat``).

    Returns one row per varying ``(cell, id, variant)``:
    ``{"implementation", "os", "python", "id", "variant", "outcomes"}`` where
    ``outcomes`` lists the outcome of each record in ``repeat_index`` order
    (``None`` where a record lacks the check, e.g. an aborted run; absence
    alone does not make a check flaky).
    """
    cells: Dict[Tuple[str, str, str, str], List[dict]] = {}
    for record in records:
        cells.setdefault(cell_key(record), []).append(record)
    rows: List[Dict[str, Any]] = []
    for key in sorted(cells):
        runs = sorted(cells[key], key=lambda r: (r["options"].get("repeat_index") is None,
                                                 r["options"].get("repeat_index") or 0, r["started"]))
        if len(runs) < 2:
            continue
        per_check: Dict[Tuple[str, str], List[Optional[str]]] = {}
        for index, record in enumerate(runs):
            for check in record["checks"]:
                slot = per_check.setdefault((check["id"], check["variant"]), [None] * len(runs))
                slot[index] = check["outcome"]
        for (check_id, variant), outcomes in sorted(per_check.items()):
            if len({o for o in outcomes if o is not None}) > 1:
                rows.append({"implementation": key[0], "os": key[1], "python": f"{key[2]} {key[3]}",
                             "id": check_id, "variant": variant, "outcomes": outcomes})
    return rows


__all__ = [
    "cell_key",
    "compare_repeats",
    "SCHEMA",
    "SCHEMA_VERSION",
    "REPORT_KIND",
    "RecordError",
    "new_record",
    "finish_record",
    "check_entry",
    "problems",
    "validate",
    "default_name",
    "write_record",
    "read_record",
    "load_records",
    "summarise",
    "unexpected",
]
