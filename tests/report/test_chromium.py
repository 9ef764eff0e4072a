"""The HTML report in a real headless Chromium: filters work from file://, and it renders.

Regenerate docs/report-screenshot.png (from real CI records, or from the
hand-written sample records when no paths are given)::

    cd /work/main && /work/venv/bin/python tests/report/test_chromium.py \\
        --screenshot docs/report-screenshot.png [RECORD_FILE_OR_DIR ...]

Chromium runs headless with networking features off and a fresh profile
directory; the page loads from a file:// URL and must need nothing else
(its Content-Security-Policy forbids any fetch).  The filter is chosen with
the URL fragment (``#only=divergent``), and ``--dump-dom`` prints the DOM
after the page's script ran, so the test reads which rows are hidden.
Skipped only where no Chromium is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import List, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report_samples as rs  # noqa: E402

from harness.core import timeouts  # noqa: E402
from harness.report.build import render_report  # noqa: E402

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--disable-extensions", "--mute-audio",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def find_chromium() -> Optional[str]:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_chromium(args: List[str], profile_parent: Path) -> subprocess.CompletedProcess:
    binary = find_chromium()
    if binary is None:
        raise RuntimeError("no chromium installed")
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=str(profile_parent))
    try:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=timeouts.long(), check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(html: Path, png: Path, fragment: str = "", size: str = "1400,1000") -> None:
    result = run_chromium([f"--screenshot={png}", f"--window-size={size}", html.resolve().as_uri() + fragment],
                          png.parent)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {result.returncode}): "
                           f"{result.stderr.decode(errors='replace')[-2000:]}")


class _Rows(HTMLParser):
    """Matrix rows of a dumped DOM: (classes, hidden) per <tr class="check ...">."""

    def __init__(self):
        super().__init__()
        self.rows = []
        self.areas = []
        self.shown = None
        self._in_shown = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "tr" and "check" in classes:
            self.rows.append((set(classes), "hidden" in attrs))
        elif tag == "tr" and "area" in classes:
            self.areas.append((attrs.get("data-area"), "hidden" in attrs))
        self._in_shown = tag == "span" and attrs.get("id") == "shown"

    def handle_data(self, data):
        if self._in_shown:
            self.shown = data
            self._in_shown = False


needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("chromium-report")
    rs.write_all(rs.realistic_records(), base / "records")
    return render_report([base / "records"], base / "out")["html"]


def _dom(report_html: Path, fragment: str) -> _Rows:
    result = run_chromium(["--dump-dom", report_html.resolve().as_uri() + fragment], report_html.parent)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    parser = _Rows()
    parser.feed(result.stdout.decode("utf-8"))
    assert parser.rows, "no matrix rows in the dumped DOM"
    return parser


@needs_chromium
def test_fragment_filter_hides_non_divergent_rows(report_html):
    dom = _dom(report_html, "#only=divergent")
    shown = [classes for classes, hidden in dom.rows if not hidden]
    hidden = [classes for classes, hidden in dom.rows if hidden]
    assert shown and hidden
    assert all("divergent" in classes for classes in shown)
    assert all("divergent" not in classes for classes in hidden)
    assert dom.shown == f"showing {len(shown)} of {len(dom.rows)} checks"


@needs_chromium
def test_failure_filter(report_html):
    failing = _dom(report_html, "#only=failing")
    shown = [classes for classes, hidden in failing.rows if not hidden]
    assert len(shown) == 1 and "failing" in shown[0]
    # Area headings without a visible row are hidden too.
    assert sum(1 for _, hidden in failing.areas if not hidden) == 1


@needs_chromium
def test_without_fragment_the_page_opens_on_divergent_rows(report_html):
    dom = _dom(report_html, "")
    assert all(("divergent" in classes) != hidden for classes, hidden in dom.rows)


@needs_chromium
def test_all_with_search_fragment(report_html):
    dom = _dom(report_html, "#only=all&q=disconnect")
    shown = [classes for classes, hidden in dom.rows if not hidden]
    assert len(shown) == 4  # fin, killed, rst, send_after_rst
    assert any("divergent" not in classes for classes in shown)  # "all" shows agreeing rows too


@needs_chromium
def test_screenshot_is_a_png(report_html, tmp_path):
    png = tmp_path / "shot.png"
    screenshot(report_html, png)
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Render a report and screenshot it in headless Chromium.")
    parser.add_argument("--screenshot", required=True, type=Path, help="PNG file to write")
    parser.add_argument("--size", default="1400,1000", help="window size W,H (default 1400,1000)")
    parser.add_argument("--fragment", default="", help="URL fragment, e.g. '#only=all'")
    parser.add_argument("inputs", nargs="*", type=Path, help="record files or directories (default: samples)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ssconform-shot-") as work:
        inputs = args.inputs
        if not inputs:
            rs.write_all(rs.realistic_records(), Path(work) / "records")
            inputs = [Path(work) / "records"]
        html = render_report(inputs, Path(work) / "out")["html"]
        target = args.screenshot.resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        screenshot(html, Path(work) / "shot.png", args.fragment, args.size)
        shutil.copyfile(Path(work) / "shot.png", target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
