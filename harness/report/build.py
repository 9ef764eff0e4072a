"""The report files: merge records, render the three texts, write them all-or-nothing.

Theory of operation
-------------------
:func:`render_report` merges the records strictly (:mod:`harness.report.merge`),
renders the model with the pure renderers (:func:`render_all`: Markdown, HTML,
JSON), and only then touches the output directory.

Writing is all-or-nothing per file: the three files are written into a
temporary directory next to ``out_dir`` (same filesystem; inside it,
hidden, if the parent is not writable), flushed, and moved into place
with :func:`os.replace`.  An error anywhere before that
leaves an existing report byte-for-byte untouched; the temporary
directory is always removed.
"""


from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Union

from harness.report.merge import ReportError, merge
from harness.report.model import Model
from harness.report.render_html import render_html
from harness.report.render_md import render_markdown

PathLike = Union[str, "os.PathLike[str]"]

#: Output file names, keyed as in :func:`render_report`'s result.
FILES = {"md": "report.md", "html": "report.html", "json": "report.json"}


def render_json(model: Model) -> str:
    return json.dumps(model.to_json(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def render_all(model: Model) -> Dict[str, str]:
    """The three report texts, keyed like :data:`FILES` (pure)."""
    return {"md": render_markdown(model), "html": render_html(model), "json": render_json(model)}


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def render_report(inputs: Iterable[PathLike], out_dir: PathLike) -> Dict[str, Path]:
    """Merge the records in ``inputs`` and write report.md, report.html and report.json.

    ``inputs`` are record files or directories of records (``out_dir`` may
    be one of them: its ``report.json`` is recognised and skipped).  Raises
    :class:`~harness.results.records.RecordError` / :class:`ReportError` before
    anything is written.
    """
    texts = render_all(merge(inputs))
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise ReportError(out, "the report output exists and is not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.report-", dir=str(out.parent)))
    except OSError:
        # A read-only parent (out_dir is a mount point, or cwd's parent): stage
        # inside out_dir instead, as a hidden directory record scans skip.
        out.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".report-", dir=str(out)))
    try:
        for key, name in FILES.items():
            _write(staging / name, texts[key])
        out.mkdir(exist_ok=True)
        for name in FILES.values():
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {key: out / name for key, name in FILES.items()}
