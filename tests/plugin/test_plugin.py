"""End-to-end tests of conformance.plugin through pytester subprocess runs.

Each test writes a tiny check module (area DEMO) and runs pytest on it in a
fresh process, so the plugin is loaded exactly as users load it (through
the pytest11 entry point) and module state cannot leak between runs.
"""

from __future__ import annotations

import json
import textwrap

import pytest

DEMO = textwrap.dedent(
    '''
    import threading
    import pytest
    from conformance.api import check, verify, REQUIRED, PLATFORM, VERSION
    from harness.core import timeouts
    from harness.core.addresses import UnsupportedFeature

    @check("DEMO-001", REQUIRED, clause="passes")
    def test_pass(observe):
        """A passing REQUIRED check."""
        observe("value", b"abc")

    @check("DEMO-002", PLATFORM, clause="an observation", topic="fin")
    def test_platform(observe):
        """A PLATFORM check records INFO."""
        observe.summary(b"")

    @check("DEMO-003", REQUIRED, clause="fails")
    def test_fail(observe):
        """A failing check."""
        verify(1 == 2, "one", 2, 1)

    @check("DEMO-004", REQUIRED, clause="errors")
    def test_error():
        """A check that breaks."""
        raise RuntimeError("boom")

    @check("DEMO-005", REQUIRED, clause="times out")
    def test_timeout():
        """A harness wait that runs out."""
        raise timeouts.HarnessTimeout("the reply", 0.1)

    @check("DEMO-006", REQUIRED, clause="needs signals", requires=("signals",))
    def test_requires():
        """A check needing a capability."""

    @check("DEMO-007", REQUIRED, clause="found missing late")
    def test_unsupported_late():
        """A capability found missing while running."""
        raise UnsupportedFeature("no IPv6 here", "ipv6")

    @check("DEMO-008", REQUIRED, clause="skipped")
    def test_skip():
        """A skipped check."""
        pytest.skip("not today")

    @check("DEMO-009", REQUIRED, clause="hangs", budget="ABSENCE")
    def test_hang():
        """A check that blocks past its watchdog budget."""
        threading.Event().wait(timeouts.short())

    @pytest.mark.parametrize("kind", ["a", "b"])
    @check("DEMO-010", REQUIRED, clause="variants")
    def test_variants(kind):
        """Two variants under one ID."""
        verify(kind == "a", "kind", "a", kind)
    '''
)

EXPECTED = {
    ("DEMO-001", ""): "PASS",
    ("DEMO-002", ""): "INFO",
    ("DEMO-003", ""): "FAIL",
    ("DEMO-004", ""): "ERROR",
    ("DEMO-005", ""): "TIMEOUT",
    ("DEMO-006", ""): "UNSUPPORTED",
    ("DEMO-007", ""): "UNSUPPORTED",
    ("DEMO-008", ""): "SKIP",
    ("DEMO-009", ""): "TIMEOUT",
    ("DEMO-010", "a"): "PASS",
    ("DEMO-010", "b"): "FAIL",
}


def _record(out_dir):
    files = list(out_dir.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text(encoding="utf-8"))


def _outcomes(record):
    return {(c["id"], c["variant"]): c["outcome"] for c in record["checks"]}


def _run(pytester, *args, env=None):
    for name, value in (env or {}).items():
        pytester._monkeypatch.setenv(name, value)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


@pytest.fixture
def demo(pytester, monkeypatch):
    monkeypatch.delenv("SSCONFORM_IMPL", raising=False)
    monkeypatch.delenv("SSCONFORM_OUT", raising=False)
    monkeypatch.setenv("SSCONFORM_SIMULATE_ABSENT", "signals")
    pytester.makepyfile(test_demo=DEMO)
    return pytester


def test_inert_without_an_implementation(pytester, monkeypatch):
    monkeypatch.delenv("SSCONFORM_IMPL", raising=False)
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    assert "ssconform" not in result.stdout.str()


def test_checks_without_an_implementation_are_a_usage_error(demo):
    result = _run(demo)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "need an implementation" in result.stderr.str()


