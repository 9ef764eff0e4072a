"""Shared machinery of the reliability tests: run ``ssconform`` as a user would, then look around.

Theory of operation
-------------------
Every test in this directory drives the real CLI in a subprocess
(``python -m harness ...`` from the checkout), because hangs, leaks and exit
statuses are properties of the whole run, not of a function.  Each run gets

* a **tag**: a random value in the environment variable ``SSC_RELIABILITY_TAG``.
  Every descendant inherits the environment (the CLI, its pytest processes,
  ``harness.processes.server_process`` children and their forked handlers), so after
  the run :func:`tagged_processes` finds whatever survived by reading
  ``/proc/<pid>/environ`` -- no matter how it was started or re-parented;
* a **private TMPDIR** (mode 0700, a short path so that the kit's AF_UNIX
  directories are made inside it rather than in ``/tmp``): what the run left
  in it is what it leaked.

Bounds: every subprocess wait has a budget from :mod:`harness.core.timeouts`.
Survivors are killed by :func:`kill` (by pid, after the assertion collected
them), so a failing test does not leave a hung process on the machine.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from harness.core import timeouts
from harness.results import records

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
IMPLS = HERE / "impls"
PROBE = HERE / "probe"
TAG_VAR = "SSC_RELIABILITY_TAG"


def proc_environ_readable() -> bool:
    """Whether this platform lets us read other processes' environments (Linux /proc)."""
    try:
        with open(f"/proc/{os.getpid()}/environ", "rb") as handle:
            handle.read()
    except OSError:
        return False
    return True


@dataclasses.dataclass
class Run:
    """One finished ``ssconform`` invocation."""

    args: List[str]
    returncode: Optional[int]
    stdout: str
    stderr: str
    wall: float
    tag: str
    tmpdir: Path
    timed_out: bool = False


@dataclasses.dataclass
class Proc:
    pid: int
    ppid: int
    state: str
    cmdline: str


