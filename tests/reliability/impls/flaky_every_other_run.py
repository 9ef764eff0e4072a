"""FLAKY: on every other pytest process run, StreamRequestHandler gets a default timeout of 5 s.

The run number is kept in a counter file named by the environment variable
``SSC_FLAKY_COUNTER`` (a temporary file of the test): each pytest process
that imports this module appends its pid once, and the number of distinct
pids is the run number.  Processes without pytest loaded (the ``ssconform``
CLI describing the implementation, server processes) do not count.  Runs
1, 3, 5 ... behave like the stdlib; runs 2, 4 ... break API-016.  Without the
variable it is the stdlib unchanged.
"""
# ruff: noqa: F821  (names come from the executed stdlib source)
import os as _os
import socketserver as _stdlib
import sys as _sys

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

FLAKY = ("API-016",)


def _run_number():
    path = _os.environ.get("SSC_FLAKY_COUNTER")
    if not path or "pytest" not in _sys.modules:
        return None
    me = str(_os.getpid())
    with open(path, "a+", encoding="utf-8") as handle:
        handle.seek(0)
        pids = handle.read().split()
        if me not in pids:
            handle.write(me + "\n")
            pids.append(me)
    return pids.index(me) + 1


_RUN = _run_number()
if _RUN is not None and _RUN % 2 == 0:
    StreamRequestHandler.timeout = 5  # the flaky part: a wrong class default on even runs
