"""The arithmetic of ``bench/precision.py`` (README's "Precision of the diagnosis" figures).

Its measurement runs the whole suite ~170 times, which no test can; what decides the published
figures without running a suite is tested here: which outcomes count as collateral, which clean
runs a ratio is against, where clean runs are scheduled, and the summary's shares.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def precision():
    spec = importlib.util.spec_from_file_location("bench_precision", ROOT / "bench" / "precision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(cid, outcome, variant=None, prerequisite=None):
    return {"id": cid, "variant": variant, "outcome": outcome, "prerequisite": prerequisite}


def test_collateral_is_a_bad_outcome_or_a_precondition_naming_an_unnamed_owner(precision):
    checks = [
        _check("UDP-009", "FAIL"),                                     # named: the diagnosis
        _check("UDP-010", "PRECONDITION_FAILED", prerequisite="UDP-009"),  # not named, owner named: precise
        _check("SERVE-001", "PASS"),
        _check("SERVE-002", "TIMEOUT", variant="x"),                   # not named: collateral
        _check("SERVE-003", "PRECONDITION_FAILED", prerequisite="SERVE-007"),  # owner not named: collateral
        _check("SERVE-004", "XPASS"),                                  # an expectation broken: collateral
    ]
    verdict = precision.judge({"UDP-009": "FAIL", "BIND-001": "FAIL"}, checks)
    assert verdict["collateral"] == ["SERVE-002[x]=TIMEOUT", "SERVE-003=PRECONDITION_FAILED(SERVE-007)",
                                     "SERVE-004=XPASS"]
    assert verdict["missed"] == ["BIND-001"]  # named, never failed
    assert verdict["named"] == {"UDP-009": "FAIL"}


def test_a_declared_outcome_other_than_fail_counts_as_the_diagnosis(precision):
    verdict = precision.judge({"FORKING-014": "PRECONDITION_FAILED"},
                              [_check("FORKING-014", "PRECONDITION_FAILED", prerequisite="FORKING-003")])
    assert verdict["missed"] == [] and verdict["collateral"] == []


def test_ratios_are_against_the_median_of_the_nearest_clean_runs(precision):
    cleans = [{"wall": 20.0, "mid": 10.0}, {"wall": 30.0, "mid": 100.0}, {"wall": 22.0, "mid": 40.0},
              {"wall": 60.0, "mid": 400.0}]
    assert precision.nearest_clean(35.0, cleans, 3) == 22.0     # 40, 10, 100 -> 20, 22, 30
    assert precision.nearest_clean(390.0, cleans, 1) == 60.0


def test_every_implementation_has_clean_runs_on_both_sides(precision):
    impls = [Path(f"i{n}.py") for n in range(7)]
    order = precision.schedule(impls, 3)
    assert order[0] is None and order[-1] is None
    assert [p for p in order if p is not None] == impls
    assert order.count(None) == 4  # first, after 3, after 6, last


def test_the_summary_counts_the_aims_as_the_issue_states_them(precision):
    rows = [{"collateral": [], "ratio": 1.0}, {"collateral": ["X=FAIL"], "ratio": 2.0},
            {"collateral": [], "ratio": 2.01}, {"collateral": [], "ratio": 1.5}]
    summary = precision.summarize(rows)
    assert summary["share_without_collateral"] == 0.75
    assert summary["share_within_2x"] == 0.75  # "no run over twice": 2.0 is within, 2.01 is not
    assert summary["ratio_max"] == 2.01 and summary["collateral_max"] == 1


def test_the_machine_load_is_recorded_where_the_os_has_one(precision):
    load = precision._load()
    assert load is None or load >= 0.0
