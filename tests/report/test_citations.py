"""Every citation is something a reader can open; nothing cites a document outside the repository.

Theory of operation
-------------------
The project may cite CPython source at a release tag and line, docs.python.org
sections, CPython issue numbers (gh-N, bpo-N), Microsoft's Winsock
documentation, Linux/FreeBSD/macOS manual pages, XNU/FreeBSD source at a
commit, public reports of other projects, the generated
``docs/platform-knowledge.md`` (by topic anchor) and measurements of this kit
(by check ID).  Four tests hold it to that:

* **No private references anywhere.**  Every tracked text file (``git
  ls-files``; a walk of the tree when git is unavailable) and a report
  rendered from sample records (Markdown, HTML, JSON) are scanned for the
  forms that pointed at documents outside the repository: names of the
  background notes, a "section sign" number, "behaviour N", "#N:" and
  "platform notes N".  :data:`FORBIDDEN` is written so that it does not
  match its own source text, and a test feeds it each form to prove it bites.
* **Every clause cites.**  The clause of every check (read from the check
  files' ``@check(...)`` decorators with :mod:`ast`, no pytest needed) holds
  at least one citation, and every citation in it has an allowed shape.
* **Knowledge sources are real.**  A ``measured`` source names checks that
  exist; a ``docs/platform-knowledge.md#topic`` anchor names a topic.
* **CPython lines exist.**  Each ``Lib/socketserver.py#Lx-Ly`` at v3.13.0 is
  checked against that file when a CPython 3.13.0 is on this machine (found
  by :mod:`harness.implementations.pythons`); a cited range must lie inside the file and
  start and end on non-blank lines.
"""

from __future__ import annotations

import ast
import pathlib
import re
import shutil
import subprocess
from typing import Dict, Iterator, List, Tuple

import pytest
import report_samples as rs

from harness.core import timeouts
from harness.core.extensions import clause as extension_clause
from harness.implementations import pythons
from harness.report import platform_notes
from harness.report.build import render_all
from harness.report.merge import merge_records

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECKS = ROOT / "conformance" / "checks"

#: Forms that cite documents a reader cannot open.  Each is spelled so that
#: the pattern's own source text does not match it.
FORBIDDEN = {
    "background note": re.compile(r"\b(?:platform_semantics|cpython_socketserver|conformance_anchors|alt_impls"
                                  r"|aesthetics)\.md\b"),
    "shared notes directory": re.compile(r"shared[/\\](?:research|seed)\b"),
    "the notes": re.compile(r"\bresearch[ ]notes?\b", re.I),
    "section sign": re.compile("\u00a7" + r"\s?\d"),
    "numbered behaviour": re.compile(r"\bbehaviou?rs?[ ]\d+"),
    "numbered item": re.compile(r"(?<![\w&])#\d+[a-z]?(?:[/,] ?#\d+)*:"),
    "platform notes section": re.compile(r"\bplatform[ ]notes[ ]\d"),
}

CPYTHON_SS = re.compile(r"https://github\.com/python/cpython/blob/v3\.13\.0/Lib/socketserver\.py#L(\d+)(?:-L(\d+))?")
ALLOWED = (
    CPYTHON_SS,
    re.compile(r"https://github\.com/python/cpython/blob/v[23]\.\d+\.\d+/[\w/.-]+"),  # 2.7: the subject agent
    re.compile(r"https://docs\.python\.org/3/library/[\w.-]+\.html#[\w.-]+"),
    re.compile(r"\b(?:gh|bpo)-\d+\b"),
    re.compile(r"https://learn\.microsoft\.com/en-us/windows/win32/[\w/.-]+"),
    re.compile(r"https://man7\.org/linux/man-pages/man\d/[\w.-]+\.html"),
    re.compile(r"docs/platform-knowledge\.md#\w+"),
    re.compile(r"README\.md"),
)
URL = re.compile(r"https?://[^\s,\]\)]+")
BINARY = {".png", ".jpg", ".gz", ".whl", ".zip", ".ico", ".wasm"}


def _tracked_files() -> List[pathlib.Path]:
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        done = subprocess.run([git, "ls-files", "-z"], cwd=str(ROOT), capture_output=True,
                              timeout=timeouts.long(), check=False)
        if done.returncode == 0:
            return [ROOT / name for name in done.stdout.decode().split("\0") if name]
    skip = {".git", ".venv", ".nox", ".tox", "node_modules", "ssconform-report", "build", "dist", "__pycache__"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not (set(p.relative_to(ROOT).parts) & skip)
            and not p.name.startswith(".venv")]


def private_references(text: str) -> List[Tuple[str, str]]:
    """``(form, matched text)`` for every reference to a document a reader cannot open."""
    return [(form, match.group(0)) for form, pattern in FORBIDDEN.items() for match in pattern.finditer(text)]


#: Each private form, spelled in pieces so that this file's own scan passes.
SAMPLES = [
    ("see platform_semantics" + ".md \u00a71", "background note"),
    ("(cpython_socketserver" + ".md #33)", "background note"),
    ("shared/" + "research/alt_impls" + ".md", "shared notes directory"),
    ("as the research" + " notes say", "the notes"),
    ("section \u00a710.1", "section sign"),
    ("(behaviour" + " 70)", "numbered behaviour"),
    ("behaviours" + " 55, 56", "numbered behaviour"),
    ("#27" + ": an OSError", "numbered item"),
    ("#14/#16/#24" + ": port 0", "numbered item"),
    ("(platform" + " notes 5.5)", "platform notes section"),
]


