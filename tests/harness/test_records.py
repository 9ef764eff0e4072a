"""Run records: round trip, every kind of bad file names the file, atomic writes."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from harness.core import outcomes
from harness.core.observations import to_jsonable
from harness.implementations import resolve
from harness.results import records
from harness.results.fingerprint import fingerprint
from harness.results.records import RecordError


@pytest.fixture(scope="module")
def impl():
    return resolve("stdlib")


@pytest.fixture
def record(impl):
    rec = records.new_record(impl.describe(), fingerprint(impl), {"selection": "-k tcp"})
    checks = [
        records.check_entry(id="TCP-003", level="REQUIRED", outcome=outcomes.Outcome.PASS,
                            title="port zero", observed={"server_address": ("127.0.0.1", 4000)}),
        records.check_entry(id="TCP-004", variant="ipv6", level="PLATFORM", outcome="INFO",
                            documented={"os": "linux", "value": 1, "source": "man 7 ip",
                                        "confidence": "D"}, agrees=True),
        records.check_entry(id="HANDLER-012", level="REQUIRED", outcome="XFAIL",
                            expected_outcome="TIMEOUT", expectation_reason="greenlets"),
    ]
    return records.finish_record(rec, checks)


def test_round_trip(record, tmp_path):
    path = records.write_record(record, tmp_path)
    assert path.parent == tmp_path
    assert path.name.startswith("stdlib-cpython") and path.name.endswith(f"-{record['run_id'][:8]}.json")
    assert records.read_record(path) == record
    # tuples became lists, so what is read equals what was written
    assert record["checks"][0]["observed"]["server_address"] == ["127.0.0.1", 4000]
    assert os.listdir(tmp_path) == [path.name]


def test_record_shape_keys(record):
    assert list(record)[:4] == ["schema_version", "suite_version", "run_id", "started"]
    assert record["schema_version"] == records.SCHEMA_VERSION == 1
    assert record["options"]["timeout_multiplier"] > 0
    assert record["options"]["selection"] == "-k tcp"
    entry = record["checks"][0]
    assert entry["area"] == "TCP" and entry["variant"] == "" and entry["requires"] == []


def test_schema_enums_match_vocabulary():
    defs = records.SCHEMA["$defs"]
    assert set(defs["outcome"]["enum"]) == {o.value for o in outcomes.Outcome}
    assert set(defs["level"]["enum"]) == {lv.value for lv in outcomes.Level}
    assert set(defs["expectable"]["enum"]) == {o.value for o in outcomes.EXPECTABLE}


def test_check_entry_rejects_typos_and_missing_fields():
    with pytest.raises(TypeError, match="outcom"):
        records.check_entry(id="TCP-001", level="REQUIRED", outcom="PASS")
    with pytest.raises(TypeError, match="level"):
        records.check_entry(id="TCP-001", outcome="PASS")


def test_check_entry_defaults_are_not_shared():
    a = records.check_entry(id="TCP-001", level="REQUIRED", outcome="PASS")
    a["observed"]["x"] = 1
    a["requires"].append("fork")
    b = records.check_entry(id="TCP-002", level="REQUIRED", outcome="PASS")
    assert b["observed"] == {} and b["requires"] == []


def test_to_jsonable_makes_anything_serialisable():
    value = to_jsonable({"b": b"\x00", "s": {2, 1}, "nan": float("nan"), 3: object(),
                         "level": outcomes.Level.REQUIRED, "path": Path("/tmp/x")})
    json.dumps(value, allow_nan=False)
    assert value["b"] == "b'\\x00'" and value["s"] == [1, 2] and value["nan"] == "nan"
    assert value["level"] == "REQUIRED" and type(value["level"]) is str and value["path"] == "/tmp/x"
    assert to_jsonable(value) == value  # records apply it to observations that already had it


def test_one_to_jsonable():
    assert not hasattr(records, "to_jsonable") or records.to_jsonable is to_jsonable


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda r: r.update(extra_key=1), "extra_key"),
        (lambda r: r["checks"][0].update(outcome="MAYBE"), "MAYBE"),
        (lambda r: r["checks"][0].update(level="OPTIONAL"), "OPTIONAL"),
        (lambda r: r["checks"][0].pop("message"), "message"),
        (lambda r: r.update(schema_version=0), "schema_version"),
        (lambda r: r["fingerprint"].update(hostname="box"), "hostname"),
        (lambda r: r["checks"][1].update(id="TCP-003", variant=""), "repeats"),
        (lambda r: r["checks"][2].update(expected_outcome=None), "expected_outcome"),
        (lambda r: r.update(run_id="not-a-uuid"), "run_id"),
    ],
)
def test_validation_failures_name_the_file(record, tmp_path, mutate, fragment):
    bad = copy.deepcopy(record)
    mutate(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(RecordError) as info:
        records.read_record(path)
    assert str(info.value).startswith(str(path) + ": ")
    assert fragment in str(info.value)


def test_future_schema_is_rejected_clearly(record, tmp_path):
    future = dict(record, schema_version=2, new_field=True)
    path = tmp_path / "future.json"
    path.write_text(json.dumps(future), encoding="utf-8")
    with pytest.raises(RecordError, match="written by a newer kit") as info:
        records.read_record(path)
    assert str(path) in str(info.value)
    assert "new_field" not in str(info.value)  # not a confusing schema dump


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "empty file"),
        (b'{"schema_version": 1, "checks": [', "truncated"),
        (b"not json at all", "not valid JSON"),
        (b'{"a": NaN}', "NaN"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[1, 2]", "top level is a JSON list"),
        (b'{"kind": "ssconform-report", "schema_version": 1}', "merged report"),
        (b'{"hello": 1}', "no schema_version"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, fragment):
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(RecordError) as info:
        records.read_record(path)
    assert str(info.value).startswith(str(path))
    assert fragment in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(RecordError, match="cannot read"):
        records.read_record(tmp_path / "absent.json")
    with pytest.raises(RecordError, match="no such file"):
        records.load_records([tmp_path / "absent.json"])


def test_invalid_record_is_never_written(record, tmp_path):
    bad = copy.deepcopy(record)
    bad["checks"][0]["outcome"] = "MAYBE"
    with pytest.raises(RecordError, match="MAYBE"):
        records.write_record(bad, tmp_path, name="x.json")
    assert os.listdir(tmp_path) == []


def test_failed_serialisation_leaves_nothing(record, tmp_path):
    target = tmp_path / "x.json"
    target.write_text("previous", encoding="utf-8")
    bad = copy.deepcopy(record)
    bad["checks"][0]["observed"]["f"] = float("inf")  # valid per schema, not JSON
    with pytest.raises(RecordError, match="not serialisable"):
        records.write_record(bad, tmp_path, name="x.json")
    assert os.listdir(tmp_path) == ["x.json"]
    assert target.read_text(encoding="utf-8") == "previous"


def test_interrupted_write_keeps_old_file_and_no_temp(record, tmp_path, monkeypatch):
    target = records.write_record(record, tmp_path, name="x.json")
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records.os, "replace", boom)
    with pytest.raises(RecordError, match="No space left"):
        records.write_record(record, tmp_path, name="x.json")
    assert os.listdir(tmp_path) == ["x.json"]
    assert target.read_bytes() == before


def test_unwritable_directory(record, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(RecordError, match="cannot write"):
        records.write_record(record, blocker / "sub")


def test_load_records_scans_directories(record, tmp_path):
    first = records.write_record(record, tmp_path / "a")
    other = copy.deepcopy(record)
    other["run_id"] = "00000000-0000-4000-8000-000000000000"
    second = records.write_record(other, tmp_path / "b" / "deep")
    (tmp_path / "report.json").write_text(
        json.dumps({"kind": "ssconform-report", "schema_version": 1, "cells": []}), encoding="utf-8"
    )
    (tmp_path / "other.json").write_text('{"unrelated": true}', encoding="utf-8")
    (tmp_path / "a" / ".x.json.123.tmp").write_text("{", encoding="utf-8")
    (tmp_path / ".hidden.json").write_text("{", encoding="utf-8")
    found = records.load_records([tmp_path, first])  # the same file twice counts once
    assert [p for p, _ in found] == sorted([first.resolve(), second.resolve()], key=str)


def test_load_records_rejects_broken_files_in_directories(record, tmp_path):
    records.write_record(record, tmp_path)
    (tmp_path / "broken.json").write_text('{"schema_version": 1, "checks": [', encoding="utf-8")
    with pytest.raises(RecordError, match="broken.json"):
        records.load_records(tmp_path)


def test_explicit_report_file_is_refused(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"kind": "ssconform-report"}), encoding="utf-8")
    with pytest.raises(RecordError, match="merged report"):
        records.load_records(path)


def test_summarise_and_unexpected(record):
    counts = records.summarise(record)
    assert list(counts) == [o.value for o in outcomes.Outcome]
    assert counts["PASS"] == 1 and counts["INFO"] == 1 and counts["XFAIL"] == 1
    assert sum(counts.values()) == 3
    assert records.unexpected(record) == []
    record["checks"][0]["outcome"] = "FAIL"
    assert [c["id"] for c in records.unexpected(record)] == ["TCP-003"]


def test_aborted_run(record, tmp_path):
    records.finish_record(record, record["checks"][:1], aborted="pytest process killed after 600s")
    assert records.read_record(records.write_record(record, tmp_path))["aborted"].startswith("pytest")


def test_compare_repeats_names_varying_checks(record):
    runs = []
    for index, outcome in enumerate(["PASS", "PASS", "TIMEOUT"]):
        run = copy.deepcopy(record)
        run["options"]["repeat_index"] = index
        run["checks"][0]["outcome"] = outcome
        runs.append(run)
    del runs[1]["checks"][1]  # absent in one repeat (aborted run): not flaky by itself
    other_cell = copy.deepcopy(runs[2])
    other_cell["fingerprint"]["python_version"] = "3.99.0"  # alone in its cell: never flaky
    rows = records.compare_repeats(runs + [other_cell])
    assert [(r["id"], r["outcomes"]) for r in rows] == [("TCP-003", ["PASS", "PASS", "TIMEOUT"])]
    assert records.compare_repeats(runs[:2]) == []
