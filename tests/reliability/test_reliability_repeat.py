"""``ssconform run --repeat N`` names a check whose outcome varies as FLAKY and exits 1.

Theory of operation
-------------------
``impls/flaky_every_other_run.py`` is the stdlib except that on every other
pytest process (counted in a file named by ``SSC_FLAKY_COUNTER``) its
``StreamRequestHandler`` has a wrong default, which API-016 catches.  Three
repeats give API-016 the outcomes PASS FAIL PASS: the CLI must print one
FLAKY line naming API-016 with that sequence, exit 1, and say nothing of the
checks whose outcome did not vary; the rendered report must show the cell as
FLAKY.  The control: the same three repeats of the stdlib are not flaky and
exit 0.
"""

from __future__ import annotations

import reliability_support as rs

from harness.core import timeouts

FLAKY_IMPL = rs.IMPLS / "flaky_every_other_run.py"
CHECKS = ("API-016", "API-001", "API-012")


def _repeat(tmp_path, impl):
    out = tmp_path / "out"
    counter = tmp_path / "counter"
    # -n 0: one pytest process per repeat, no xdist workers (which would import the impl too)
    run = rs.ssconform(["run", "--impl", str(impl), "--repeat", "3", "--out", str(out), "-n", "0",
                        "-k", rs.keyword_for(CHECKS)], timeouts.long() * 3,
                       extra_env={"SSC_FLAKY_COUNTER": str(counter)})
    rs.cleanup(run)
    return run, out, counter


def test_repeat_names_the_flaky_check_and_exits_1(tmp_path):
    run, out, counter = _repeat(tmp_path, FLAKY_IMPL)
    assert len(counter.read_text().split()) == 3, "each repeat is its own pytest process"
    assert run.returncode == 1, run.stderr[-3000:]
    flaky = [line.split() for line in run.stderr.splitlines() if line.strip().startswith("FLAKY ")]
    assert len(flaky) == 1, run.stderr[-3000:]
    assert flaky[0][1] == "API-016" and flaky[0][-3:] == ["PASS", "FAIL", "PASS"], flaky
    report = (out / "report.md").read_text(encoding="utf-8")
    row = next(line for line in report.splitlines() if "API-016" in line and "FLAKY" in line)
    assert "API-001" not in row
    assert not any("API-001" in line and "FLAKY" in line for line in report.splitlines())


def test_repeat_of_a_steady_implementation_is_not_flaky(tmp_path):
    run, out, counter = _repeat(tmp_path, "stdlib")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "no outcome varied across 3 repeats" in run.stderr
    assert "FLAKY " not in run.stderr