@pytest.mark.parametrize("sample, form", SAMPLES)
def test_the_scan_recognises_each_private_form(sample, form):
    assert form in [found for found, _ in private_references(sample)]


def test_the_scan_leaves_public_citations_alone():
    public = ("https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L240 gh-85609 bpo-35017 "
              "docs/platform-knowledge.md#rst PR #7317 https://docs.python.org/3/library/os.html#os.fork")
    assert private_references(public) == []


def test_no_file_cites_a_document_outside_the_repository():
    found = []
    for path in _tracked_files():
        if path.suffix in BINARY or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for form, match in private_references(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {form}: {match!r}")
    assert found == [], "\n".join(found)


def test_a_rendered_report_cites_nothing_outside_the_repository():
    records = rs.realistic_records()
    model = merge_records([(f"record-{n}.json", record) for n, record in enumerate(records)])
    rendered = render_all(model)
    found = [(name, hit) for name, text in rendered.items() for hit in private_references(text)]
    assert found == []
    # The report carries the knowledge's sources: they are there, and public.
    assert "measured by this kit" in rendered["md"]


# ------------------------------------------------------------------- check clauses


def clauses() -> Dict[str, str]:
    """``{check ID: clause}`` from the ``@check(...)`` decorators of the check files."""
    found: Dict[str, str] = {}
    for path in sorted(CHECKS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and node.args:
                check_id = ast.literal_eval(node.args[0])
                for keyword in node.keywords:
                    if keyword.arg == "clause" and isinstance(keyword.value, ast.Call):
                        # EXT checks: clause("name"), read from harness/core/extensions.toml
                        found[check_id] = extension_clause(ast.literal_eval(keyword.value.args[0]))
                    elif keyword.arg == "clause":
                        found[check_id] = ast.literal_eval(keyword.value)
    return found


CLAUSES = clauses()


def citations(text: str) -> Iterator[str]:
    yield from (m.group(0).rstrip(".") for m in URL.finditer(text))
    yield from (m.group(0) for m in re.finditer(r"\b(?:gh|bpo)-\d+\b|docs/platform-knowledge\.md#\w+|README\.md", text))


def test_every_check_has_a_clause():
    assert len(CLAUSES) >= 170, len(CLAUSES)


@pytest.mark.parametrize("check_id", sorted(CLAUSES))
def test_the_clause_cites_public_sources(check_id):
    clause = CLAUSES[check_id]
    cited = list(citations(clause))
    assert cited, f"{check_id}: the clause cites nothing: {clause!r}"
    for citation in cited:
        assert any(p.fullmatch(citation) for p in ALLOWED), f"{check_id}: not an allowed source: {citation}"
        if citation.startswith("docs/platform-knowledge.md#"):
            assert citation.split("#", 1)[1] in platform_notes.TOPICS, f"{check_id}: no topic {citation}"


# ------------------------------------------------------------- knowledge sources


def _knowledge_sources() -> Iterator[Tuple[str, dict]]:
    for topic, info in platform_notes.TOPICS.items():
        for os_name, entry in info["expect"].items():
            for source in entry["sources"]:
                yield f"{topic}/{os_name}", source


def test_measured_sources_name_existing_checks():
    for where, source in _knowledge_sources():
        for check_id in source.get("checks", ()):
            assert check_id in CLAUSES, f"{where}: no check {check_id}"


def test_every_source_has_an_address_or_names_a_measurement():
    for where, source in _knowledge_sources():
        url = platform_notes.source_url(source)
        assert url or source["kind"] == "measured", where
        if url:
            assert url.startswith("https://"), (where, url)


# ------------------------------------------------------- CPython lines are real


@pytest.fixture(scope="module")
def socketserver_v3_13_0() -> List[str]:
    found = pythons.find("3.13")
    if not found or " " in found:
        pytest.skip("no CPython 3.13 interpreter on this machine")
    done = subprocess.run([found, "-c", "import platform, socketserver; "
                           "print(platform.python_version()); print(socketserver.__file__)"],
                          capture_output=True, text=True, timeout=timeouts.long(), check=False)
    version, _, path = done.stdout.strip().partition("\n")
    if done.returncode != 0 or version != "3.13.0":
        pytest.skip(f"the local CPython 3.13 is {version or 'unusable'}, not the cited tag v3.13.0")
    return pathlib.Path(path).read_text(encoding="utf-8").splitlines()


def _cited_socketserver_ranges() -> List[Tuple[str, int, int]]:
    texts = [(f"clause of {cid}", clause) for cid, clause in CLAUSES.items()]
    texts += [(where, platform_notes.source_url(s) or "") for where, s in _knowledge_sources()]
    ranges = []
    for where, text in texts:
        for match in CPYTHON_SS.finditer(text):
            start = int(match.group(1))
            ranges.append((where, start, int(match.group(2) or start)))
    return ranges


def test_cited_socketserver_lines_exist(socketserver_v3_13_0):
    lines = socketserver_v3_13_0
    ranges = _cited_socketserver_ranges()
    assert len(ranges) > 100
    for where, start, end in ranges:
        assert 1 <= start <= end <= len(lines), f"{where}: L{start}-L{end} outside the file ({len(lines)} lines)"
        assert lines[start - 1].strip() and lines[end - 1].strip(), f"{where}: L{start}-L{end} starts or ends blank"


def test_a_wrong_line_would_be_caught(socketserver_v3_13_0):
    """Control: the line check is not vacuous (a blank line and a line past the end are refused)."""
    lines = socketserver_v3_13_0
    blank = next(i for i, line in enumerate(lines, 1) if not line.strip())
    assert not lines[blank - 1].strip()
    assert len(lines) < 10_000

