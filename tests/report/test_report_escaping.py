"""Hostile strings from records come out inert in HTML, SVG and Markdown."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import report_samples as rs

from harness.report.merge import merge_records
from harness.report.render_html import render_html
from harness.report.render_md import md_escape, render_markdown

SCRIPT = "<script>alert(1)</script>"
ATTR = '" onerror="x'
LINK = "](javascript:alert(1))"
PIPE = "a|b|c"
HOSTILE = f"{SCRIPT} {ATTR} {LINK} {PIPE} `tick` & [x] <img src=x onerror=alert(2)> @octocat\nnext line"


def _hostile_model():
    hostile_timeline = [{"client": SCRIPT, "start": 0.0, "end": 0.1, "pid": ATTR, "tid": PIPE},
                        {"client": 1, "start": 0.05, "end": 0.2, "pid": 1, "tid": 2}]
    checks_a = [
        rs.check("TCP-001", outcome="FAIL", variant=HOSTILE, title=HOSTILE, message=HOSTILE,
                 observed={"summary": HOSTILE}, clause=HOSTILE),
        rs.check("TCP-002", "PLATFORM", "INFO", title=HOSTILE, observed={"value": HOSTILE, "k|ey": PIPE},
                 documented={"os": "linux", "value": HOSTILE, "source": HOSTILE, "confidence": "U"},
                 agrees=False),
        rs.check("MIXIN-001", title=HOSTILE, observed={"timeline": hostile_timeline}),
        rs.check("API-010", outcome="XFAIL", expected_outcome="FAIL", expectation_reason=HOSTILE, title=HOSTILE,
                 message=HOSTILE),
    ]
    checks_b = [
        rs.check("TCP-001", variant=HOSTILE, title=HOSTILE, observed={"summary": "fine"}),
        rs.check("TCP-002", "PLATFORM", "INFO", title=HOSTILE, observed={"value": "other"}),
        rs.check("MIXIN-001", title=HOSTILE, observed={"timeline": hostile_timeline}),
        rs.check("API-010", title=HOSTILE),
    ]
    a = rs.make_record(checks_a, impl=HOSTILE.replace("\n", " "), impl_version=HOSTILE, machine=HOSTILE,
                       aborted=HOSTILE)
    b = rs.make_record(checks_b, python_version="3.13.0")
    return merge_records([("a.json", a), ("b.json", b)])


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_escapes_everything_from_records():
    page = render_html(_hostile_model())
    parser = _Collector()
    parser.feed(page)
    tags = [tag for tag, _ in parser.tags]
    assert tags.count("script") == 1  # ours, nothing injected
    assert "img" not in tags
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for value in attrs.values():
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34; onerror=&#34;x" in page or "&quot; onerror=&quot;x" in page
    # The decoded text still says what the record said (escaped, not dropped).
    assert SCRIPT in "".join(parser.text)


def test_html_has_a_strict_content_security_policy():
    page = render_html(_hostile_model())
    match = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert match
    policy = match.group(1)
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", policy)
    assert "http" not in policy
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external asset


def test_svg_text_is_escaped():
    page = render_html(_hostile_model())
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert svgs
    for svg in svgs:
        assert "<script" not in svg and 'onerror="' not in svg
    assert any("client &lt;script&gt;" in svg for svg in svgs)


def _outside_fences(text):
    return re.sub(r"```.*?```", "", text, flags=re.S)


def test_markdown_escapes_everything_from_records():
    text = render_markdown(_hostile_model())
    body = _outside_fences(text)
    for tag in ("<details>", "<summary>", "</summary>", "</details>"):
        body = body.replace(tag, "")
    assert "<" not in body and ">" not in body  # no raw HTML passthrough
    assert not re.search(r"(?<!\\)\]\(", body)  # no link can open
    assert not re.search(r"(?<!\\)`", body)  # no code span from record data
    assert "@octocat" not in body  # nobody gets mentioned
    assert "&lt;script&gt;" in body


def test_markdown_tables_keep_their_shape():
    text = render_markdown(_hostile_model())
    table = []
    for line in _outside_fences(text).splitlines() + [""]:
        if line.startswith("|"):
            table.append(len(re.split(r"(?<!\\)\|", line)))
        elif table:
            assert len(set(table)) == 1, table
            table = []


def test_md_escape_unit():
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("x\ny") == "x y"
    assert md_escape("<b>&") == "&lt;b&gt;&amp;"
    assert md_escape("[t](javascript:x)") == "\\[t\\](javascript:x)"
    assert md_escape("`c`") == "\\`c\\`"
