"""The composite action (action.yml) lints clean and works for a third party.

Theory of operation
-------------------
Three parts:

* **Linters.**  ``action.yml`` must pass ``check-jsonschema
  --builtin-schema vendor.github-actions`` and ``zizmor --offline``.
  actionlint lints workflows, not action metadata, so the action's steps are
  wrapped into a reusable workflow (``on: workflow_call`` with the action's
  inputs as its inputs): actionlint then type-checks every expression of
  the steps (undefined inputs, unknown step ids, bad contexts).  Each linter
  must also reject a deliberately broken action, so none passes by
  checking nothing.  A missing linter skips (or fails under
  ``SSCONFORM_REQUIRE_LINTERS=1``), exactly as in ``test_workflows.py``,
  whose helpers are reused.
* **A third party's workflow.**  A throw-away repository layout in a temp
  dir: a tiny package ``throwaway_ss`` (the standard library's socketserver
  with one deliberate deviation, ``request_queue_size = 7``), its
  expectation file explaining that deviation, and
  ``.github/workflows/conformance.yml`` whose job is the five lines the
  README shows.  That workflow passes all three linters.
* **A local run of the action's steps** (:mod:`tests.action_runner`) in that
  layout: the kit is pip-installed from this checkout (the action's own
  directory) into a fresh virtual environment, the throw-away package from
  the layout (``install: .``), and the suite runs with ``select: test_api``
  to stay quick.  With the expectation file the run is green and the
  outputs count one XFAIL; without it the verdict step fails and the
  outputs count one FAIL.  The job summary receives the Markdown report and
  the upload step is handed the directory holding the record.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import venv

import action_runner  # tests/ is on sys.path (pytest's rootdir insertion)
import pytest
from test_workflows import _actionlint, _check_jsonschema, _missing, _run, _zizmor

from harness.core import timeouts

ROOT = pathlib.Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"

pytestmark = pytest.mark.skipif(not ACTION.is_file(), reason="no action.yml in this tree")

README_HEADING = "## Use it in your CI"
#: What the test puts in place of the README's placeholders.
PIN = "34e114876b0b11c390a56381ad16ebd13914f8d5"
README_WITH = "with: {impl: mypkg.socketserver, install: .}"
THROWAWAY_WITH = "with: {impl: throwaway_ss, install: ., expectations: expectations.toml}"


def readme_workflow() -> str:
    """The workflow shown under README.md's "Use it in your CI"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_HEADING in text, f"README.md has no {README_HEADING!r} section"
    section = text.split(README_HEADING, 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def callers_workflow() -> str:
    """The README's workflow for the throw-away repository: its own package and expectations."""
    text = readme_workflow()
    assert README_WITH in text and "@<commit-sha>" in text
    return text.replace("OWNER/", "example/").replace("<commit-sha>", PIN).replace(README_WITH, THROWAWAY_WITH)


def test_readme_job_is_five_lines():
    text = readme_workflow()
    job = text.split("jobs:\n", 1)[1]
    assert len(job.strip("\n").splitlines()) == 5, job
    assert "uses: OWNER/socketserver-conformance@<commit-sha>" in job


IMPL_MODULE = '''\
"""A throw-away socketserver: the standard library's, with one deliberate deviation."""
import socketserver as _ss
from socketserver import *  # noqa: F401,F403
from socketserver import __all__  # noqa: F401

_ss.TCPServer.request_queue_size = 7  # deliberate: CPython's default is 5
'''

IMPL_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.18"]
build-backend = "hatchling.build"

[project]
name = "throwaway-ss"
version = "0.0.1"

[tool.hatch.build.targets.wheel]
packages = ["throwaway_ss"]
"""

IMPL_EXPECTATIONS = """\
[[expectation]]
id = "API-011"
outcome = "FAIL"
reason = "throwaway_ss listens with a backlog of 7 on purpose"
"""


# ------------------------------------------------------------------------ linters


def _check_action_schema(path: pathlib.Path) -> subprocess.CompletedProcess:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        _missing("check-jsonschema is not installed (it is in the 'test' extra)")
    return _run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions", str(path)])


def test_action_matches_the_github_action_schema():
    done = _check_action_schema(ACTION)
    assert done.returncode == 0, done.stdout + done.stderr


def test_action_schema_check_rejects_a_broken_action(tmp_path):
    bad = tmp_path / "action.yml"
    bad.write_text("name: x\ndescription: y\nruns:\n  using: composite\n  steps:\n    - run: echo\n      bogus: 1\n",
                   encoding="utf-8")
    assert _check_action_schema(bad).returncode != 0


def test_zizmor_finds_nothing_in_the_action():
    done = _zizmor(ACTION)
    assert done.returncode == 0, done.stdout + done.stderr


def _tiny_action(tmp_path, steps: str) -> pathlib.Path:
    """A minimal composite action with one input, ``impl``, and the given steps (YAML)."""
    path = tmp_path / "action.yml"
    head = "name: x\ndescription: y\ninputs:\n  impl:\n    description: z\nruns:\n  using: composite\n  steps:\n"
    path.write_text(head + textwrap.indent(textwrap.dedent(steps), "    "), encoding="utf-8")
    return path


def test_zizmor_rejects_an_insecure_action(tmp_path):
    bad = _tiny_action(tmp_path, """\
        - uses: actions/checkout@v4
        - run: echo "${{ inputs.impl }}"
          shell: bash
        """)
    done = _zizmor(bad)
    assert done.returncode != 0
    assert "template-injection" in done.stdout + done.stderr


def _as_reusable_workflow(action: dict) -> str:
    """The action's steps as one job of a ``workflow_call`` workflow, for actionlint."""
    from ruamel.yaml import YAML

    inputs = {name: {"type": "string", "required": bool(spec.get("required", False)),
                     **({"default": str(spec["default"])} if "default" in spec else {})}
              for name, spec in action.get("inputs", {}).items()}
    workflow = {
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "timeout-minutes": 30,
                            "steps": action["runs"]["steps"]}},
    }
    import io

    stream = io.StringIO()
    YAML().dump(workflow, stream)
    return stream.getvalue()


