"""Strict merging of run records into one report model.

Theory of operation
-------------------
A report is only as trustworthy as its weakest input, so merging refuses
rather than guesses.  :func:`load` reads every input with
:func:`harness.results.records.load_records` (files must be valid records;
directories are searched recursively and merged ``report.json`` files in
them are skipped), so truncated, non-JSON, wrong-shape and future-version
files are :class:`~harness.results.records.RecordError` naming the file.
:func:`check_consistency` then rejects, with :class:`ReportError` naming
the offending file and the one it clashes with:

* records with different ``schema_version`` values;
* the same ``run_id`` twice (the same record copied twice);
* the same *cell* twice: implementation name and version, Python
  implementation and version, OS, machine (refined by GIL mode and
  simulated-absent capabilities, see ``model.column_key``) and
  ``options.repeat_index`` -- two runs claiming to be the same thing;
* repeats of one column whose fingerprints conflict (apart from CI job
  metadata and the host name hash, which legitimately differ between
  repeat jobs): they did not run on the same platform.

:func:`merge` = load + check + :func:`~harness.report.model.build_model`.
Nothing here writes files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

from harness.report.model import Model, build_model, cell_key, column_key
from harness.results.records import RecordError, load_records

PathLike = Union[str, "os.PathLike[str]"]

#: Fingerprint keys allowed to differ between repeats of one column.
VOLATILE_FINGERPRINT_KEYS = frozenset({"ci", "hostname_hash"})


class ReportError(RecordError):
    """The inputs cannot be merged into one report; ``str()`` starts with the file."""


def load(inputs: Iterable[PathLike]) -> List[Tuple[Path, dict]]:
    """Read and validate every record named by ``inputs`` (files or directories)."""
    inputs = list(inputs) if not isinstance(inputs, (str, os.PathLike)) else [inputs]
    if not inputs:
        raise ReportError("<inputs>", "no record files or directories given")
    loaded = load_records(inputs)
    if not loaded:
        raise ReportError(", ".join(str(item) for item in inputs), "no run records found")
    return loaded


def _describe_cell(key: tuple) -> str:
    impl, impl_version, pyimpl, pyver, os_name, machine, gil, simulated, repeat = key
    text = f"{impl} ({impl_version}) on {pyimpl} {pyver}, {os_name} {machine}"
    if gil != "unknown":
        text += f", GIL {gil}"
    if simulated:
        text += f", simulated {simulated}"
    return text + f", repeat_index {repeat}"


def check_consistency(loaded: Sequence[Tuple[PathLike, dict]]) -> None:
    """Raise :class:`ReportError` unless the records can share one report."""
    versions: Dict[object, PathLike] = {}
    run_ids: Dict[str, PathLike] = {}
    cells: Dict[tuple, PathLike] = {}
    fingerprints: Dict[tuple, Tuple[PathLike, dict]] = {}
    for path, record in loaded:
        version = record.get("schema_version")
        if versions and version not in versions:
            other_version, other_version_path = next(iter(versions.items()))
            raise ReportError(
                path, f"schema_version {version} cannot be merged with schema_version "
                      f"{other_version} of {other_version_path}"
            )
        versions.setdefault(version, path)

        run_id = record["run_id"]
        if run_id in run_ids:
            raise ReportError(path, f"duplicate run: run_id {run_id} is also in {run_ids[run_id]}")
        run_ids[run_id] = path

        key = cell_key(record)
        if key in cells:
            raise ReportError(
                path, f"duplicate run: {_describe_cell(key)} is also in {cells[key]}; "
                      f"merge repeats with distinct --repeat indexes or drop one of them"
            )
        cells[key] = path

        column = column_key(record)
        stable = {k: v for k, v in record["fingerprint"].items() if k not in VOLATILE_FINGERPRINT_KEYS}
        if column in fingerprints:
            other_path, other = fingerprints[column]
            differing = sorted(k for k in set(stable) | set(other) if stable.get(k) != other.get(k))
            if differing:
                raise ReportError(
                    path, f"conflicting fingerprint for the same cell as {other_path}: "
                          f"{', '.join(differing)} differ"
                )
        else:
            fingerprints[column] = (path, stable)


def merge_records(loaded: Sequence[Tuple[PathLike, dict]]) -> Model:
    """Check, then build the model of already loaded ``(path, record)`` pairs."""
    check_consistency(loaded)
    return build_model([(str(path), record) for path, record in loaded])


def merge(inputs: Iterable[PathLike]) -> Model:
    """Load, check and build: the report model of record files and directories."""
    return merge_records(load(inputs))
