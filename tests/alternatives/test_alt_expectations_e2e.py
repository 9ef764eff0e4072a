"""Expectation files end to end: a fake implementation, the real checks, ``ssconform run``'s exit status.

The fake implementation is the running interpreter's socketserver with
``BaseServer`` left out of ``__all__`` (as in the 3.3-era backport), so the
real checks API-001 and API-005 fail and API-002 passes.  Each run selects
those three checks (``--check`` through ``PYTEST_ADDOPTS``, which the CLI
passes on to its pytest process) and reads the verdict from the exit status
and the record, exactly as a maintainer would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.core import timeouts
from harness.results.fingerprint import fingerprint

REPO = Path(__file__).resolve().parents[2]
CHECKS = "API-001,API-002,API-005"

FAKE = textwrap.dedent(
    '''
    """A socketserver whose __all__ lacks BaseServer."""
    import socketserver as _stdlib

    with open(_stdlib.__file__, encoding="utf-8") as _source:
        exec(compile(_source.read(), _stdlib.__file__, "exec"))

    __all__ = [name for name in __all__ if name != "BaseServer"]
    '''
)


@pytest.fixture
def fake(tmp_path) -> Path:
    path = tmp_path / "fake_ss.py"
    path.write_text(FAKE, encoding="utf-8")
    return path


def _entry(check_id: str, when: str = "") -> str:
    text = f'[[expectation]]\nid = "{check_id}"\noutcome = "FAIL"\nreason = "test reason for {check_id}"\n'
    return text + (f"[expectation.when]\n{when}\n" if when else "")


def _ssconform(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTEST_ADDOPTS"] = f"--check {CHECKS}"
    for name in ("SSCONFORM_IMPL", "SSCONFORM_OUT", "SSCONFORM_EXPECTATIONS"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=timeouts.long() * 2)


def _run(fake: Path, out: Path, expectations: Path = None) -> subprocess.CompletedProcess:
    args = ["run", "--impl", str(fake), "--out", str(out), "--no-report"]
    if expectations is not None:
        args += ["--expectations", str(expectations)]
    return _ssconform(*args)


def _outcomes(out: Path) -> dict:
    (path,) = list(out.glob("*.json"))
    record = json.loads(path.read_text(encoding="utf-8"))
    return {c["id"]: (c["outcome"], c["expectation_reason"]) for c in record["checks"]}


def test_expected_failures_are_xfail_and_the_run_passes(fake, tmp_path):
    fp = fingerprint()
    expectations = tmp_path / "fake.toml"
    expectations.write_text(
        _entry("API-001")
        + _entry("API-005", f'os = "{fp["os"]}"\npython_implementation = "{fp["python_implementation"]}"\n'
                 f'python = ">={sys.version_info[0]}.{sys.version_info[1]}"')
        + _entry("ZZZ-999"),
        encoding="utf-8")
    done = _run(fake, tmp_path / "out", expectations)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outcomes = _outcomes(tmp_path / "out")
    assert outcomes["API-001"] == ("XFAIL", "test reason for API-001")
    assert outcomes["API-005"] == ("XFAIL", "test reason for API-005")
    assert outcomes["API-002"] in (("PASS", None), ("INFO", None))
    assert "ZZZ-999" in done.stdout and "matches no check" in done.stdout  # unmatched ID: a warning only


def test_unmet_condition_fails_and_stale_expectation_is_xpass(fake, tmp_path):
    expectations = tmp_path / "fake.toml"
    expectations.write_text(
        _entry("API-001")
        + _entry("API-005", 'python_implementation = "NoSuchPython"')  # does not hold: stays FAIL
        + _entry("API-002"),  # API-002 passes: the expectation is stale
        encoding="utf-8")
    done = _run(fake, tmp_path / "out", expectations)
    assert done.returncode == 1
    outcomes = _outcomes(tmp_path / "out")
    assert outcomes["API-001"][0] == "XFAIL"
    assert outcomes["API-005"] == ("FAIL", None)
    assert outcomes["API-002"] == ("XPASS", "test reason for API-002")
    listed = [line.split() for line in done.stderr.splitlines() if line.startswith("    ")]
    assert sorted(row[:2] for row in listed) == [["FAIL", "API-005"], ["XPASS", "API-002"]]


def test_without_expectations_the_run_fails_and_update_writes_the_file(fake, tmp_path):
    done = _run(fake, tmp_path / "bare")
    assert done.returncode == 1
    listed = sorted(line.split()[1] for line in done.stderr.splitlines() if line.startswith("    FAIL"))
    assert listed == ["API-001", "API-005"]

    target = tmp_path / "fake_ss.toml"
    update = _ssconform("expectations", "update", str(tmp_path / "bare"), "--out", str(target))
    assert update.returncode == 0, update.stderr
    text = target.read_text(encoding="utf-8")
    assert 'id = "API-001"' in text and 'id = "API-005"' in text and "API-002" not in text
    again = _run(fake, tmp_path / "again", target)
    assert again.returncode == 0, again.stderr[-3000:]
    outcomes = _outcomes(tmp_path / "again")
    assert (outcomes["API-001"][0], outcomes["API-005"][0]) == ("XFAIL", "XFAIL")


def test_intermittent_expectations_accept_the_outcome_or_a_pass(fake, tmp_path):
    """`intermittent = true`: API-001 fails (XFAIL), API-002 passes (PASS, not XPASS): exit 0."""
    expectations = tmp_path / "fake.toml"
    expectations.write_text(
        "".join(_entry(check_id).replace('reason = "', 'intermittent = true\nreason = "')
                for check_id in ("API-001", "API-002"))
        + _entry("API-005"),
        encoding="utf-8")
    done = _run(fake, tmp_path / "out", expectations)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outcomes = _outcomes(tmp_path / "out")
    assert outcomes["API-001"] == ("XFAIL", "test reason for API-001")
    assert outcomes["API-002"][0] in ("PASS", "INFO")
    assert outcomes["API-005"][0] == "XFAIL"