def test_actionlint_accepts_the_action_steps(tmp_path):
    wrapped = tmp_path / "action-steps.yml"
    wrapped.write_text(_as_reusable_workflow(action_runner.load(ACTION)), encoding="utf-8")
    findings = _actionlint([wrapped])
    assert findings == [], "\n".join(f"{f['line']}: {f['message']} [{f['kind']}]" for f in findings)


def test_actionlint_rejects_a_step_reading_an_undeclared_input(tmp_path):
    action = action_runner.load(ACTION)
    action["runs"]["steps"].append({"name": "bad", "shell": "bash", "env": {"X": "${{ inputs.no-such-input }}"},
                                    "run": "echo \"$X\""})
    wrapped = tmp_path / "action-steps.yml"
    wrapped.write_text(_as_reusable_workflow(action), encoding="utf-8")
    assert any("no-such-input" in f["message"] for f in _actionlint([wrapped]))


# ------------------------------------------------------- a third party's repository


@pytest.fixture
def third_party(tmp_path) -> pathlib.Path:
    repo = tmp_path / "third-party"
    (repo / "throwaway_ss").mkdir(parents=True)
    (repo / "throwaway_ss" / "__init__.py").write_text(IMPL_MODULE, encoding="utf-8")
    (repo / "pyproject.toml").write_text(IMPL_PYPROJECT, encoding="utf-8")
    (repo / "expectations.toml").write_text(IMPL_EXPECTATIONS, encoding="utf-8")
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "conformance.yml").write_text(callers_workflow(), encoding="utf-8")
    return repo


def test_the_callers_workflow_passes_the_linters(third_party):
    workflow = third_party / ".github" / "workflows" / "conformance.yml"
    assert _actionlint([workflow]) == []
    done = _check_jsonschema([workflow])
    assert done.returncode == 0, done.stdout + done.stderr
    done = _zizmor(workflow)
    assert done.returncode == 0, done.stdout + done.stderr


