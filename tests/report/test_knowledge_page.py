"""The platform knowledge file is schema-checked, and docs/platform-knowledge.md is its current rendering."""

from __future__ import annotations

import pathlib

import pytest

from harness.report import knowledge_page, platform_notes
from harness.results import packaged

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "platform-knowledge.md"


def test_the_page_is_up_to_date():
    if not PAGE.is_file():
        pytest.skip("docs/ is not beside tests/ (installed copy?)")
    assert PAGE.read_text(encoding="utf-8") == knowledge_page.render(platform_notes.load()), (
        "docs/platform-knowledge.md is stale: python -m harness.report.knowledge_page --out docs/platform-knowledge.md")


def test_check_mode_notices_a_stale_page(tmp_path):
    page = tmp_path / "page.md"
    assert knowledge_page.main(["--out", str(page)]) == 0
    assert knowledge_page.main(["--out", str(page), "--check"]) == 0
    page.write_text(page.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    assert knowledge_page.main(["--out", str(page), "--check"]) == 1


def test_the_page_has_every_topic_with_its_sources():
    text = knowledge_page.render(platform_notes.load())
    for name, info in platform_notes.TOPICS.items():
        assert f'<a id="{name}"></a>' in text and info["title"] in text
    assert "[gh-77589](https://github.com/python/cpython/issues/77589)" in text
    assert "measured by this kit: DISCONNECT-001" in text


def _doctored(tmp_path, old: str, new: str) -> pathlib.Path:
    text = packaged.data_file("platform_notes.toml").read_text(encoding="utf-8")
    assert old in text
    bad = tmp_path / "platform_notes.toml"
    bad.write_text(text.replace(old, new, 1), encoding="utf-8")
    return bad


@pytest.mark.parametrize("old, new", [
    # a source a reader cannot open: a private file name instead of an address
    ('{kind = "man-page", url = "https://man7.org/linux/man-pages/man2/recv.2.html"}',
     '{kind = "man-page", url = "notes/semantics.md"}'),
    # an unknown kind of source
    ('{kind = "microsoft-learn", url = "https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-recv"}',
     '{kind = "blog", url = "https://example.invalid/post"}'),
    # CPython source not pinned to a release tag
    ('https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L508-L520',
     'https://github.com/python/cpython/blob/main/Lib/socketserver.py#L508-L520'),
    # "measured" without naming a check or the command
    ('{kind = "measured", checks = ["DISCONNECT-001", "DISCONNECT-002"], note = "Linux 6.18, CPython 3.9-3.13"}',
     '{kind = "measured", note = "Linux 6.18, CPython 3.9-3.13"}'),
    # a documented expectation with no source at all
    ('confidence = "D"\nsources = [\n    {kind = "microsoft-learn", url = "https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-recv"},\n]',
     'confidence = "D"\nsources = []'),
])
def test_the_schema_rejects_uncheckable_sources(tmp_path, old, new):
    with pytest.raises(platform_notes.KnowledgeError):
        platform_notes.load(_doctored(tmp_path, old, new))


def test_the_shipped_file_loads():
    data = platform_notes.load()
    assert set(data["topics"]) == set(platform_notes.TOPICS)


def test_the_report_explains_free_threading_only_for_runs_without_the_gil():
    import report_samples as rs

    from harness.report.build import render_all
    from harness.report.merge import merge_records

    title = platform_notes.NOTES["free_threading"]["title"]
    checks = [rs.check("API-001", "REQUIRED", "PASS")]
    with_gil = [("a.json", rs.make_record(checks, gil="enabled"))]
    without = with_gil + [("b.json", rs.make_record(checks, gil="disabled", python_version="3.14.0"))]
    plain = render_all(merge_records(with_gil))
    assert title not in plain["md"] and "ThreadingMixIn starts run Python code" not in plain["html"]
    free = render_all(merge_records(without))
    assert f"## {title}" in free["md"] and "THREADING-003" in free["md"]
    assert "free-threading-python.html" in free["md"]
    assert 'id="free-threading"' in free["html"]