def test_every_outcome_is_graded_and_recorded(demo, tmp_path):
    out = tmp_path / "records"
    # Signals are simulated absent here (for DEMO-006), which also disarms the
    # SIGALRM watchdog, so the hanging DEMO-009 has a test of its own below.
    result = _run(demo, "--impl", "stdlib", "--ssconform-out", str(out), "--deselect",
                  "test_demo.py::test_hang")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    record = _record(out)
    expected = {key: value for key, value in EXPECTED.items() if key[0] != "DEMO-009"}
    assert _outcomes(record) == expected
    by_id = {(c["id"], c["variant"]): c for c in record["checks"]}
    assert by_id[("DEMO-001", "")]["observed"] == {"value": "b'abc'"}
    assert "[DEMO-003 @ stdlib] one: expected 2, observed 1" in by_id[("DEMO-003", "")]["message"]
    platform = by_id[("DEMO-002", "")]
    assert platform["documented"]["os"] and platform["agrees"] in (True, False)
    assert record["implementation"]["name"] == "stdlib"


def test_watchdog_turns_a_hang_into_timeout(pytester, monkeypatch, tmp_path):
    import signal

    if not hasattr(signal, "setitimer"):
        pytest.skip("no POSIX interval timers on this platform")
    monkeypatch.delenv("SSCONFORM_SIMULATE_ABSENT", raising=False)
    pytester.makepyfile(test_demo=DEMO)
    out = tmp_path / "records"
    result = _run(pytester, "--impl", "stdlib", "--ssconform-out", str(out), "-k", "hang")
    assert _outcomes(_record(out)) == {("DEMO-009", ""): "TIMEOUT"}
    assert "watchdog" in result.stdout.str()


def test_same_outcomes_under_xdist(demo, tmp_path):
    out = tmp_path / "records"
    _run(demo, "--impl", "stdlib", "--ssconform-out", str(out), "-n", "2",
         "--deselect", "test_demo.py::test_hang")
    record = _record(out)
    assert _outcomes(record) == {k: v for k, v in EXPECTED.items() if k[0] != "DEMO-009"}
    assert record["options"]["xdist_workers"] >= 1


def test_option_beats_environment_beats_ini(demo):
    demo.makeini("[pytest]\nssconform_impl = reference\n")
    result = _run(demo, "--collect-only")
    assert "implementation reference" in result.stdout.str()
    result = _run(demo, "--collect-only", env={"SSCONFORM_IMPL": "stdlib"})
    assert "implementation stdlib" in result.stdout.str()
    result = _run(demo, "--collect-only", "--impl", "reference", env={"SSCONFORM_IMPL": "stdlib"})
    assert "implementation reference" in result.stdout.str()


def test_one_implementation_per_process(demo):
    result = _run(demo, "--impl", "stdlib", "--impl", "reference")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "one implementation per pytest" in result.stderr.str()