def base_env(extra: Optional[Dict[str, str]] = None, pythonpath: Sequence[str] = ()) -> Dict[str, str]:
    env = dict(os.environ)
    for name in ("SSCONFORM_IMPL", "SSCONFORM_OUT", "SSCONFORM_EXPECTATIONS", "SSCONFORM_REPEAT_INDEX",
                 "SSCONFORM_SIMULATE_ABSENT", timeouts.ENV_VAR, "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(name, None)
    parts = [str(p) for p in pythonpath] + [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.update(extra or {})
    return env


def ssconform(args: Sequence[str], budget: float, *, extra_env: Optional[Dict[str, str]] = None,
              pythonpath: Sequence[str] = (), tmp_root: Optional[Path] = None) -> Run:
    """Run ``python -m harness ARGS`` bounded by ``budget``, tagged, with a private TMPDIR.

    The TMPDIR is made under ``tmp_root`` (default ``/tmp`` when it exists,
    for a short AF_UNIX-friendly path) and left for the caller to inspect and
    remove (:func:`cleanup`)."""
    tag = uuid.uuid4().hex
    base = str(tmp_root) if tmp_root else ("/tmp" if os.path.isdir("/tmp") else None)
    tmpdir = Path(tempfile.mkdtemp(prefix="sscrel-", dir=base))
    os.chmod(tmpdir, 0o700)
    env = base_env(dict(extra_env or {}, **{TAG_VAR: tag, "TMPDIR": str(tmpdir)}), pythonpath)
    command = [sys.executable, "-m", "harness", *args]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=budget)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        kill([p.pid for p in tagged_processes(tag)] + [process.pid])
        stdout, stderr = process.communicate(timeout=timeouts.short())
    return Run(list(args), process.returncode, stdout, stderr, time.monotonic() - started, tag, tmpdir,
               timed_out)


def cleanup(run: Run) -> None:
    kill([p.pid for p in tagged_processes(run.tag)])
    shutil.rmtree(run.tmpdir, ignore_errors=True)


# ------------------------------------------------------------------ processes


def _read(path: str, binary: bool = False):
    with open(path, "rb") as handle:
        data = handle.read()
    return data if binary else data.decode("utf-8", "replace")


def process(pid: int) -> Optional[Proc]:
    try:
        stat = _read(f"/proc/{pid}/stat")
        cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return Proc(pid, int(fields[1]), fields[0], cmdline)


def tagged_processes(tag: str) -> List[Proc]:
    """Live processes (zombies included) whose environment carries ``tag``."""
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            environ = _read(f"/proc/{name}/environ", binary=True)
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            info = process(int(name))
            if info is not None:
                found.append(info)
    return found


def children_of(pid: int) -> List[Proc]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = process(int(name))
            if info is not None and info.ppid == pid:
                found.append(info)
    return found


def kill(pids: Sequence[int]) -> None:
    """SIGKILL each pid (and its process group when it leads one); errors ignored."""
    actions = [action for action in (getattr(os, "killpg", None), os.kill) if action is not None]
    signal_number = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows: os.kill terminates with any number
    for pid in pids:
        for action in actions:
            try:
                action(pid, signal_number)
            except OSError:
                pass


def open_fds() -> Dict[str, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
    return found


# ------------------------------------------------------------------- files


def tree(path: Path) -> Dict[str, str]:
    """``{relative path: sha256}`` of every file under ``path`` (directories as ``dir``)."""
    found: Dict[str, str] = {}
    if not path.exists():
        return found
    for item in sorted(path.rglob("*")):
        rel = str(item.relative_to(path))
        if item.is_symlink():
            found[rel] = "link:" + os.readlink(item)
        elif item.is_dir():
            found[rel] = "dir"
        elif item.is_socket():
            found[rel] = "socket"
        else:
            found[rel] = hashlib.sha256(item.read_bytes()).hexdigest()
    return found


def only_record(out: Path) -> dict:
    found = [p for p in out.glob("*.json") if p.name != "report.json"]
    assert len(found) == 1, f"expected one record in {out}, found {[p.name for p in found]}"
    return records.read_record(found[0])


def outcomes(record: dict) -> Dict[str, str]:
    """``{ID or ID[variant]: outcome}``."""
    return {(f"{c['id']}[{c['variant']}]" if c["variant"] else c["id"]): c["outcome"] for c in record["checks"]}


def by_id(record: dict) -> Dict[str, List[dict]]:
    grouped: Dict[str, List[dict]] = {}
    for check in record["checks"]:
        grouped.setdefault(check["id"], []).append(check)
    return grouped


@functools.cache
def check_functions() -> Dict[str, str]:
    """``{check ID: test function name}``, read from the ``@check("ID", ...)`` decorators
    of ``conformance/checks/test_*.py`` (static: no collection run needed)."""
    names: Dict[str, str] = {}
    for path in sorted((REPO / "conformance" / "checks").glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "check"
                        and decorator.args and isinstance(decorator.args[0], ast.Constant)):
                    names[decorator.args[0].value] = node.name
    return names


def keyword_for(check_ids: Sequence[str]) -> str:
    """A ``-k`` expression selecting exactly the functions of ``check_ids``."""
    names = check_functions()
    missing = [i for i in check_ids if i not in names]
    assert not missing, f"unknown check IDs {missing}"
    return " or ".join(sorted({names[i] for i in check_ids}))


def write_fake_record(directory, outcomes: Dict[str, str], impl: str = "stdlib") -> Path:
    """A valid record of ``impl`` with ``{check ID: outcome}`` (for fake pytest processes)."""
    from harness.implementations import resolve
    from harness.results.fingerprint import fingerprint

    loaded = resolve("stdlib")
    record = records.new_record(dict(loaded.describe(), name=impl, spec=impl), fingerprint(loaded, env={}), {})
    checks = [records.check_entry(id=cid, level="REQUIRED", outcome=outcome, title=cid,
                                  message="timed out after 1.00s waiting for server.shutdown()"
                                  if outcome == "TIMEOUT" else "")
              for cid, outcome in outcomes.items()]
    records.finish_record(record, checks)
    return records.write_record(record, directory)
