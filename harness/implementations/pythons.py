"""Find the Python interpreters of the local matrix, robustly.

Theory of operation
-------------------
The matrix (nox, tox, ``.ci/run``, the CPython-suite test of
``reference_impl``) wants "every CPython 3.9-3.15 on this machine" without
the user first running ``pyenv global ...``.  For each wanted version we
try, in order: ``pythonX.Y`` on ``PATH``; pyenv's
``$PYENV_ROOT/versions/X.Y.*/bin/pythonX.Y`` (newest patch first, and
``~/.pyenv`` when ``PYENV_ROOT`` is unset); the Windows launcher
``py -X.Y``.  A candidate counts only if running it reports the wanted
version, so a stale shim is not mistaken for an interpreter.  Missing
versions are reported, never fatal: callers skip them with a message.

A free-threaded build is asked for as ``X.Yt`` (:data:`FREE_THREADED`):
its executable is ``pythonX.Yt`` (pyenv: ``versions/X.Y.*t/``, the launcher:
``py -X.Yt``), and it must report the ``t`` too, i.e. be built with
``Py_GIL_DISABLED``, so a GIL build never stands in for it nor the other
way round.  Prereleases count (3.15 before it is final).

The list of versions lives in one place, :data:`VERSIONS`, and matches the
classifiers in ``pyproject.toml`` (a test keeps them equal).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Optional

from harness.core import timeouts

VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15")
#: Free-threaded builds (``Py_GIL_DISABLED``): every version from 3.14 on, the
#: rule ``nox.project.python_versions`` applies to the ``Free Threading``
#: classifier (3.13t was experimental and is left out).
FREE_THREADED = tuple(f"{v}t" for v in VERSIONS if tuple(int(p) for p in v.split(".")) >= (3, 14))
#: Interpreters that cannot host the kit but can be its *subject* through the agent
#: (``--subject-python``, harness/subject/): they are found like the others.
SUBJECT_VERSIONS = ("2.7", "3.6", "3.7", "3.8")
#: PyPy versions of the GitHub matrix (locally: whatever ``pypy3`` is).
PYPY = ("pypy3.11",)

_TAG = ("import sys, sysconfig; print('%d.%d' % sys.version_info[:2] + "
        "('t' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''))")


def running_tag() -> str:
    """``X.Y`` of the running interpreter, ``X.Yt`` for a free-threaded build."""
    import sysconfig

    return "{}.{}".format(*sys.version_info[:2]) + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "")


def _reports_version(executable: str, version: str, extra: Optional[List[str]] = None) -> bool:
    command = [executable] + (extra or []) + ["-c", _TAG]
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=timeouts.short() * 2, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def _patch_key(path: str) -> tuple:
    name = os.path.basename(os.path.dirname(os.path.dirname(path)))
    parts = []
    for piece in name.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else -1)
    return tuple(parts)


def _pyenv_candidates(version: str) -> List[str]:
    roots = [os.environ.get("PYENV_ROOT"), os.path.join(os.path.expanduser("~"), ".pyenv")]
    base, threaded = version.rstrip("t"), "t" if version.endswith("t") else ""
    found: List[str] = []
    for root in roots:
        if not root:
            continue
        pattern = os.path.join(root, "versions", f"{base}.*{threaded}", "bin", f"python{version}")
        found.extend(sorted(glob.glob(pattern), key=_patch_key, reverse=True))
    return found


def find(version: str) -> Optional[str]:
    """The path of a CPython ``version`` (``X.Y`` or ``X.Yt``) interpreter, or ``None``."""
    if running_tag() == version and sys.implementation.name == "cpython":
        return sys.executable
    candidates: List[str] = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    candidates.extend(_pyenv_candidates(version))
    for candidate in candidates:
        if _reports_version(candidate, version):
            return candidate
    launcher = shutil.which("py")
    if launcher and _reports_version(launcher, version, [f"-{version}"]):
        return f"{launcher} -{version}"
    return None


def find_all(versions=VERSIONS + FREE_THREADED) -> Dict[str, Optional[str]]:
    """``{version: path or None}`` for every wanted version."""
    return {version: find(version) for version in versions}


def find_pypy() -> Optional[str]:
    """Debian's ``pypy3`` (or any ``pypy3``/``pypy3.11`` on PATH), or ``None``."""
    for name in ("pypy3", *PYPY, "pypy"):
        path = shutil.which(name)
        if path:
            return path
    return None


def find_subjects() -> Dict[str, Optional[str]]:
    """``{tag: path or None}`` for the subject-only interpreters and ``pypy3``."""
    found = {version: find(version) for version in SUBJECT_VERSIONS}
    found["pypy3"] = find_pypy()
    return found


if __name__ == "__main__":  # pragma: no cover - a convenience for shell scripts
    for wanted, path in find_all().items():
        print(f"{wanted}\t{path or 'missing'}")