def test_unknown_implementation_names_what_was_tried(demo):
    result = _run(demo, "--impl", "no_such_impl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "no_such_impl" in err and "available adapters" in err


@pytest.mark.parametrize(
    "source, complaint",
    [
        ('@check("API-001", REQUIRED, clause="x")\ndef test_a():\n    """T."""\n', "must start with DEMO-"),
        ('@check("DEMO-1", REQUIRED, clause="x")\ndef test_a():\n    """T."""\n', "is not AREA-NNN"),
        ('@check("DEMO-001", REQUIRED, clause="x")\ndef test_a():\n    """T."""\n'
         '@check("DEMO-001", REQUIRED, clause="x")\ndef test_b():\n    """T."""\n', "already used"),
        ('@check("DEMO-001", REQUIRED, clause="x")\ndef test_a():\n    pass\n', "has no title"),
        ('@check("DEMO-001", REQUIRED, clause="x", requires=("warp",))\ndef test_a():\n    """T."""\n',
         "unknown capability"),
    ],
)
def test_id_scheme_is_enforced(pytester, monkeypatch, source, complaint):
    monkeypatch.delenv("SSCONFORM_IMPL", raising=False)
    header = "from conformance.api import check, REQUIRED\n"
    pytester.makepyfile(test_demo=header + source)
    result = _run(pytester, "--impl", "stdlib")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert complaint in result.stderr.str()


def test_check_selection_by_id_and_area(demo, tmp_path):
    out = tmp_path / "records"
    _run(demo, "--impl", "stdlib", "--ssconform-out", str(out), "--check", "DEMO-001,DEMO-010")
    assert set(_outcomes(_record(out))) == {("DEMO-001", ""), ("DEMO-010", "a"), ("DEMO-010", "b")}


def test_listing_writes_every_check(demo, tmp_path):
    listing = tmp_path / "checks.jsonl"
    result = _run(demo, "--collect-only", "--ssconform-list", str(listing))
    assert result.ret == pytest.ExitCode.OK
    rows = [json.loads(line) for line in listing.read_text().splitlines()]
    assert {row["id"] for row in rows} == {f"DEMO-{n:03d}" for n in range(1, 11)}
    assert {row["level"] for row in rows} == {"REQUIRED", "PLATFORM"}


def test_expectations_give_xfail_and_stale_ones_xpass(demo, tmp_path):
    expectations = tmp_path / "demo.toml"
    expectations.write_text(textwrap.dedent(
        '''
        [[expectation]]
        id = "DEMO-003"
        outcome = "FAIL"
        reason = "known deviation"

        [[expectation]]
        id = "DEMO-001"
        outcome = "FAIL"
        reason = "was broken once"

        [[expectation]]
        id = "DEMO-999"
        outcome = "FAIL"
        reason = "matches nothing"
        '''
    ))
    out = tmp_path / "records"
    result = _run(demo, "--impl", "stdlib", "--ssconform-out", str(out), "--expectations",
                  str(expectations), "--check", "DEMO-001,DEMO-003")
    outcomes = _outcomes(_record(out))
    assert outcomes == {("DEMO-001", ""): "XPASS", ("DEMO-003", ""): "XFAIL"}
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the stale expectation fails the run
    text = result.stdout.str()
    assert "DEMO-999" in text and "matches no check" in text

    out2 = tmp_path / "records2"
    result = _run(demo, "--impl", "stdlib", "--ssconform-out", str(out2), "--expectations",
                  str(expectations), "--check", "DEMO-003")
    assert _outcomes(_record(out2)) == {("DEMO-003", ""): "XFAIL"}
    assert result.ret == pytest.ExitCode.OK  # an expected failure keeps pytest green


def test_malformed_expectations_are_a_usage_error(demo, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[expectation]]\nid = \n")
    result = _run(demo, "--impl", "stdlib", "--expectations", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "bad.toml" in result.stderr.str()


PRECONDITION_DEMO = textwrap.dedent(
    '''
    from conformance.api import check, REQUIRED
    from harness.core import prerequisites
    from harness.core.prerequisites import PreconditionFailed

    prerequisites.OWNERS["demo_loop"] = ("DEMO-002", "the demo loop runs")

    @check("DEMO-001", REQUIRED, clause="needs the loop")
    def test_needs_the_loop():
        """A check that cannot proceed without another check's behaviour."""
        raise PreconditionFailed("demo_loop", "the loop never ran", timed_out=True)

    @check("DEMO-002", REQUIRED, clause="owns the loop")
    def test_owns_the_loop():
        """The owner of that behaviour."""
        raise PreconditionFailed("demo_loop", "the loop never ran", timed_out=True)
    '''
)


def test_a_broken_prerequisite_is_precondition_failed_except_in_its_owner(pytester, monkeypatch, tmp_path):
    from harness.results import records

    monkeypatch.setenv("SSCONFORM_SIMULATE_ABSENT", "signals")
    pytester.makepyfile(test_demo=PRECONDITION_DEMO)
    out = tmp_path / "records"
    _run(pytester, "--impl", "stdlib", "--ssconform-out", str(out))
    record = _record(out)
    by_id = {c["id"]: c for c in record["checks"]}
    assert (by_id["DEMO-001"]["outcome"], by_id["DEMO-001"]["prerequisite"]) == ("PRECONDITION_FAILED", "DEMO-002")
    assert "precondition DEMO-002 (the demo loop runs) is broken" in by_id["DEMO-001"]["message"]
    assert (by_id["DEMO-002"]["outcome"], by_id["DEMO-002"]["prerequisite"]) == ("TIMEOUT", None)
    # the run fails once, for the owner; without the owner the PRECONDITION_FAILED fails it
    assert [c["id"] for c in records.unexpected(record)] == ["DEMO-002"]
    alone = dict(record, checks=[by_id["DEMO-001"]])
    assert [c["id"] for c in records.unexpected(alone)] == ["DEMO-001"]
