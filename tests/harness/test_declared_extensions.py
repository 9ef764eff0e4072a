"""Declared extensions: the vocabulary, declarations, and the EXT checks' two ends.

The broken implementations ``tests/broken/impls/ext_*.py`` prove that each
EXT check fails a declared promise that is not kept; here: the vocabulary
and the EXT checks describe each other, a declaration is validated, the
standard library (which declares nothing) gets UNSUPPORTED "not declared" for
every EXT check, and the reference, which declares all, passes them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import reference_impl
from conformance.checks import test_ext
from harness.core import extensions, timeouts
from harness.implementations import ImplementationError, resolve
from harness.results import records

REPO = Path(__file__).resolve().parents[2]


def _ext_checks():
    found = {}
    for name in dir(test_ext):
        function = getattr(test_ext, name)
        for mark in getattr(function, "pytestmark", []):
            if mark.name == "ssconform_check":
                found[mark.kwargs["id"]] = mark.kwargs
    return found


def test_vocabulary_and_ext_checks_name_each_other():
    checks = _ext_checks()
    assert checks, "no EXT checks found"
    by_check = {entry["check"]: name for name, entry in extensions.vocabulary().items()}
    assert len(by_check) == len(extensions.vocabulary()), "two extensions share a check"
    assert set(by_check) == set(checks)
    for check_id, kwargs in checks.items():
        assert str(kwargs["level"]) == "EXTENSION", check_id
        assert kwargs["clause"] == extensions.clause(by_check[check_id]), check_id


def test_reference_declares_every_extension_it_documents():
    assert reference_impl.__socketserver_extensions__ == frozenset(extensions.vocabulary())
    loaded = resolve("reference")
    assert loaded.extensions == frozenset(extensions.vocabulary())
    assert loaded.describe()["extensions"] == sorted(extensions.vocabulary())
    assert resolve("stdlib").extensions == frozenset()


@pytest.mark.parametrize("declared, complaint", [
    ('frozenset({"prompt-shutdown", "teleport"})', "unknown extension(s) teleport"),
    ('"prompt-shutdown"', "not the string"),
])
def test_a_bad_declaration_is_an_error_naming_it(tmp_path, declared, complaint):
    impl = tmp_path / "declaring.py"
    impl.write_text(textwrap.dedent(f"""\
        from socketserver import *  # noqa: F403
        from socketserver import BaseServer, TCPServer  # noqa: F401
        __socketserver_extensions__ = {declared}
        """), encoding="utf-8")
    with pytest.raises(ImplementationError, match=re.escape(complaint)):
        resolve(str(impl))


def test_any_iterable_of_names_declares():
    module = types.ModuleType("declaring")
    module.__socketserver_extensions__ = ["emfile-backoff"]
    assert extensions.declared_by_module(module) == frozenset({"emfile-backoff"})
    assert extensions.declared_by_module(types.ModuleType("silent")) == frozenset()


def _run_ext(impl: str, out: Path) -> list:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.checks", "-c",
                    str(REPO / "conformance" / "suite.ini"), "--rootdir", str(REPO), "--impl", impl,
                    "--check", "EXT", "--ssconform-out", str(out), "-q", "-p", "no:cacheprovider"],
                   cwd=str(REPO), env=env, capture_output=True, text=True, timeout=timeouts.long())
    (path,) = out.glob("*.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    records.validate(record)
    return record["checks"]


def test_stdlib_is_unsupported_not_declared_and_reference_passes(tmp_path):
    stdlib = _run_ext("stdlib", tmp_path / "stdlib")
    reference = _run_ext("reference", tmp_path / "reference")
    assert {c["id"] for c in stdlib} == {c["id"] for c in reference} == set(_ext_checks())
    assert all(c["outcome"] == "UNSUPPORTED" and "not declared" in c["message"] for c in stdlib), stdlib
    assert all(c["outcome"] == "PASS" for c in reference), [(c["id"], c["variant"], c["outcome"]) for c in reference]
