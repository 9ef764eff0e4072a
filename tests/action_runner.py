"""Run a composite GitHub Action's steps on this machine, as the runner would.

Theory of operation
-------------------
GitHub runs a composite action (``runs.using: composite``) step by step.
This module does the same for the parts that are the action's own code:

* each ``run:`` step is written to a file and executed with the runner's
  command for ``shell: bash`` (``bash --noprofile --norc -eo pipefail
  FILE``) in the caller's workspace, with its ``env:`` values expanded;
* ``${{ ... }}`` expressions are evaluated for the small vocabulary the
  action uses: ``inputs.NAME``, ``steps.ID.outputs.KEY``,
  ``github.action_path``, ``github.workspace``, ``runner.temp``,
  ``runner.os``.  Anything else raises :class:`Unsupported`, so the action
  cannot silently grow an expression that this runner (and its test)
  would evaluate wrongly.  ``if:`` conditions may be ``always()``,
  ``success()``, or ``inputs.NAME == 'x'`` / ``!= 'x'``;
* the files the runner provides (``GITHUB_OUTPUT``, ``GITHUB_ENV``,
  ``GITHUB_PATH``, ``GITHUB_STEP_SUMMARY``) are real files, read back after
  each step: outputs become ``steps.ID.outputs``, ``GITHUB_ENV`` and
  ``GITHUB_PATH`` change the environment of the following steps;
* ``uses:`` steps are other people's actions and are not run.  They are
  listed in :attr:`Result.delegated` with their ``with:`` values expanded,
  so a test can check what they would have received (the path an upload
  would take, for instance).  The caller supplies their effect: the
  workspace is already "checked out", and the Python on ``PATH`` is the one
  "set up".

After a failing step only ``always()`` steps run, as on GitHub, and the
action's ``outputs:`` are evaluated at the end.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
from typing import Dict, List, Optional

from ruamel.yaml import YAML

from harness.core import timeouts

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
CONDITION = re.compile(r"^inputs\.([A-Za-z0-9_-]+)\s*(==|!=)\s*'([^']*)'$")


class Unsupported(Exception):
    """The action uses an expression or construct this runner does not model."""


@dataclasses.dataclass
class StepResult:
    name: str
    kind: str  # "run", "uses" or "skipped"
    returncode: Optional[int] = None
    output: str = ""


@dataclasses.dataclass
class Result:
    steps: List[StepResult]
    outputs: Dict[str, str]
    step_outputs: Dict[str, Dict[str, str]]
    delegated: List[dict]
    summary: str
    failed: bool


def load(action_yml: pathlib.Path) -> dict:
    return YAML(typ="safe").load(action_yml.read_text(encoding="utf-8"))


class _Context:
    def __init__(self, action: dict, inputs: Dict[str, str], action_path: pathlib.Path,
                 workspace: pathlib.Path, temp: pathlib.Path):
        declared = action.get("inputs", {})
        unknown = set(inputs) - set(declared)
        if unknown:
            raise Unsupported(f"inputs not declared by the action: {sorted(unknown)}")
        self.inputs = {name: str(spec.get("default", "")) for name, spec in declared.items()}
        self.inputs.update(inputs)
        missing = [n for n, spec in declared.items() if spec.get("required") and not self.inputs.get(n)]
        if missing:
            raise Unsupported(f"required inputs missing: {missing}")
        self.values = {
            "github.action_path": str(action_path),
            "github.workspace": str(workspace),
            "runner.temp": str(temp),
            "runner.os": "Linux",
        }
        self.steps: Dict[str, Dict[str, str]] = {}

    def lookup(self, expr: str) -> str:
        if expr in self.values:
            return self.values[expr]
        match = re.fullmatch(r"inputs\.([A-Za-z0-9_-]+)", expr)
        if match:
            if match.group(1) not in self.inputs:
                raise Unsupported(f"undeclared input in ${{{{ {expr} }}}}")
            return self.inputs[match.group(1)]
        match = re.fullmatch(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", expr)
        if match:
            return self.steps.get(match.group(1), {}).get(match.group(2), "")
        raise Unsupported(f"expression not modelled: ${{{{ {expr} }}}}")

    def expand(self, text) -> str:
        return EXPRESSION.sub(lambda m: self.lookup(m.group(1)), str(text))

    def condition(self, expr: Optional[str], failed: bool) -> bool:
        if expr is None or expr == "success()":
            return not failed
        expr = EXPRESSION.sub(lambda m: m.group(1), str(expr)).strip()
        if expr == "always()":
            return True
        match = CONDITION.match(expr)
        if not match:
            raise Unsupported(f"if: {expr!r} is not modelled")
        name, op, literal = match.groups()
        equal = self.lookup(f"inputs.{name}") == literal
        return (equal if op == "==" else not equal) and not failed


def _read_pairs(path: pathlib.Path) -> Dict[str, str]:
    """``KEY=value`` lines and ``KEY<<DELIM`` blocks, as GitHub reads them."""
    pairs: Dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            index += 1
            pairs[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def run(action_yml: pathlib.Path, inputs: Dict[str, str], workspace: pathlib.Path,
        temp: pathlib.Path, env: Dict[str, str], step_timeout: Optional[float] = None) -> Result:
    """Run the composite action at ``action_yml`` with ``inputs`` in ``workspace``."""
    action = load(action_yml)
    if action.get("runs", {}).get("using") != "composite":
        raise Unsupported("not a composite action")
    context = _Context(action, inputs, action_yml.parent, workspace, temp)
    temp.mkdir(parents=True, exist_ok=True)
    summary_file = temp / "step_summary.md"
    summary_file.write_text("", encoding="utf-8")
    env = dict(env)
    results: List[StepResult] = []
    delegated: List[dict] = []
    failed = False
    for number, step in enumerate(action["runs"]["steps"]):
        name = step.get("name") or step.get("id") or f"step {number}"
        if not context.condition(step.get("if"), failed):
            results.append(StepResult(name, "skipped"))
            continue
        if "uses" in step:
            with_values = {k: context.expand(v) for k, v in (step.get("with") or {}).items()}
            delegated.append({"uses": step["uses"], "with": with_values, "name": name})
            results.append(StepResult(name, "uses"))
            continue
        if step.get("shell") != "bash":
            raise Unsupported(f"{name}: only shell: bash is modelled")
        if "${{" in step["run"]:
            raise Unsupported(f"{name}: an expression inside run: (template injection)")
        files = {key: temp / f"{key.lower()}-{number}" for key in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")}
        for path in files.values():
            path.write_text("", encoding="utf-8")
        script = temp / f"step-{number}.sh"
        script.write_text(step["run"], encoding="utf-8")
        step_env = dict(env)
        step_env.update({key: str(path) for key, path in files.items()})
        step_env.update({"GITHUB_STEP_SUMMARY": str(summary_file), "GITHUB_ACTION_PATH": str(action_yml.parent),
                         "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp)})
        step_env.update({k: context.expand(v) for k, v in (step.get("env") or {}).items()})
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=str(workspace), env=step_env, capture_output=True, text=True,
            timeout=step_timeout or timeouts.long() * 4, check=False,
        )
        results.append(StepResult(name, "run", done.returncode, done.stdout + done.stderr))
        if "id" in step:
            context.steps[step["id"]] = _read_pairs(files["GITHUB_OUTPUT"])
        env.update(_read_pairs(files["GITHUB_ENV"]))
        added = [line for line in files["GITHUB_PATH"].read_text(encoding="utf-8").splitlines() if line]
        if added:
            env["PATH"] = os.pathsep.join(list(reversed(added)) + [env.get("PATH", "")])
        if done.returncode != 0:
            failed = True
    outputs = {name: context.expand(spec["value"]) for name, spec in (action.get("outputs") or {}).items()}
    return Result(results, outputs, context.steps, delegated, summary_file.read_text(encoding="utf-8"), failed)
