"""Acceptance: CPython's own ``test_socketserver`` passes against ``reference_impl``.

Theory of operation
-------------------
For each CPython 3.9-3.13 that :func:`harness.implementations.pythons.find` locates, run
that interpreter's ``Lib/test/test_socketserver.py`` with the name
``socketserver`` bound to ``reference_impl``: a private directory holds a
``socketserver.py`` shim (``sys.modules["socketserver"] = reference_impl``)
and :mod:`cpython_suite_runner`, and ``PYTHONPATH`` is that directory
followed by the repository root.  The runner reports per-test outcomes as
JSON; the test asserts that the shim really was in effect, that tests ran,
and that none failed or errored.

One CPython test is excluded: ``MiscTestCase.test_all`` compares each
public name's ``__module__`` with the literal ``"socketserver"``, while
the reference's classes say ``"reference_impl"``.  The reference's own
``tests/reference_impl/test_refimpl_api.py`` runs the same check with its
own module name.

Two controls prove the harness can tell pass from fail:

* the same runner against the interpreter's real ``socketserver`` (no
  shim, nothing excluded) must pass -- per interpreter;
* a shim that installs a deliberately broken ``reference_impl`` (a request
  refused by ``verify_request`` is never shut down, the bpo-26309 bug)
  must make ``test_shutdown_request_called_if_verify_request_false`` fail.

The runs are independent subprocesses, each with its own working
directory (the suite creates AF_UNIX sockets and log files in the current
directory), bounded by ``timeouts.long()``.  They are started together,
at most two at a time (this machine class has two cores), the first time
any of them is needed.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from harness.core import timeouts
from harness.implementations import pythons

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpython_suite_runner.py")
EXCLUDED = ("MiscTestCase.test_all",)
BROKEN_VICTIM = "MiscTestCase.test_shutdown_request_called_if_verify_request_false"

SHIMS = {
    "reference": """\
import sys
import reference_impl
sys.modules["socketserver"] = reference_impl
""",
    # bpo-26309 regression: a request refused by verify_request() leaks.
    "broken": """\
import sys
import reference_impl


def _handle_request_noblock(self):
    try:
        request, client_address = self.get_request()
    except OSError as exc:
        return exc
    if self.verify_request(request, client_address):
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            self.shutdown_request(request)
            raise
    return None  # BROKEN: no shutdown_request() for a refused request


reference_impl.BaseServer._handle_request_noblock = _handle_request_noblock
sys.modules["socketserver"] = reference_impl
""",
    "stdlib": None,  # no shim: the interpreter's own socketserver
}


def _command(found: str):
    # pythons.find() may answer "py -3.X" (the Windows launcher).
    if os.path.exists(found):
        return [found]
    launcher, _, flag = found.rpartition(" ")
    return [launcher, flag]


def _run(version: str, variant: str) -> dict:
    found = pythons.find(version)
    if found is None:
        return {"status": "no-interpreter"}
    workdir = tempfile.mkdtemp(prefix=f"cpy{version}-{variant}-")
    try:
        shim_dir = os.path.join(workdir, "shim")
        cwd = os.path.join(workdir, "cwd")
        os.mkdir(shim_dir)
        os.mkdir(cwd)
        shutil.copy(RUNNER, shim_dir)
        path = [REPO_ROOT]
        if SHIMS[variant] is not None:
            with open(os.path.join(shim_dir, "socketserver.py"), "w") as handle:
                handle.write(SHIMS[variant])
            path.insert(0, shim_dir)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(path)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONWARNINGS", None)
        result_file = os.path.join(workdir, "result.json")
        command = _command(found) + [os.path.join(shim_dir, "cpython_suite_runner.py"), result_file]
        if variant != "stdlib":
            for suffix in EXCLUDED:
                command += ["--exclude", suffix]
        try:
            proc = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeouts.long()
            )
        except subprocess.TimeoutExpired as exc:
            raise timeouts.HarnessTimeout(
                f"test_socketserver under Python {version}", exc.timeout
            ) from None
        if not os.path.exists(result_file):
            return {
                "status": "crashed",
                "returncode": proc.returncode,
                "stderr": proc.stderr[-4000:],
            }
        with open(result_file) as handle:
            summary = json.load(handle)
        summary["log"] = proc.stderr[-6000:]
        summary["interpreter"] = found
        return summary
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _running_version() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


RUNS = [(version, "reference") for version in pythons.VERSIONS]
RUNS += [(version, "stdlib") for version in pythons.VERSIONS]
RUNS += [(_running_version(), "broken")]


@pytest.fixture(scope="module")
def suite_runs():
    """All runs, started together (two at a time) on first use."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    futures = {run: pool.submit(_run, *run) for run in RUNS}
    yield futures
    pool.shutdown(wait=True)


def _summary(suite_runs, version: str, variant: str) -> dict:
    summary = suite_runs[(version, variant)].result(timeout=timeouts.long() * len(RUNS))
    if summary["status"] == "no-interpreter":
        pytest.skip(f"no CPython {version} interpreter found by harness.implementations.pythons.find")
    if summary["status"] == "no-test-package":
        pytest.skip(f"CPython {version} has no test.test_socketserver (test package not installed)")
    assert summary["status"] == "ran", summary
    return summary


def _problems(summary: dict) -> dict:
    return {
        test_id: outcome
        for test_id, outcome in summary["outcomes"].items()
        if outcome in ("failure", "error", "unexpected-success")
    }


@pytest.mark.parametrize("version", pythons.VERSIONS)
def test_cpython_suite_passes_against_reference_impl(suite_runs, version):
    """CPython X.Y's test_socketserver, minus test_all, passes with reference_impl."""
    summary = _summary(suite_runs, version, "reference")
    assert summary["socketserver_module"] == "reference_impl", summary["socketserver_file"]
    assert summary["tests_run"] >= 25, summary["outcomes"]
    assert [test_id.rsplit(".", 2)[-2:] for test_id in summary["excluded"]] == [
        ["MiscTestCase", "test_all"]
    ]
    assert _problems(summary) == {}, summary["log"]
    assert summary["failures"] == 0 and summary["errors"] == 0, summary["log"]
    passed = sum(1 for outcome in summary["outcomes"].values() if outcome == "ok")
    print(
        f"CPython {summary['python']}: {summary['tests_run']} run, {passed} passed, "
        f"{summary['skipped']} skipped, excluded {len(summary['excluded'])} (test_all)"
    )


@pytest.mark.parametrize("version", pythons.VERSIONS)
def test_control_stdlib_passes_its_own_suite(suite_runs, version):
    """Control: the same runner passes the interpreter's real socketserver, test_all included."""
    summary = _summary(suite_runs, version, "stdlib")
    assert summary["socketserver_module"] == "socketserver"
    assert "reference_impl" not in (summary["socketserver_file"] or "")
    assert summary["excluded"] == []
    assert any(test_id.endswith("MiscTestCase.test_all") for test_id in summary["outcomes"])
    assert _problems(summary) == {}, summary["log"]


def test_control_broken_reference_is_detected(suite_runs):
    """Control: a reference_impl that leaks refused requests fails the suite."""
    summary = _summary(suite_runs, _running_version(), "broken")
    assert summary["socketserver_module"] == "reference_impl"
    problems = _problems(summary)
    assert any(test_id.endswith(BROKEN_VICTIM) for test_id in problems), summary["outcomes"]
    assert summary["failures"] + summary["errors"] >= 1
