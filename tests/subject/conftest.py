"""``subject_python``: the host's own interpreter, then every subject-only one found here.

Interpreters are found through :mod:`harness.implementations.pythons` (pyenv, PATH, the
Windows launcher); a missing one is a skip naming it, never a failure.
"""

from __future__ import annotations

import sys

import pytest

from harness.implementations import pythons

_FOUND = {}


def _subjects():
    if not _FOUND:
        _FOUND.update(pythons.find_subjects())
    return _FOUND


@pytest.fixture(params=["host", *pythons.SUBJECT_VERSIONS, "pypy3"])
def subject_python(request):
    if request.param == "host":
        return sys.executable
    path = _subjects().get(request.param)
    if path is None:
        pytest.skip(f"no {request.param} interpreter on this machine (harness.implementations.pythons)")
    return path
