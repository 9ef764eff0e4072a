"""The committed expectation files of the alternatives: valid, explained, and about checks that exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core import timeouts
from harness.results import expectations

REPO = Path(__file__).resolve().parents[2]
FILES = ("gevent", "eventlet", "eventlet_green", "future", "stdlib")


def _existing(name: str) -> Path:
    path = REPO / "expectations" / f"{name}.toml"
    if not path.is_file():
        pytest.skip(f"{path.name} is not committed yet")
    return path


@pytest.fixture(scope="module")
def suite_checks(tmp_path_factory) -> set:
    """(id, variant) of every check the suite collects, from the plugin's listing."""
    listing = tmp_path_factory.mktemp("listing") / "checks.jsonl"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.checks", "-c",
               str(REPO / "conformance" / "suite.ini"), "--rootdir", str(REPO / "conformance"),
               "-p", "no:cacheprovider", "-q", "--collect-only", "--ssconform-list", str(listing)]
    done = subprocess.run(command, cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=timeouts.long())
    assert listing.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    rows = [json.loads(line) for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {(row["id"], row["variant"]) for row in rows}


@pytest.mark.parametrize("name", FILES)
def test_every_entry_is_explained(name):
    loaded = expectations.load(_existing(name))
    for entry in loaded:
        assert entry.reason.strip() and not entry.reason.startswith("TODO"), f"{entry.location()}: no reason"
        assert len(entry.reason) >= 40, f"{entry.location()}: a reason says what deviates and why"


@pytest.mark.parametrize("name", FILES)
def test_every_entry_names_a_check_of_the_suite(name, suite_checks):
    loaded = expectations.load(_existing(name))
    assert loaded.warnings(suite_checks) == []


def test_stdlib_entries_only_concern_other_interpreters():
    """CPython's own module is the baseline: stdlib.toml may only explain other runtimes (PyPy)
    and CPythons older than 3.9 measured through the subject agent (a ``python`` condition)."""
    for entry in expectations.load(_existing("stdlib")):
        python = entry.conditions.get("python") or ""
        old = python.startswith("<") and tuple(int(p) for p in python.lstrip("<=").split(".")) <= (3, 9)
        assert old or entry.conditions.get("python_implementation") not in (None, "CPython"), entry.location()


def test_a_condition_on_the_fingerprint_selects_the_pypy_entries():
    loaded = expectations.load(_existing("stdlib"))
    if not len(loaded):
        pytest.skip("no PyPy entries")
    entry = next(iter(loaded))
    fp = {"os": "linux", "python_implementation": "PyPy", "python_version": "3.9.16"}
    impl = {"name": "stdlib", "version": "PyPy 3.9.16", "extra": {}}
    assert loaded.lookup(entry.id, entry.variant or "", fp, impl) is not None
    cpython = dict(fp, python_implementation="CPython", python_version="3.9.18")
    assert loaded.lookup(entry.id, entry.variant or "", cpython, dict(impl, version="CPython 3.9.18")) is None


def test_notes_parse_and_name_checks_of_the_suite(suite_checks):
    from harness.implementations import alternatives, available

    notes = alternatives.load_notes(alternatives.DEFAULT_NOTES)
    ids = {check_id for check_id, _ in suite_checks}
    for note in notes:
        assert note.id in ids, f"note for {note.implementation} names no check: {note.id}"
        assert note.implementation in available(), note.implementation
        assert len(note.reason) >= 40, note
