"""Security: loopback and private directories only, records as JSON only, hostile strings escaped.

Theory of operation
-------------------
* **Where the kit listens and talks.**  ``probed_run`` (conftest.py) runs the
  whole suite against stdlib and reference with ``probe/sitecustomize.py``
  loaded into every process, which logs each distinct address given to
  ``bind``, ``connect``/``connect_ex`` and ``sendto``.  Every IP address must
  be loopback (``127.0.0.1``, ``::1``) -- a failed attempt to bind ``::1`` on an
  IPv4 socket is still loopback -- and every AF_UNIX path must live in a
  directory of mode 0700 owned by us at the moment of the call.  A datagram
  reply to an unbound AF_UNIX client has no address at all (None or empty)
  and sends nothing.  A planted violation proves the scan can fail.
* **Records are data.**  A static scan of ``harness/`` and ``conformance/``
  for ``pickle``, ``marshal``, ``shelve``, ``eval(`` and ``exec(``; the only
  ``exec`` allowed is ``harness/implementations`` executing the ``.py`` file
  the user named with ``--impl`` (which the README must say).  A record whose
  strings look like code is read back as exactly those strings.
* **Hostile strings end to end.**  A record full of markup, Markdown table
  breakers and ``javascript:`` links goes through ``ssconform report``; the
  HTML must contain none of it unescaped and the Markdown must keep its table
  shape (unit-level escaping is tested in ``tests/report``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path

import reliability_support as rs

from harness.core import timeouts
from harness.core.capabilities import caps
from harness.results import records

LOOPBACK_NAMES = {"localhost"}
#: this user (Windows has no os.getuid: None there, and directory ownership is not checked)
ME = os.getuid() if hasattr(os, "getuid") else None


def violations(entries):
    """Log entries that leave loopback or use a non-private AF_UNIX directory."""
    found = []
    for entry in entries:
        family, address = entry["family"], entry["address"]
        if family in ("AF_INET", "AF_INET6"):
            host = address[0] if isinstance(address, list) and address else address
            if host in LOOPBACK_NAMES:
                continue
            try:
                if ipaddress.ip_address(str(host).split("%")[0]).is_loopback:
                    continue
            except ValueError:
                pass
            found.append(entry)
        elif family == "AF_UNIX":
            if address in (None, "") and entry["op"] == "sendto":
                continue  # a reply to an unbound client: nowhere to send
            if not isinstance(address, str) or not address.startswith("/"):
                found.append(entry)  # abstract namespace or autobind: not a private directory
            elif entry.get("dir_mode") != 0o700 or (ME is not None and entry.get("dir_uid") != ME):
                found.append(entry)
        else:
            found.append(entry)
    return found


def test_the_probe_saw_every_kind_of_socket(probed_run):
    kinds = {(e["op"], e["family"]) for e in probed_run.sockets}
    expected = {("bind", "AF_INET"), ("bind", "AF_INET6"), ("connect", "AF_INET"), ("sendto", "AF_INET")}
    if caps().af_unix:
        expected.add(("bind", "AF_UNIX"))
    assert expected <= kinds, kinds
    pids = {e["pid"] for e in probed_run.sockets}
    print(f"\nsocket probe: {len(probed_run.sockets)} distinct (op, family, address) per process, "
          f"{len(pids)} processes, kinds {sorted(kinds)}")
    assert len(pids) > 2, "the probe should see server processes and forked children too"


def test_every_address_is_loopback_or_a_private_directory(probed_run):
    bad = violations(probed_run.sockets)
    assert not bad, json.dumps(bad[:20], indent=1)


def test_the_scan_catches_planted_violations():
    planted = [
        {"op": "bind", "family": "AF_INET", "address": ["0.0.0.0", 0]},
        {"op": "bind", "family": "AF_INET", "address": ["", 0]},
        {"op": "bind", "family": "AF_INET6", "address": ["::", 0, 0, 0]},
        {"op": "connect", "family": "AF_INET", "address": ["192.0.2.1", 80]},
        {"op": "bind", "family": "AF_UNIX", "address": "/tmp/x/s", "dir_mode": 0o755, "dir_uid": ME},
        {"op": "bind", "family": "AF_UNIX", "address": "\0abstract"},
    ]
    assert violations(planted) == planted
    fine = [{"op": "bind", "family": "AF_INET", "address": ["127.0.0.1", 0]},
            {"op": "bind", "family": "AF_INET6", "address": ["::1", 0, 0, 0]},
            {"op": "bind", "family": "AF_UNIX", "address": "/tmp/p/s", "dir_mode": 0o700, "dir_uid": ME}]
    assert violations(fine) == []


# ------------------------------------------------------------ records are data

#: Modules that turn bytes into objects beyond JSON's, and calls that run text as code.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "yaml", "jsonpickle"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def unsafe_uses(source: str):
    """``(line, text)`` of every unsafe module name or call in ``source`` -- code tokens
    only, so docstrings and comments that *say* "never pickle" do not count."""
    import io
    import tokenize

    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]
    found = []
    for index, token in enumerate(tokens):
        if token.type != tokenize.NAME:
            continue
        before = tokens[index - 1].string if index else ""
        after = tokens[index + 1].string if index + 1 < len(tokens) else ""
        module = token.string in UNSAFE_MODULES and before != "."
        call = token.string in UNSAFE_CALLS and after == "(" and before != "."
        if module or (call and not _literal_argument(tokens, index + 2)):
            found.append((token.start[0], token.line.strip()))
    return found


def _literal_argument(tokens, index) -> bool:
    import tokenize

    return (index + 1 < len(tokens) and tokens[index].type == tokenize.STRING
            and tokens[index + 1].string == ")" and tokens[index - 2].string == "__import__")


def test_no_deserialiser_but_json_and_no_eval_in_the_kit():
    hits = []
    for package in ("harness", "conformance"):
        for path in sorted((rs.REPO / package).rglob("*.py")):
            for line, text in unsafe_uses(path.read_text(encoding="utf-8")):
                hits.append(f"{path.relative_to(rs.REPO)}:{line}: {text}")
    assert not hits, "\n".join(hits)


def test_the_scan_catches_planted_uses():
    planted = ("import pickle\nrecord = eval(text)\nexec (code)\nfrom yaml import load\n"
               "obj = marshal.loads(b)\nm = __import__(name)\nx = eval('1')\n")
    assert [line for line, _ in unsafe_uses(planted)] == [1, 2, 3, 4, 5, 6, 7]
    harmless = ('"""never pickle, never eval(x)"""\n# eval(x)\nexecutor.submit(f)\n'
                "spec.loader.exec_module(m)\nnode = ast.literal_eval(t)\nsel = __import__('select')\n")
    assert unsafe_uses(harmless) == []


def test_records_are_parsed_as_json_only(tmp_path):
    """Strings that look like code, pickles or YAML tags come back as the same strings."""
    path = rs.write_fake_record(tmp_path, {"API-001": "PASS"})
    record = records.read_record(path)
    payloads = ["__import__('os').system('touch PWNED')", "!!python/object/apply:os.system ['id']",
                "cos\nsystem\n(S'id'\ntR.", "{{7*7}}", "${7*7}", "<% 7*7 %>"]
    record["checks"][0]["message"] = payloads[0]
    record["checks"][0]["observed"] = {str(i): p for i, p in enumerate(payloads)}
    target = records.write_record(record, tmp_path, name="payload.json")
    again = records.read_record(target)
    assert again["checks"][0]["observed"] == {str(i): p for i, p in enumerate(payloads)}
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


def test_readme_says_that_impl_path_executes_the_file():
    text = (rs.REPO / "README.md").read_text(encoding="utf-8")
    assert re.search(r"--impl[^\n]*\.py[^\n]*execut|execut[^\n]*--impl[^\n]*\.py", text, re.I), \
        "README.md must state plainly that --impl path.py executes that file"


# ------------------------------------------------------------ hostile strings

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "\"><svg onload=alert(3)>",
    "javascript:alert(4)",
    "| col | injected |\n|---|---|",
    "[click](javascript:alert(5))",
    "</td></tr></table><h1>defaced</h1>",
    "{{ 7*7 }}{% raw %}",
    "`code` **bold** <!-- comment -->",
]


def test_hostile_record_strings_are_escaped_in_the_report(tmp_path):
    path = rs.write_fake_record(tmp_path / "in", {"API-001": "FAIL", "API-002": "TIMEOUT"}, impl="evil<b>impl")
    record = records.read_record(path)
    for index, check in enumerate(record["checks"]):
        check["title"] = HOSTILE[index % len(HOSTILE)]
        check["message"] = " ".join(HOSTILE)
        check["clause"] = HOSTILE[(index + 1) % len(HOSTILE)]
        check["observed"] = {h: h for h in HOSTILE}
        check["variant"] = "v<i>" if index else ""
    record["implementation"]["version"] = HOSTILE[0]
    record["fingerprint"]["os_version"] = HOSTILE[2]
    records.write_record(record, tmp_path / "in", name=path.name)
    out = tmp_path / "out"
    run = rs.ssconform(["report", str(tmp_path / "in"), "--out", str(out)], timeouts.medium())
    rs.cleanup(run)
    assert run.returncode == 0, run.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    for raw in ("<script>alert", "<img src=x", "<svg onload", "<h1>defaced", "<b>impl", "v<i>",
                "href=\"javascript:", "<!-- comment -->"):
        assert raw not in html, f"unescaped in HTML: {raw}"
    assert "alert(1)" in html, "the hostile text should still be shown, escaped"
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for raw in ("<script>", "<img", "<svg", "</td>", "<h1>"):
        assert raw not in markdown, f"unescaped in Markdown: {raw}"
    assert not re.search(r"(?<!\\)\]\(javascript:", markdown), "a live javascript: link in Markdown"
    lines = markdown.splitlines()
    rows = 0
    for number, line in enumerate(lines):
        if line.startswith("|") and "API-00" in line:
            header = next(lines[i] for i in range(number, -1, -1)
                          if lines[i].startswith("|") and (i == 0 or not lines[i - 1].startswith("|")))
            cells = len(re.findall(r"(?<!\\)\|", line))
            assert cells == len(re.findall(r"(?<!\\)\|", header)), f"table shape broken:\n{header}\n{line}"
            rows += 1
    assert rows, "no table row for the hostile checks"
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert HOSTILE[0] in json.dumps(data, ensure_ascii=False), "report.json keeps the data verbatim"
