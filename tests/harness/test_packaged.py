"""Data files are found in a checkout first, then in the installed package.

The wheel copies ``expectations/`` to ``harness/results/data/expectations/``
(``force-include`` in pyproject.toml); :mod:`harness.results.packaged` looks there
through importlib.resources when no checkout is given.  The end-to-end proof
(a wheel installed alone, run outside the checkout) is in ``.ci/run``.
"""

from __future__ import annotations

import pathlib

import pytest

from harness.cli import action_outputs
from harness.results import packaged

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_a_checkout_file_wins(tmp_path):
    (tmp_path / "expectations").mkdir()
    mine = tmp_path / "expectations" / "eventlet.toml"
    mine.write_text("", encoding="utf-8")
    assert packaged.expectation_file("eventlet", checkout=tmp_path) == mine


def test_without_a_checkout_the_package_data_is_used(tmp_path, monkeypatch):
    shipped = tmp_path / "harness.results" / "data" / "expectations"
    shipped.mkdir(parents=True)
    (shipped / "eventlet.toml").write_text("# shipped\n", encoding="utf-8")
    monkeypatch.setattr(packaged.importlib.resources, "files", lambda package: tmp_path / package)
    found = packaged.expectation_file("eventlet", checkout=None)
    assert found == shipped / "eventlet.toml"
    assert packaged.expectation_file("no-such-impl", checkout=None) is None
    # A checkout without the file falls back to the package too.
    assert packaged.expectation_file("eventlet", checkout=tmp_path / "empty") == found


def test_this_checkout_has_the_builtin_expectations():
    if packaged.CHECKOUT is None:
        pytest.skip("an installed copy, not a checkout")
    assert packaged.expectation_file("eventlet") == ROOT / "expectations" / "eventlet.toml"
    assert packaged.expectation_file("no-such-impl") is None


def _record(outcomes):
    return {"checks": [{"id": f"API-{n:03d}", "level": "REQUIRED", "outcome": o} for n, o in enumerate(outcomes)]}


def test_action_outputs_count_every_outcome():
    got = action_outputs.counts([_record(["PASS", "PASS", "XFAIL"]), _record(["FAIL", "INFO"])])
    assert got["pass"] == 2 and got["xfail"] == 1 and got["fail"] == 1 and got["info"] == 1
    assert got["timeout"] == 0 and got["xpass"] == 0
    assert got["total"] == 5 and got["unexpected"] == 1 and got["records"] == 2


def test_action_outputs_main_reads_records_and_rejects_broken_ones(tmp_path, capsys):
    assert action_outputs.main([str(tmp_path)]) == 0
    assert "total=0" in capsys.readouterr().out
    (tmp_path / "broken.json").write_text('{"schema_version": ', encoding="utf-8")
    assert action_outputs.main([str(tmp_path)]) == 2
    assert "broken.json" in capsys.readouterr().err


def test_the_platform_knowledge_is_package_data():
    assert packaged.data_file("platform_notes.toml").is_file()
    with pytest.raises(FileNotFoundError):
        packaged.data_file("no-such-file.toml")
