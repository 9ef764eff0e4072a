"""The slowest of the kit's own tests, with why each is slow, into docs/test-timing.md.

Theory of operation
-------------------
Input: a junit XML file of a run of the kit's tests (``python -m pytest
--junitxml=FILE``; pytest-xdist runs write one file too).  Each
``<testcase>`` gives a node ID (``classname`` turned back into a path, plus
``name``) and its time: setup + call + teardown, as pytest measured it in the
process that ran the test.

Why a test is slow is not in the XML: it is written by hand in
``bench/slow_tests.toml``, one ``[[slow]]`` table per pattern (over node
IDs, ``*`` the only wildcard so that ``[param]`` is literal; first match
wins) with a ``why``.  The
page lists the ``--top`` slowest tests (default 20) with their times, the
pattern's reason, and the totals; a slow test that no pattern explains is
listed as such, and ``--strict`` then fails (exit 1), so a refresh cannot
silently lose the explanations.

The rendered table replaces the text between the markers
``<!-- slowest:begin -->`` and ``<!-- slowest:end -->`` in the ``--page``
(default ``docs/test-timing.md``); the rest of the page is hand-written and
left alone.  ``--page -`` prints the table instead.

Usage::

    python -m pytest --junitxml=/tmp/kit.xml
    python bench/slowest_tests.py /tmp/kit.xml --label "python -m pytest (-n 4), idle"
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
REASONS = ROOT / "bench" / "slow_tests.toml"
PAGE = ROOT / "docs" / "test-timing.md"
BEGIN, END = "<!-- slowest:begin -->", "<!-- slowest:end -->"


def node_id(classname: str, name: str) -> str:
    """``tests.broken.test_broken`` + ``test_x[a]`` -> ``tests/broken/test_broken.py::test_x[a]``
    (a class inside the module stays a ``::`` part)."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = Path(ROOT, *parts[:cut]).with_suffix(".py")
        if path.is_file():
            return "::".join(["/".join(parts[:cut]) + ".py", *parts[cut:], name])
    return f"{classname}::{name}"


def read_times(path: Path) -> List[Tuple[str, float]]:
    """(node ID, seconds) of every test case in a junit XML file."""
    root = ET.parse(str(path)).getroot()
    return [(node_id(case.get("classname", ""), case.get("name", "")), float(case.get("time", 0)))
            for case in root.iter("testcase")]


def load_reasons(path: Path) -> List[Dict[str, str]]:
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    entries = data.get("slow", [])
    for entry in entries:
        if not entry.get("pattern") or not entry.get("why"):
            raise ValueError(f"{path}: every [[slow]] needs a pattern and a why: {entry}")
    return entries


def matches(test: str, pattern: str) -> bool:
    """``*`` matches anything; every other character, ``[`` included, only itself."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), test) is not None


def reason_for(test: str, reasons: List[Dict[str, str]]) -> Optional[str]:
    for entry in reasons:
        if matches(test, entry["pattern"]):
            return entry["why"]
    return None


def render(times: List[Tuple[str, float]], reasons: List[Dict[str, str]], top: int, label: str) -> str:
    """The Markdown block: the ``top`` slowest tests, their reasons, the totals (pure)."""
    ranked = sorted(times, key=lambda row: (-row[1], row[0]))[:top]
    total = sum(seconds for _, seconds in times)
    lines = [f"Source: {label}. {len(times)} tests, {total:.0f} s of test time in all "
             f"(summed over workers); the {len(ranked)} slowest take {sum(s for _, s in ranked):.0f} s.",
             "", "| # | test | s | why it is slow |", "|---|---|---|---|"]
    for number, (test, seconds) in enumerate(ranked, 1):
        why = reason_for(test, reasons) or "**no reason recorded** (add one to bench/slow_tests.toml)"
        lines.append(f"| {number} | `{test}` | {seconds:.1f} | {why} |")
    return "\n".join(lines)


def unexplained(times: List[Tuple[str, float]], reasons: List[Dict[str, str]], top: int) -> List[str]:
    ranked = sorted(times, key=lambda row: (-row[1], row[0]))[:top]
    return [test for test, _ in ranked if reason_for(test, reasons) is None]


def replace_block(page: str, block: str) -> str:
    if BEGIN not in page or END not in page:
        raise ValueError(f"the page has no {BEGIN} ... {END} markers")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("junit", type=Path, help="junit XML of a run of the kit's tests")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--reasons", type=Path, default=REASONS)
    parser.add_argument("--page", default=str(PAGE), help="page to update in place ('-': print the table)")
    parser.add_argument("--label", default=None, help="how the run was made (shown on the page)")
    parser.add_argument("--strict", action="store_true", help="fail when a listed test has no reason")
    args = parser.parse_args(argv)
    times = read_times(args.junit)
    reasons = load_reasons(args.reasons)
    block = render(times, reasons, args.top, args.label or args.junit.name)
    if args.page == "-":
        print(block)
    else:
        page = Path(args.page)
        page.write_text(replace_block(page.read_text(encoding="utf-8"), block), encoding="utf-8")
        print(f"slowest_tests: {page} updated", file=sys.stderr)
    missing = unexplained(times, reasons, args.top)
    for test in missing:
        print(f"slowest_tests: no reason recorded for {test}", file=sys.stderr)
    return 1 if (missing and args.strict) else 0


if __name__ == "__main__":
    raise SystemExit(main())
