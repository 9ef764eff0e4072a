"""Expectations: matching, XFAIL/XPASS, stale IDs, errors with file and line, update."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from harness.results import expectations as ex
from harness.results import records
from harness.results.expectations import ExpectationError

REPO = Path(__file__).resolve().parents[2]

LINUX_312 = {"os": "linux", "python_version": "3.12.1", "python_implementation": "CPython",
             "gil": "enabled", "machine": "x86_64", "impl_extra": {"gevent": "24.2.1"}}
MACOS_39 = dict(LINUX_312, os="macos", python_version="3.9.18")
WIN_313 = dict(LINUX_312, os="windows", python_version="3.13.0", machine="AMD64")
GEVENT = {"name": "gevent", "version": "24.2.1", "extra": {"gevent": "24.2.1"}}

SAMPLE = textwrap.dedent(
    """\
    # expectations/gevent.toml
    [[expectation]]
    id = "HANDLER-012"
    outcome = "TIMEOUT"
    reason = "greenlet ids are not pthread_t"
    link = "https://example.invalid/1"
    [expectation.when]
    os = ["linux", "macos"]
    python = ">=3.12"

    [[expectation]]
    id = "TCP-010"
    variant = "ipv6"
    outcome = "FAIL"
    reason = "only the ipv6 variant"

    [[expectation]]
    id = "TCP-010"
    outcome = "ERROR"
    reason = "every other variant"
    [expectation.when]
    impl_version = ">=24,<25"
    impl_extra = {gevent = ">=24"}

    [[expectation]]
    id = "GONE-001"
    outcome = "FAIL"
    reason = "a check that was removed"
    """
)


@pytest.fixture
def exp():
    return ex.loads(SAMPLE, source="gevent.toml")


def test_lookup_conditions_on_os_and_python(exp):
    entry = exp.lookup("HANDLER-012", "", LINUX_312, GEVENT)
    assert entry is not None and entry.outcome == "TIMEOUT" and entry.line == 2
    assert exp.lookup("HANDLER-012", "", MACOS_39, GEVENT) is None  # python too old
    assert exp.lookup("HANDLER-012", "", WIN_313, GEVENT) is None  # wrong OS
    assert exp.lookup("HANDLER-013", "", LINUX_312, GEVENT) is None


def test_variant_specific_entry_wins(exp):
    assert exp.lookup("TCP-010", "ipv6", LINUX_312, GEVENT).outcome == "FAIL"
    assert exp.lookup("TCP-010", "ipv4", LINUX_312, GEVENT).outcome == "ERROR"


def test_impl_version_conditions(exp):
    old = dict(GEVENT, version="23.9.1", extra={"gevent": "23.9.1"})
    assert exp.lookup("TCP-010", "ipv4", LINUX_312, old) is None
    newer = dict(GEVENT, version="25.0")
    assert exp.lookup("TCP-010", "ipv4", LINUX_312, newer) is None
    unknown = dict(GEVENT, version="unknown")
    assert exp.lookup("TCP-010", "ipv4", LINUX_312, unknown) is None


def test_lookup_accepts_a_loaded_implementation(exp):
    from harness.implementations import resolve

    impl = resolve("stdlib")  # version "CPython 3.x.y": no gevent extra -> no match
    assert exp.lookup("TCP-010", "ipv4", LINUX_312, impl) is None
    assert exp.lookup("TCP-010", "ipv6", LINUX_312, impl).outcome == "FAIL"


@pytest.mark.parametrize(
    "actual, expected, final",
    [
        ("TIMEOUT", "TIMEOUT", "XFAIL"),
        ("FAIL", "FAIL", "XFAIL"),
        ("ERROR", "ERROR", "XFAIL"),
        ("PASS", "TIMEOUT", "XPASS"),
        ("INFO", "FAIL", "XPASS"),
        ("FAIL", "TIMEOUT", "FAIL"),  # a different bad outcome stays unexpected
        ("ERROR", "FAIL", "ERROR"),
        ("UNSUPPORTED", "FAIL", "UNSUPPORTED"),
        ("SKIP", "TIMEOUT", "SKIP"),
        ("PASS", "PASS", "PASS"),
        ("FAIL", "PASS", "FAIL"),
        ("PASS", "UNSUPPORTED", "PASS"),
        ("INFO", "INFO", "INFO"),
    ],
)
def test_apply(actual, expected, final):
    entry = ex.Entry(id="TCP-001", outcome=expected, reason="r")
    assert ex.apply(actual, entry) == final
    assert ex.apply(actual, None) == actual


def test_annotate_produces_a_valid_check_entry():
    entry = ex.Entry(id="TCP-001", outcome="TIMEOUT", reason="hangs", link="https://x.invalid")
    check = records.check_entry(id="TCP-001", level="REQUIRED", outcome="TIMEOUT")
    ex.annotate(check, entry)
    assert check["outcome"] == "XFAIL" and check["expected_outcome"] == "TIMEOUT"
    assert check["expectation_reason"] == "hangs" and check["expectation_link"] == "https://x.invalid"
    validator = records._get_validator()
    sub = {"$ref": "#/$defs/check", "$defs": records.SCHEMA["$defs"]}
    assert list(type(validator)(sub).iter_errors(check)) == []


def test_unmatched_ids_warn(exp):
    stale = exp.unmatched(["HANDLER-012", "TCP-010"])
    assert [e.id for e in stale] == ["GONE-001"]
    warnings = exp.warnings(["HANDLER-012", "TCP-010"])
    assert warnings == ["gevent.toml:25: expectation for GONE-001 matches no check in the suite"]
    # with (id, variant) pairs, a variant that does not exist is stale too
    pairs = [("HANDLER-012", ""), ("TCP-010", "ipv4"), ("GONE-001", "")]
    assert [(e.id, e.variant) for e in exp.unmatched(pairs)] == [("TCP-010", "ipv6")]


@pytest.mark.parametrize(
    "version, spec, ok",
    [
        ("3.12.1", ">=3.12", True), ("3.11.9", ">=3.12", False), ("3.12.0", "==3.12", True),
        ("3.12.1", "==3.12", False), ("3.12.1", "==3.12.*", True), ("3.12.1", "3.12", True),
        ("3.13.0rc1", ">=3.13", True), ("3.10.0", ">=3.9,<3.11", True), ("3.11.0", ">=3.9,<3.11", False),
        ("CPython 3.11.7", "<3.12", True), ("3.9.1", "!=3.9.*", False), ("unknown", ">=1", False),
        ("24.2.1", ">24.2", True), ("24.2", "<=24.2.0", True),
    ],
)
def test_version_matches(version, spec, ok):
    assert ex.version_matches(version, spec) is ok


def _error(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ExpectationError) as info:
        ex.load(path)
    return path, info.value


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ('[[expectation]]\nid = "TCP-001"\noutcome = \n', 3, "TOML syntax error"),
        ('[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = "x"\n\n[[expectation]]\nid = "TCP-002"\n'
         'reason = "y"\noutcome = "BROKEN"\n', 9, "unknown outcome 'BROKEN'"),
        ('[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = "x"\nreson = "typo"\n', 5,
         "unknown key 'reson'"),
        ('[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = "x"\n[expectation.when]\n'
         'os = "darwin"\n', 6, "did you mean 'macos'"),
        ('[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = "x"\n[expectation.when]\n'
         'platform = "linux"\n', 6, "unknown condition 'platform'"),
        ('[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = "x"\n[expectation.when]\n'
         'python = "~=3.12"\n', 6, "bad version specifier"),
        ('[[expectation]]\nid = "TCP-001"\noutcome = "XFAIL"\nreason = "x"\n', 3, "unknown outcome"),
        ('# c\n[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\n', 2, "missing 'reason'"),
        ('[[expectation]]\nid = "tcp-1"\noutcome = "FAIL"\nreason = "x"\n', 2, "not a check ID"),
        ('[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = " "\n', 4, "must not be empty"),
        ('\n[expectations]\nid = "TCP-001"\n', 2, "unknown top-level key 'expectations'"),
        ('[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = "x"\n\n'
         '[[expectation]]\nid = "TCP-001"\noutcome = "ERROR"\nreason = "y"\n', 6, "duplicate"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path, text, line, fragment):
    path, error = _error(tmp_path, text)
    assert str(error).startswith(f"{path}:{line}: "), str(error)
    assert fragment in str(error)


def test_unreadable_and_non_utf8(tmp_path):
    with pytest.raises(ExpectationError, match="cannot read"):
        ex.load(tmp_path / "missing.toml")
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'# ok\n# caf\xe9\n')
    with pytest.raises(ExpectationError, match=r"latin1.toml:2: not UTF-8"):
        ex.load(path)


def test_shipped_files_are_valid_and_expect_nothing_of_cpython():
    # CPython's stdlib (3.9+, what the kit runs on) and the reference pass everything; the
    # shipped entries describe PyPy, or Pythons older than 3.9 measured through the subject
    # agent (--subject-python), each conditioned on such a version.
    for name in ("stdlib", "reference"):
        loaded = ex.load(REPO / "expectations" / f"{name}.toml")
        assert "[[expectation]]" in loaded.header  # the header explains the format
        for entry in loaded:
            python = entry.conditions.get("python") or ""
            old = python.startswith("<") and tuple(int(p) for p in python.lstrip("<=").split(".")) <= (3, 9)
            assert entry.conditions.get("python_implementation") == "PyPy" or old, (name, entry.id, entry.when)


def test_toml_round_trip(exp):
    again = ex.loads(exp.to_toml(), source="again.toml")
    strip = [(e.id, e.variant, e.outcome, e.reason, e.link, e.when) for e in exp]
    assert [(e.id, e.variant, e.outcome, e.reason, e.link, e.when) for e in again] == strip


# ------------------------------------------------------------------ update --


def _record(os_name, python, outcomes, impl="gevent", pyimpl="CPython"):
    fp = {"os": os_name, "python_version": python, "python_implementation": pyimpl}
    checks = []
    for check_id, value in outcomes.items():
        check_id, _, variant = check_id.partition("/")
        outcome, expected = (value.split(":") + [None])[:2]
        checks.append({"id": check_id, "variant": variant, "outcome": outcome, "expected_outcome": expected})
    return {"implementation": {"name": impl, "version": "24.2"}, "fingerprint": fp, "checks": checks}


MATRIX = [
    ("linux", "3.9.18"), ("linux", "3.12.1"), ("linux", "3.13.0"),
    ("macos", "3.9.18"), ("macos", "3.12.1"), ("macos", "3.13.0"),
    ("windows", "3.9.18"), ("windows", "3.12.1"), ("windows", "3.13.0"),
]


def _update(rule, existing=None):
    recs = [_record(o, p, rule(o, p)) for o, p in MATRIX]
    return ex.loads(ex.update(recs, existing), source="updated.toml")


def _conds(loaded):
    return {(e.id, e.variant, e.outcome): e.conditions for e in loaded}


def test_update_fails_everywhere_gets_no_condition():
    got = _update(lambda o, p: {"TCP-001": "FAIL", "TCP-002": "PASS"})
    assert _conds(got) == {("TCP-001", None, "FAIL"): {}}
    assert got.entries[0].reason == ex.TODO_REASON


def test_update_os_list_when_it_passed_elsewhere():
    got = _update(lambda o, p: {"TCP-001": "PASS" if o == "linux" else "TIMEOUT"})
    assert _conds(got) == {("TCP-001", None, "TIMEOUT"): {"os": ("macos", "windows")}}


def test_update_python_bounds():
    got = _update(lambda o, p: {"TCP-001": "FAIL" if p.startswith("3.9") else "PASS",
                                "TCP-002": "ERROR" if p.startswith("3.12") else "PASS",
                                "TCP-003": "FAIL" if not p.startswith("3.9") else "PASS"})
    assert _conds(got) == {
        ("TCP-001", None, "FAIL"): {"python": "<3.12"},
        ("TCP-002", None, "ERROR"): {"python": ">=3.12,<3.13"},
        ("TCP-003", None, "FAIL"): {"python": ">=3.12"},
    }


def test_update_os_and_python_combined():
    got = _update(lambda o, p: {"TCP-001": "FAIL" if o == "windows" and not p.startswith("3.9") else "PASS"})
    assert _conds(got) == {("TCP-001", None, "FAIL"): {"os": "windows", "python": ">=3.12"}}


def test_update_keeps_reasons_reads_xfail_and_drops_stale():
    existing = ex.loads(
        '[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = "known"\nlink = "https://l"\n\n'
        '[[expectation]]\nid = "TCP-009"\noutcome = "FAIL"\nreason = "now fixed"\n\n'
        '[[expectation]]\nid = "TCP-005"\noutcome = "FAIL"\nreason = "only on FreeBSD"\n'
        '[expectation.when]\nos = "freebsd"\n',
        source="old.toml",
    )
    got = _update(lambda o, p: {"TCP-001": "XFAIL:FAIL", "TCP-009": "XPASS:FAIL", "TCP-005": "PASS"},
                  existing)
    by_id = {e.id: e for e in got}
    assert set(by_id) == {"TCP-001", "TCP-005"}  # TCP-009 passes everywhere now
    assert (by_id["TCP-001"].reason, by_id["TCP-001"].link) == ("known", "https://l")
    assert by_id["TCP-005"].conditions == {"os": "freebsd"}  # no FreeBSD records: kept
    assert got.header == existing.header or got.header == ex.HEADER


def test_update_variants_and_different_outcomes():
    def rule(o, p):
        return {"TCP-001/ipv4": "PASS", "TCP-001/ipv6": "FAIL" if o == "macos" else "PASS",
                "TCP-002/a": "ERROR", "TCP-002/b": "ERROR",
                "TCP-003": "TIMEOUT" if o == "windows" else ("FAIL" if o == "macos" else "PASS")}

    assert _conds(_update(rule)) == {
        ("TCP-001", "ipv6", "FAIL"): {"os": "macos"},
        ("TCP-002", None, "ERROR"): {},
        ("TCP-003", None, "FAIL"): {"os": "macos"},
        ("TCP-003", None, "TIMEOUT"): {"os": "windows"},
    }


def test_update_falls_back_to_exact_cells():
    flaky = {("linux", "3.12.1"), ("macos", "3.9.18")}
    got = _update(lambda o, p: {"TCP-001": "FAIL" if (o, p) in flaky else "PASS"})
    conds = sorted(tuple(sorted(e.conditions.items())) for e in got)
    assert conds == [
        (("os", "linux"), ("python", "==3.12.1"), ("python_implementation", "CPython")),
        (("os", "macos"), ("python", "==3.9.18"), ("python_implementation", "CPython")),
    ]


def test_update_refuses_mixed_implementations():
    recs = [_record("linux", "3.12.1", {"TCP-001": "FAIL"}, impl=name) for name in ("a", "b")]
    with pytest.raises(ValueError, match="several implementations"):
        ex.update(recs)


def test_update_result_applies_to_the_same_records():
    """What update writes turns every failure in the input into XFAIL and nothing else."""
    def rule(o, p):
        return {"TCP-001": "TIMEOUT" if o != "linux" else "PASS",
                "TCP-002": "FAIL" if p.startswith("3.9") else "PASS"}

    got = _update(rule)
    for o, p in MATRIX:
        rec = _record(o, p, rule(o, p))
        for check in rec["checks"]:
            entry = got.lookup(check["id"], check["variant"], rec["fingerprint"], rec["implementation"])
            final = ex.apply(check["outcome"], entry)
            assert final == ("XFAIL" if check["outcome"] != "PASS" else "PASS"), (o, p, check)


# ------------------------------------------------------------ intermittent --

INTERMITTENT = '''\
[[expectation]]
id = "DISCONNECT-001"
variant = "fin-ForkingTCPServer"
outcome = "TIMEOUT"
reason = "fork shares the hub: sometimes"
intermittent = true

[[expectation]]
id = "TCP-009"
outcome = "FAIL"
reason = "always"
'''


@pytest.mark.parametrize(
    "actual,final",
    [("TIMEOUT", "XFAIL"), ("PASS", "PASS"), ("INFO", "INFO"), ("FAIL", "FAIL"), ("ERROR", "ERROR"),
     ("UNSUPPORTED", "UNSUPPORTED")],
)
def test_intermittent_accepts_the_outcome_or_a_pass(actual, final):
    entry = ex.Entry(id="TCP-001", outcome="TIMEOUT", reason="r", intermittent=True)
    assert ex.apply(actual, entry) == final
    # the same entry without the flag: a pass is XPASS (stale), which fails the run
    if actual in ("PASS", "INFO"):
        assert ex.apply(actual, dataclasses.replace(entry, intermittent=False)) == "XPASS"


def test_intermittent_pass_does_not_fail_a_record():
    loaded = ex.loads(INTERMITTENT, source="eventlet.toml")
    entry = loaded.lookup("DISCONNECT-001", "fin-ForkingTCPServer", {"os": "linux"}, None)
    assert entry is not None and entry.intermittent
    checks = [records.check_entry(id="DISCONNECT-001", variant="fin-ForkingTCPServer", level="PLATFORM",
                                  outcome=outcome) for outcome in ("INFO", "TIMEOUT")]
    stale = records.check_entry(id="TCP-009", level="REQUIRED", outcome="PASS")
    for check in checks:
        ex.annotate(check, entry)
    ex.annotate(stale, loaded.lookup("TCP-009", "", {}, None))
    assert [c["outcome"] for c in checks] == ["INFO", "XFAIL"]
    assert records.unexpected({"checks": checks}) == []
    assert records.unexpected({"checks": checks + [stale]}) == [stale]  # non-intermittent: XPASS


def test_intermittent_loads_round_trips_and_is_validated(tmp_path):
    loaded = ex.loads(INTERMITTENT, source="eventlet.toml")
    assert [e.intermittent for e in loaded] == [True, False]
    assert "intermittent = true" in loaded.to_toml()
    again = ex.loads(loaded.to_toml())
    assert [e.intermittent for e in again] == [True, False]
    path, error = _error(tmp_path, '[[expectation]]\nid = "TCP-001"\noutcome = "FAIL"\nreason = "r"\n'
                         'intermittent = "yes"\n')
    assert error.line == 5 and "true or false" in error.message
    path, error = _error(tmp_path, '[[expectation]]\nid = "TCP-001"\noutcome = "PASS"\nreason = "r"\n'
                         'intermittent = true\n')
    assert error.line == 5 and "needs a bad outcome" in error.message


def test_update_keeps_intermittent_entries_the_records_did_not_confirm():
    existing = ex.loads(INTERMITTENT.replace('variant = "fin-ForkingTCPServer"\n', ""), source="old.toml")
    # this time DISCONNECT-001 passed everywhere: the intermittent entry stays, TCP-009 (not
    # intermittent, now passing) goes
    got = _update(lambda o, p: {"DISCONNECT-001": "PASS:TIMEOUT", "TCP-009": "XPASS:FAIL"}, existing)
    assert [(e.id, e.intermittent, e.reason) for e in got] == [
        ("DISCONNECT-001", True, "fork shares the hub: sometimes")]
    # it timed out on macOS only this time: that does not narrow an intermittent entry
    got = _update(lambda o, p: {"DISCONNECT-001": "XFAIL:TIMEOUT" if o == "macos" else "PASS"}, existing)
    assert [(e.id, e.intermittent, e.conditions) for e in got] == [("DISCONNECT-001", True, {})]


def test_update_does_not_split_an_intermittent_entry_by_variant():
    """A whole-ID intermittent entry seen failing in one variant stays one entry."""
    existing = ex.loads(INTERMITTENT.replace('variant = "fin-ForkingTCPServer"\n', ""), source="old.toml")
    got = _update(lambda o, p: {"DISCONNECT-001/unix": "XFAIL:TIMEOUT", "DISCONNECT-001/inet": "PASS"}, existing)
    assert [(e.id, e.variant, e.intermittent, e.reason) for e in got] == [
        ("DISCONNECT-001", None, True, "fork shares the hub: sometimes")]
    # a different outcome is a new deviation: it gets its own entry
    got = _update(lambda o, p: {"DISCONNECT-001/unix": "FAIL", "DISCONNECT-001/inet": "PASS"}, existing)
    assert sorted((e.variant or "", e.outcome, e.intermittent) for e in got) == [
        ("", "TIMEOUT", True), ("unix", "FAIL", False)]


def test_update_keeps_a_maintainers_condition_the_records_agree_with():
    """Records from Linux alone cannot widen an entry restricted to Linux to every OS."""
    existing = ex.loads('[[expectation]]\nid = "UNIX-004"\noutcome = "FAIL"\nreason = "kernel limit"\n'
                        '[expectation.when]\nos = "linux"\n', source="old.toml")
    linux_only = [_record("linux", "3.12.1", {"UNIX-004": "XFAIL:FAIL"}),
                  _record("linux", "3.13.0", {"UNIX-004": "XFAIL:FAIL"})]
    got = ex.loads(ex.update(linux_only, existing), source="u.toml")
    assert [(e.id, e.conditions) for e in got] == [("UNIX-004", {"os": "linux"})]
    # ...but when it fails on macOS too, the evidence wins: no condition
    got = _update(lambda o, p: {"UNIX-004": "FAIL"}, existing)
    assert [(e.id, e.conditions) for e in got] == [("UNIX-004", {})]


def test_update_keeps_the_header_of_an_empty_existing_file():
    header = "# expectations/x.toml -- nothing deviates (yet)\n#\n" + ex.HEADER
    existing = ex.loads(header, source="x.toml")
    assert len(existing) == 0 and existing.header == header
    text = ex.update([_record("linux", "3.12.1", {"TCP-001": "PASS"})], existing)
    assert text.startswith("# expectations/x.toml -- nothing deviates (yet)\n")


def test_update_keeps_a_non_failing_entry_while_the_records_still_show_it():
    """Records only show failures, so an UNSUPPORTED entry (a capability the patched process
    lacks) is kept while every matching cell is still UNSUPPORTED, and dropped when one is not."""
    existing = ex.loads('[[expectation]]\nid = "SERVE-015"\noutcome = "UNSUPPORTED"\nreason = "no poll"\n',
                        source="old.toml")
    got = _update(lambda o, p: {"SERVE-015": "UNSUPPORTED"}, existing)
    assert [(e.id, e.outcome, e.reason) for e in got] == [("SERVE-015", "UNSUPPORTED", "no poll")]
    got = _update(lambda o, p: {"SERVE-015": "PASS" if o == "linux" else "UNSUPPORTED"}, existing)
    assert list(got) == []


def test_also_lists_other_bad_outcomes_of_an_intermittent_race(tmp_path):
    """``also``: one race, several bad endings (eventlet's forked server loses clients, FAIL,
    or does not stop in time, TIMEOUT); each is XFAIL, a pass stays a pass, an outcome the
    entry does not name is still unexpected."""
    text = ('[[expectation]]\nid = "CONCURRENCY-003"\noutcome = "FAIL"\nreason = "fork shares the hub"\n'
            'intermittent = true\nalso = ["TIMEOUT"]\n')
    entry = ex.loads(text, source="eventlet.toml").lookup("CONCURRENCY-003", "unix", {}, None)
    assert entry is not None and entry.also == ("TIMEOUT",)
    assert [ex.apply(actual, entry) for actual in ("FAIL", "TIMEOUT", "PASS", "ERROR")] == [
        "XFAIL", "XFAIL", "PASS", "ERROR"]
    assert ex.loads(ex.loads(text).to_toml()).lookup("CONCURRENCY-003", "", {}, None).also == ("TIMEOUT",)
    # a run that timed out does not add a second entry next to the one that names TIMEOUT in also
    existing = ex.loads(text, source="old.toml")
    got = _update(lambda o, p: {"CONCURRENCY-003": "XFAIL:TIMEOUT"}, existing)
    assert [(e.id, e.outcome, e.also) for e in got] == [("CONCURRENCY-003", "FAIL", ("TIMEOUT",))]
    for bad, message in (('also = ["TIMEOUT"]\n', "needs intermittent"),):
        _, error = _error(tmp_path, text.replace("intermittent = true\n", "").replace('also = ["TIMEOUT"]\n', bad))
        assert message in error.message
    _, error = _error(tmp_path, text.replace('["TIMEOUT"]', '["PASS"]'))
    assert "other bad outcomes" in error.message
    _, error = _error(tmp_path, text.replace('["TIMEOUT"]', '["FAIL"]'))
    assert "other bad outcomes" in error.message