def _inputs_of_the_callers_job() -> dict:
    """The ``with:`` of the five-line job, as the action receives them."""
    from ruamel.yaml import YAML

    job = YAML(typ="safe").load(callers_workflow())["jobs"]["conformance"]
    return {key: str(value) for key, value in job["steps"][0]["with"].items()}


@pytest.fixture(scope="module")
def action_env(tmp_path_factory) -> dict:
    """A fresh virtual environment standing in for actions/setup-python's Python."""
    if shutil.which("bash") is None or os.name == "nt":
        pytest.skip("the action's run: steps are bash scripts; this runs them on POSIX only")
    where = tmp_path_factory.mktemp("setup-python") / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SSCONFORM_", "PYTEST_", "GITHUB_", "VIRTUAL_ENV"))}
    env["PATH"] = str(where / "bin") + os.pathsep + env.get("PATH", "")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run_action(repo: pathlib.Path, env: dict, **inputs: str) -> action_runner.Result:
    return action_runner.run(ACTION, inputs, workspace=repo, temp=repo.parent / "runner-temp", env=env,
                             step_timeout=timeouts.long() * 10)


def _log(result: action_runner.Result) -> str:
    return "\n".join(f"--- {s.name} [{s.kind} {s.returncode}]\n{s.output[-3000:]}" for s in result.steps)


def test_the_action_runs_green_for_a_third_party(third_party, action_env):
    inputs = _inputs_of_the_callers_job()
    result = _run_action(third_party, action_env, select="test_api", **inputs)
    log = _log(result)
    assert not result.failed, log
    assert result.outputs["exit-code"] == "0", log
    assert result.outputs["xfail"] == "1" and result.outputs["fail"] == "0", result.outputs
    assert int(result.outputs["pass"]) > 10 and result.outputs["unexpected"] == "0", result.outputs
    assert int(result.outputs["total"]) == sum(
        int(result.outputs[k]) for k in ("pass", "fail", "info", "error", "timeout", "xfail", "xpass",
                                         "unsupported", "skip"))
    fingerprint = next(s for s in result.steps if s.name == "Fingerprint")
    assert '"gil"' in fingerprint.output, fingerprint.output
    assert "API-011" in result.summary and "XFAIL" in result.summary, result.summary[:2000]
    uses = [d["uses"].split("@")[0] for d in result.delegated]
    assert uses == ["actions/checkout", "actions/setup-python", "actions/upload-artifact"]
    upload = result.delegated[-1]["with"]
    records = list(pathlib.Path(upload["path"]).glob("*.json"))
    assert any(p.name.startswith("throwaway_ss-") for p in records), records
    assert upload["name"].startswith("ssconform-Linux-") and upload["name"].endswith("-throwaway_ss")


def test_the_action_fails_on_an_unexplained_deviation(third_party, action_env):
    inputs = _inputs_of_the_callers_job()
    del inputs["expectations"]
    result = _run_action(third_party, action_env, select="test_api", **inputs)
    assert result.failed
    assert result.outputs["exit-code"] == "1" and result.outputs["fail"] == "1", result.outputs
    verdict = result.steps[-1]
    assert verdict.name == "Verdict" and verdict.returncode == 1, _log(result)
    # The summary and the upload still happen after the failure.
    assert "API-011" in result.summary
    assert result.delegated[-1]["uses"].startswith("actions/upload-artifact@")


def test_the_runner_refuses_an_unmodelled_expression(tmp_path):
    action = _tiny_action(tmp_path, """\
        - shell: bash
          env:
            X: ${{ github.event.issue.title }}
          run: echo "$X"
        """)
    with pytest.raises(action_runner.Unsupported):
        action_runner.run(action, {"impl": "x"}, workspace=tmp_path, temp=tmp_path / "t", env=dict(os.environ))
