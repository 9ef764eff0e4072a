"""One matrix everywhere: pyproject, harness.implementations.pythons, nox, tox and CI agree.

Theory of operation
-------------------
The Python axis of the matrix has one source of truth, the
``Programming Language :: Python :: 3.X`` classifiers in ``pyproject.toml``.
These tests read it and compare it with every other place that names
Python versions: :data:`harness.implementations.pythons.VERSIONS`, the sessions that
``nox -l`` lists, the environments that ``tox -l`` lists, and the matrices of
``.github/workflows/conformance.yml`` and ``ci.yml``.  ``nox`` and ``tox`` run
as subprocesses of the running interpreter (``python -m nox``), bounded by
:func:`harness.core.timeouts.long`; when one is not installed (they are in the
``test`` and ``dev`` extras) its tests skip with the reason.

Free-threaded builds (``3.14t``, ``3.15t``) have no version classifier of
their own: the ``Programming Language :: Python :: Free Threading``
classifier adds one for every version from 3.14 on (nox's rule, and
:data:`harness.implementations.pythons.FREE_THREADED`'s), and they appear
in nox, tox and the workflows beside the classifier versions; the PyPy
version of the workflows is :data:`harness.implementations.pythons.PYPY`.

A last test makes nox look for Python 3.9 on a ``PATH`` and ``HOME`` where
there is none, and proves that a missing interpreter is skipped with a
message, exit status 0, rather than an error or a download.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Dict, List

import pytest

from harness import shapes
from harness.core import timeouts
from harness.implementations import pythons

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
NOXFILE = ROOT / "noxfile.py"
TOX_INI = ROOT / "tox.ini"
CONFORMANCE_YML = ROOT / ".github" / "workflows" / "conformance.yml"
CI_YML = ROOT / ".github" / "workflows" / "ci.yml"
IMPLS = ("stdlib", "reference")
SHAPES = ("windows", "macos")  # the OS-shaped cells (harness/shapes/*.toml)

CLASSIFIER = re.compile(r"^Programming Language :: Python :: (3\.\d+)$")


def _load_toml(path: pathlib.Path) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10
        import tomli as tomllib
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def classifier_versions(pyproject: dict) -> List[str]:
    """The ``3.X`` versions named by the trove classifiers, in order."""
    found = []
    for classifier in pyproject.get("project", {}).get("classifiers", []):
        match = CLASSIFIER.match(classifier)
        if match:
            found.append(match.group(1))
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


@pytest.fixture(scope="module")
def versions() -> List[str]:
    if not PYPROJECT.is_file():
        pytest.skip("pyproject.toml is not beside tests/ (installed copy?)")
    found = classifier_versions(_load_toml(PYPROJECT))
    assert found, "pyproject.toml names no Python 3.X classifiers"
    return found


def _tool(module: str, *args: str, env: Dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed in this environment (pip install {module})")
    # `tox -l` probes an interpreter for every environment (pyenv shims are
    # slow on a loaded machine): two LONG budgets, nox needs far less.
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeouts.long() * 2,
        cwd=str(ROOT),
        env=shapes.unshaped_env(env),  # tox and nox pick their POSIX code by sys.platform
        check=False,
    )


# ------------------------------------------------------------- one source of truth


def test_classifiers_agree_with_harness_pythons(versions):
    assert tuple(versions) == pythons.VERSIONS


def test_free_threaded_builds_have_a_classifier():
    classifiers = _load_toml(PYPROJECT)["project"]["classifiers"]
    assert pythons.FREE_THREADED, "no free-threaded build in the matrix"
    assert any(c.startswith("Programming Language :: Python :: Free Threading") for c in classifiers)
    for tag in pythons.FREE_THREADED:
        assert tag.endswith("t") and tag[:-1] in pythons.VERSIONS, tag
    if importlib.util.find_spec("nox") is not None:
        import nox.project

        from_nox = nox.project.python_versions(_load_toml(PYPROJECT))
        assert [v for v in from_nox if v.endswith("t")] == list(pythons.FREE_THREADED)


def test_classifier_parsing_notices_a_missing_version():
    doctored = {"project": {"classifiers": [
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: Implementation :: PyPy",
    ]}}
    assert classifier_versions(doctored) == ["3.9", "3.10"]
    assert tuple(classifier_versions(doctored)) != pythons.VERSIONS


# ------------------------------------------------------------------------------ nox


def _nox_sessions() -> List[str]:
    if not NOXFILE.is_file():
        pytest.skip("noxfile.py is not beside tests/")
    done = _tool("nox", "-l", "-f", str(NOXFILE))
    assert done.returncode == 0, done.stdout + done.stderr
    names = []
    for line in done.stdout.splitlines():
        match = re.match(r"^[*-] (\S+)", line)
        if match:
            names.append(match.group(1))
    return names


def test_nox_lists_the_matrix(versions):
    sessions = _nox_sessions()
    every = versions + list(pythons.FREE_THREADED)
    expected = [f"tests-{v}" for v in every]
    expected += [f"conformance-{v}({impl})" for v in every for impl in IMPLS]
    expected += [f"pypy({impl})" for impl in IMPLS]
    expected += [f"shaped({impl}-{shape})" for impl in IMPLS for shape in SHAPES]
    expected += [f"tests_shaped({shape})" for shape in SHAPES]
    expected += [f"subject({tag})" for tag in (*pythons.SUBJECT_VERSIONS, "pypy3")]
    expected += [f"equivalence-{v}" for v in versions[:5]]
    expected += ["alternatives", "report", "matrix", "lint", "typing"]
    assert sorted(sessions) == sorted(expected)


def test_nox_skips_a_missing_interpreter(tmp_path):
    """No python3.9 anywhere: the cell is skipped with a message, exit 0."""
    bare_path = os.pathsep.join(p for p in ("/usr/bin", "/bin") if os.path.isdir(p))
    if os.name == "nt" or shutil.which("python3.9", path=bare_path):
        pytest.skip("needs a POSIX machine whose system directories hold no python3.9")
    # A copy of the noxfile, so that its interpreter links (.nox/_interpreters)
    # are made beside the copy and the tree's own are left alone.
    shutil.copy(NOXFILE, tmp_path / "noxfile.py")
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    env = {
        "PATH": bare_path,
        "HOME": str(tmp_path),
        "PYENV_ROOT": str(tmp_path / "no-pyenv"),
        "LANG": "C.UTF-8",
    }
    done = _tool(
        "nox", "-f", str(tmp_path / "noxfile.py"), "--envdir", str(tmp_path / "nox"),
        "-s", "conformance-3.9(stdlib)", env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "skipped" in output.lower() and "3.9" in output, output


# ------------------------------------------------------------------------------ tox


def _env_without_pyenv_shims() -> Dict[str, str]:
    """This environment with pyenv's shim directories taken off PATH.  `tox -l` probes an
    interpreter for every environment it lists; the shim of a version that is not active
    answers "command not found" only after running pyenv twice (30-50 s for the whole list
    on a loaded machine, against 5 s without shims).  The names listed do not depend on it."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    kept = [p for p in path if not (os.path.basename(p) == "shims" and "pyenv" in p)]
    return dict(os.environ, PATH=os.pathsep.join(kept))


