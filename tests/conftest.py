"""Shared by the kit's own tests: pytester, and what makes parallel runs cheap.

Theory of operation
-------------------
``pytester`` drives end-to-end plugin runs (pytest 9 refuses
``pytest_plugins`` below the top-level conftest).

Parallelism.  ``pyproject.toml``'s ``addopts`` run these tests on
pytest-xdist workers by default (``-n``; ``docs/test-timing.md`` says why
that count): most tests wait (for servers, child processes, timeouts) rather
than compute.  Every test keeps to its own ``tmp_path``, binds port 0 and
changes no file of the checkout, so any test may share the machine with any
other.  ``-n 0`` runs them serially.

Shared scenarios.  A module- or session-scoped fixture runs once per xdist
*worker* that needs it, not once per run.  The fixtures in
:data:`SHARED_SCENARIOS` are expensive (a whole conformance-suite run with
probes, CPython's ``test_socketserver`` on every interpreter, a quick
benchmark, ...) and are read by several tests each.  With the default
``--dist loadgroup`` the scheduler below (:class:`SharedScenarioScheduling`)
makes the tests of each such fixture one work unit: they run on one worker,
one after the other, and the scenario runs once, as it does serially.
(xdist's own ``xdist_group`` mark cannot do it here: pytest 9.2 no longer
lets xdist 3.8 rename a collected item, so the mark has no effect.)  Every
other test is its own unit.  A test that uses one of these fixtures outside
the node IDs listed for it is a usage error, so the list cannot go stale.
These are the only tests that do not run in parallel with each other, and
only for that reason; they still run beside all the others.

Order.  xdist hands out the tests (``--dist loadgroup``: one unit per test or
per group) in collection order, a few per worker at first and then one by
one as workers finish.
The longest tests (whole conformance-suite runs in ``tests/reliability``, the
conformance suite against each broken implementation, the nox/tox listings)
are therefore collected first (:data:`LONG_FIRST`, a stable sort: the order
inside each group is unchanged), so that they spread over the workers and
the short tests fill the gaps, instead of one 70 s test starting last and
keeping the run waiting (longest-processing-time-first scheduling).  The
order is only a matter of speed: no test depends on another.

Bytecode.  Many tests start fresh interpreters (about 160 conformance-suite
runs in ``tests/broken`` alone).  Where ``PYTHONDONTWRITEBYTECODE`` is set
(as on the machine these figures were measured on), every one of them would
compile the kit's modules and pytest's assertion-rewritten check modules
again: about a third of a small suite run's CPU time.  The controller
process therefore points ``PYTHONPYCACHEPREFIX`` (Python 3.8+,
https://docs.python.org/3/using/cmdline.html#envvar-PYTHONPYCACHEPREFIX,
honoured by pytest's assertion rewriting too) at a private temporary
directory and lets the child processes write there: the checkout stays free
of ``__pycache__`` as the setting asked, and the directory is removed when
the run ends.  A prefix the user chose is left alone.  xdist workers and
every process they start inherit the environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Optional

import pytest

try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pytest-xdist is a dependency; without it nothing below is called
    LoadScopeScheduling = object  # type: ignore[assignment,misc]

pytest_plugins = ["pytester"]

#: Expensive fixtures shared by several tests: name -> node-ID prefixes of every test that
#: uses it (whole files, where the file's other tests are quick).  See above.
SHARED_SCENARIOS = {
    # ssconform run, both implementations, whole suite, under the leak and socket probes
    "probed_run": ("tests/reliability/test_reliability_leaks.py::",
                   "tests/reliability/test_reliability_security.py::"),
    # CPython's test_socketserver on every interpreter found, stdlib and reference
    "suite_runs": ("tests/reference_impl/test_cpython_suite.py::",),
    # ssconform bench --quick, two rounds
    "quick_run": ("tests/harness/test_bench.py::",),
    # ssconform run -k test_api with its report
    "previous_run": ("tests/reliability/test_reliability_bad_input.py::",),
    # a report rendered and loaded in chromium
    "report_html": ("tests/report/test_chromium.py::",),
    # not a fixture: the module's _RUNS cache, one hanging run per implementation, read by
    # two tests each (no usage check: no fixture name to look for)
    "hang_runs": ("tests/reliability/test_reliability_hangs.py::",),
}

#: Node-ID prefixes of the longest tests, longest group first (docs/test-timing.md).
LONG_FIRST = ("tests/reliability/", "tests/test_matrix_config.py", "tests/broken/")

_PYCACHE_VARS = ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")
_saved_env: dict = {}


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # an xdist worker: the controller did it
        return
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    _saved_env.update({name: os.environ.get(name) for name in _PYCACHE_VARS})
    prefix = tempfile.mkdtemp(prefix="kit-tests-pyc-")  # not a kit prefix (ssc-, ssconform-)
    _saved_env["prefix"] = prefix
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    del os.environ["PYTHONDONTWRITEBYTECODE"]


def pytest_unconfigure(config):
    prefix = _saved_env.pop("prefix", None)
    if prefix is None:
        return
    for name in _PYCACHE_VARS:
        value = _saved_env.pop(name, None)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(prefix, ignore_errors=True)


def _long_rank(nodeid: str) -> int:
    for rank, prefix in enumerate(LONG_FIRST):
        if nodeid.startswith(prefix):
            return rank
    return len(LONG_FIRST)


def shared_scenario(nodeid: str) -> Optional[str]:
    """The SHARED_SCENARIOS fixture whose tests ``nodeid`` belongs to, if any."""
    for name, prefixes in SHARED_SCENARIOS.items():
        if nodeid.startswith(prefixes):
            return name
    return None


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        for name in SHARED_SCENARIOS:
            if name in getattr(item, "fixturenames", ()) and shared_scenario(item.nodeid) != name:
                raise pytest.UsageError(f"tests/conftest.py: {item.nodeid} uses {name}; add it to "
                                        f"SHARED_SCENARIOS[{name!r}] so that its tests share one run")
    items.sort(key=lambda item: _long_rank(item.nodeid))


class SharedScenarioScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with one unit per test, except one per shared scenario."""

    def _split_scope(self, nodeid: str) -> str:
        return shared_scenario(nodeid) or nodeid


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadgroup":  # the default; another --dist is the user's
        return SharedScenarioScheduling(config, log)
    return None
