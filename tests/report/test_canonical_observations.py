"""What reports and ``ssconform diff`` compare carries no measurement noise.

Two runs of the same implementation must not differ in a compared
observation just because a window measured 0.05 s once and 0.047 s the next
time.  The observations a report compares are the PLATFORM checks' summaries
(and summaries a check chose); these must be verdicts (``spins``, ``idles``,
``raises ...``), with raw numbers kept elsewhere in the record.  This runs
the checks that measure time or count loop iterations twice against the
stdlib and compares the records with ``ssconform diff``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from harness.core import timeouts
from harness.report.diff import diff

REPO = Path(__file__).resolve().parent.parent.parent
#: checks whose observations include timings or counts of loop iterations
MEASURING = "SHUTDOWN-011,SHUTDOWN-012,BIND-018,SERVE-008"


def _run(out: Path) -> Path:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.checks",
                    "-c", str(REPO / "conformance" / "suite.ini"), "--rootdir", str(REPO),
                    "--impl", "stdlib", "--check", MEASURING, "--ssconform-out", str(out),
                    "-q", "-p", "no:cacheprovider"],
                   cwd=str(REPO), env=env, capture_output=True, timeout=timeouts.long() * 2)
    (record,) = out.glob("*.json")
    return record


def test_two_runs_compare_equal_and_summaries_are_verdicts(tmp_path):
    first, second = _run(tmp_path / "a"), _run(tmp_path / "b")
    found = diff(first, second)
    changed = [item["check"] for cell in found["cells"] for item in cell["changed"]]
    assert not changed, f"observations that changed between two runs of the stdlib: {changed}"
    for record in (first, second):
        for check in json.loads(record.read_text(encoding="utf-8"))["checks"]:
            if check["level"] != "PLATFORM":
                continue
            text = check["observed"].get("summary")
            assert isinstance(text, str), f"{check['id']}[{check['variant']}] compares no chosen summary"
            assert not re.search(r"\d\.\d", text), f"{check['id']}: a measurement in the summary: {text!r}"