def test_tox_lists_the_matrix(versions):
    if not TOX_INI.is_file():
        pytest.skip("tox.ini is not beside tests/")
    done = _tool("tox", "-l", "-c", str(TOX_INI), env=_env_without_pyenv_shims())
    assert done.returncode == 0, done.stdout + done.stderr
    envs = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    compact = [v.replace(".", "") for v in versions + list(pythons.FREE_THREADED)]
    expected = [f"py{v}-tests" for v in compact]
    expected += [f"py{v}-conformance-{impl}" for v in compact for impl in IMPLS]
    expected += [f"pypy3-conformance-{impl}" for impl in IMPLS]
    expected += [f"shaped-{impl}-{shape}" for impl in IMPLS for shape in SHAPES]
    expected += [f"subject-{tag}" for tag in ("py27", "py36", "py37", "py38", "pypy3")]
    expected += ["report", "lint", "typing"]
    assert sorted(envs) == sorted(expected)


def test_tox_skips_missing_interpreters():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(TOX_INI, encoding="utf-8")
    assert parser.getboolean("tox", "skip_missing_interpreters")


# ------------------------------------------------------------------------------- CI


def _flow_list(text: str, key: str) -> List[str]:
    """The inline list ``key: [a, "b"]`` of a workflow, as strings."""
    match = re.search(rf"^\s+{re.escape(key)}: (\[.*\])\s*$", text, re.M)
    assert match, f"no inline list for {key!r}"
    items = match.group(1).strip("[]").split(",")
    return [item.strip().strip("'\"") for item in items if item.strip()]


def test_conformance_workflow_matrix(versions):
    text = CONFORMANCE_YML.read_text(encoding="utf-8")
    python = _flow_list(text, "python")
    cpython = [v for v in python if not v.startswith("pypy") and not v.endswith("t")]
    assert cpython == versions
    assert [v for v in python if v.endswith("t")] == list(pythons.FREE_THREADED)
    assert [v for v in python if v.startswith("pypy")] == list(pythons.PYPY), "PyPy cells"
    assert "allow-prereleases: true" in text, "3.15 needs prereleases until it is final"
    assert _flow_list(text, "impl") == list(IMPLS)
    assert _flow_list(text, "os") == ["ubuntu-latest", "windows-latest", "macos-latest"]
    assert "fail-fast: false" in text


def test_ci_workflow_covers_oldest_and_newest(versions):
    python = _flow_list(CI_YML.read_text(encoding="utf-8"), "python")
    assert versions[0] in python and versions[-1] in python
    assert set(python) <= set(versions) | set(pythons.FREE_THREADED)
    assert set(pythons.FREE_THREADED) & set(python), "the kit's own tests on a free-threaded build"


def test_flow_list_parsing_is_exact():
    text = '    python: ["3.9", "3.10", pypy3.10]\n'
    assert _flow_list(text, "python") == ["3.9", "3.10", "pypy3.10"]
    assert json.dumps(_flow_list(text, "python")) != json.dumps(["3.9", "3.10"])
