"""harness.report.platform_notes: the knowledge data is complete, well-formed and usable by records."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import report_samples as rs

from harness.core.observations import comparable
from harness.report import platform_notes as pn

REQUIRED_TOPICS = (
    "fin", "rst", "half_close", "unread_close", "killed", "send_after_rst", "accept_after_rst",
    "backlog_overflow", "udp_dead_port", "udp_truncation", "reuse_addr", "reuse_port", "ipv6_v6only",
    "af_unix_availability", "af_unix_path", "fork_availability", "fork_warning", "selector",
    "shutdown_latency", "emfile",
)
CHECKS = Path(__file__).resolve().parents[2] / "conformance" / "checks"


def test_the_topics_the_brief_asks_for_exist():
    missing = [topic for topic in REQUIRED_TOPICS if topic not in pn.TOPICS]
    assert missing == []


@pytest.mark.parametrize("topic", sorted(pn.TOPICS))
def test_topic_is_well_formed(topic):
    info = pn.TOPICS[topic]
    assert set(info) == {"title", "mechanism", "repro", "expect"}
    assert len(info["mechanism"]) > 120 and info["title"]
    compile(info["repro"], f"<repro {topic}>", "exec")
    assert "```" not in info["repro"]
    assert {"linux", "windows", "macos"} <= set(info["expect"]) <= set(pn.OSES)
    for os_name, entry in info["expect"].items():
        assert set(entry) <= {"value", "confidence", "sources", "source", "accept", "note"}, (topic, os_name)
        assert entry["confidence"] in "MDRU" and len(entry["confidence"]) == 1
        assert entry["source"] and isinstance(entry["value"], str) and entry["value"]
        assert entry["sources"] or entry["confidence"] == "U", (topic, os_name)
        if os_name != "linux":
            assert entry["confidence"] != "M", f"{topic}/{os_name}: nothing but Linux was measured"


def test_documented_for_matches_the_record_schema():
    entries = []
    for topic in pn.TOPICS:
        for os_name in ("linux", "win32", "darwin"):
            documented = pn.documented_for(topic, os_name)
            assert documented is not None
            entries.append(rs.check("TCP-001", "PLATFORM", "INFO", variant=f"{topic}-{os_name}",
                                    documented=documented))
    # make_record validates with the real record schema (documented: exactly 4 keys).
    rs.make_record(entries)
    assert pn.documented_for("rst", "win32")["os"] == "windows"
    assert pn.documented_for("nonexistent", "linux") is None
    assert pn.documented_for("rst", "plan9") is None


def test_windows_numbers_are_detail_in_agreement():
    windows = pn.documented_for("rst", "windows")["value"]
    linux = pn.documented_for("rst", "linux")["value"]
    assert windows != linux and comparable(windows) == comparable(linux)
    assert pn.accepted("send_after_rst", "macos") == ["BrokenPipeError [EPIPE]", "OSError [EPROTOTYPE]"]


def test_topic_resolution():
    assert pn.topic_for("DISCONNECT-001", "rst") == "rst"
    assert pn.topic_for("DISCONNECT-007", "half_close-ipv4") == "half_close"
    assert pn.topic_for("UDP-009", "udp_dead_port") == "udp_dead_port"
    assert pn.topic_for("FORK-001", "", ["fork"]) == "fork_availability"
    assert pn.topic_for("TCP-001") is None
    assert pn.normalize_os("darwin") == "macos" and pn.normalize_os("win32") == "windows"


def test_every_topic_a_check_declares_exists():
    declared = set()
    for path in sorted(CHECKS.glob("test_*.py")):
        declared |= set(re.findall(r"""topic\s*=\s*["']([^"']+)["']""", path.read_text(encoding="utf-8")))
    unknown = sorted(declared - set(pn.TOPICS))
    assert unknown == [], f"checks declare topics that harness/report/platform_notes.py lacks: {unknown}"
