"""The report model: observation summaries, the divergence rule, labels, topics."""

from __future__ import annotations

import report_samples as rs

from harness.report.merge import merge_records
from harness.report.model import observation_summary, shorten
from harness.report.platform_notes import documented_for


def _model(*recs):
    return merge_records([(f"r{i}.json", rec) for i, rec in enumerate(recs)])


def _row(model, check_id, variant=""):
    return next(r for r in model.rows if r.id == check_id and r.variant == variant)


def test_observation_summary_rule():
    assert observation_summary({"summary": "b''", "other": 1}) == "b''"
    assert observation_summary({"value": "x"}) == "x"
    assert observation_summary({"a": 1, "b": [1, 2]}) == "a=1, b=[1,2]"
    assert observation_summary({"timeline": [{"start": 0}]}) == ""
    assert observation_summary({}) == "" and observation_summary(None) == ""
    exc = {"type": "ConnectionResetError", "errno": 104, "errno_name": "ECONNRESET", "winerror": None,
           "message": "reset"}
    assert observation_summary({"error": exc}) == "ConnectionResetError [ECONNRESET]"
    long = observation_summary({"summary": "x" * 500})
    assert len(long) == 80 and long.endswith("\u2026")
    assert shorten("a\nb\tc") == "a b c"


def _platform(summary, os_name="linux", variant="rst", check_id="DISCONNECT-001"):
    return rs.check(check_id, "PLATFORM", "INFO", variant=variant, observed={"summary": summary},
                    documented=documented_for("rst", os_name))


def test_winerror_detail_is_not_a_divergence_but_a_different_error_is():
    linux = rs.make_record([_platform("ConnectionResetError [ECONNRESET]"),
                            _platform("b''", variant="killed")])
    windows = rs.make_record([_platform("ConnectionResetError [ECONNRESET] (WinError 10054)", "windows"),
                              _platform("ConnectionResetError [ECONNRESET] (WinError 10054)", "windows",
                                        variant="killed")], **rs.WINDOWS)
    model = _model(linux, windows)
    assert not _row(model, "DISCONNECT-001", "rst").divergent
    killed = _row(model, "DISCONNECT-001", "killed")
    assert killed.divergent
    assert killed.topic == "killed"


def test_required_rows_compare_outcomes_only_unless_the_check_chose_a_summary():
    a = rs.make_record([rs.check("TCP-003", observed={"port": 40001}),
                        rs.check("TCP-004", observed={"summary": "one"})], python_version="3.12.7")
    b = rs.make_record([rs.check("TCP-003", observed={"port": 40999}),
                        rs.check("TCP-004", observed={"summary": "two"})], python_version="3.13.0")
    model = _model(a, b)
    assert not _row(model, "TCP-003").divergent  # a random port is not a disagreement
    assert _row(model, "TCP-004").divergent


def test_missing_cells_do_not_make_a_row_divergent_and_odd_cells_are_the_minority():
    recs = [rs.make_record([rs.check("TCP-001"), rs.check("TCP-002")], python_version=v)
            for v in ("3.11.9", "3.12.7")]
    recs.append(rs.make_record([rs.check("TCP-001", outcome="FAIL", message="m")], python_version="3.13.0"))
    model = _model(*recs)
    assert not _row(model, "TCP-002").divergent  # absent in 3.13 only
    tcp1 = _row(model, "TCP-001")
    assert tcp1.divergent and tcp1.odd == [False, False, True]


def test_labels_show_only_what_varies():
    model = _model(rs.make_record([rs.check("TCP-001")], python_version="3.12.7"),
                   rs.make_record([rs.check("TCP-001")], python_version="3.13.0"))
    assert model.common == ["Linux", "x86_64", "stdlib"]
    assert [c.header for c in model.columns] == [["CPython 3.12.7"], ["CPython 3.13.0"]]
    assert model.columns[0].label == "Linux x86_64 \u00b7 CPython 3.12.7 \u00b7 stdlib"
    single = _model(rs.make_record([rs.check("TCP-001")]))
    assert single.common == [] and single.columns[0].header == ["Linux x86_64", "CPython 3.12.7", "stdlib"]


def test_free_threaded_and_simulated_runs_are_separate_columns():
    caps = dict(rs.BASE_FINGERPRINT["capabilities"], fork=False, simulated_absent=["fork"])
    model = _model(rs.make_record([rs.check("TCP-001")]),
                   rs.make_record([rs.check("TCP-001")], gil="disabled"),
                   rs.make_record([rs.check("TCP-001")], capabilities=caps))
    assert len(model.columns) == 3
    headers = [" ".join(c.header) for c in model.columns]
    assert any("free-threaded" in h for h in headers) and any("simulated: no fork" in h for h in headers)


def test_topics_resolve_by_variant_documented_value_and_required_capability():
    fork_doc = documented_for("fork_availability", "linux")
    linux = rs.make_record([
        rs.check("API-002", "PLATFORM", "INFO", observed={"summary": "Forking* present"}, documented=fork_doc),
        rs.check("MIXIN-003", requires=["fork"]),
        rs.check("UDP-004", "PLATFORM", "INFO", variant="udp_dead_port", observed={"summary": "no error"}),
        rs.check("TCP-001"),
    ])
    model = _model(linux)
    assert _row(model, "API-002").topic == "fork_availability"  # from the documented value
    assert _row(model, "MIXIN-003").topic == "fork_availability"  # from requires
    assert _row(model, "UDP-004", "udp_dead_port").topic == "udp_dead_port"  # from the variant
    assert _row(model, "TCP-001").topic is None


def test_to_json_round_trips_through_json(tmp_path):
    import json

    model = _model(*rs.realistic_records())
    data = json.loads(json.dumps(model.to_json()))
    assert data["kind"] == "ssconform-report"
    assert len(data["columns"]) == 7 and len(data["rows"]) == len(model.rows)
    divergent = [r for r in data["rows"] if r["divergent"]]
    assert divergent and all(r["odd"] for r in divergent)


def test_version_rows_compare_observations_only_through_a_chosen_summary():
    # Measured on real records: a retained-thread count differs between runs and is not a divergence.
    a = rs.make_record([rs.check("THREADING-008", "VERSION", observed={"retained": 1}),
                        rs.check("API-004", "VERSION", observed={"summary": "absent"})], python_version="3.11.9")
    b = rs.make_record([rs.check("THREADING-008", "VERSION", observed={"retained": 2}),
                        rs.check("API-004", "VERSION", observed={"summary": "present"})], python_version="3.13.0")
    model = _model(a, b)
    assert not _row(model, "THREADING-008").divergent
    assert _row(model, "API-004").divergent


def test_unexplained_platform_rows_get_a_topic_from_the_explicit_map():
    a = rs.make_record([rs.check("SHUTDOWN-012", "PLATFORM", "INFO", observed={"summary": "spins"})])
    model = _model(a)
    assert _row(model, "SHUTDOWN-012").topic == "server_close_during_serve"
