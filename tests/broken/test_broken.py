"""Prove that the suite rejects deliberately broken implementations.

Theory of operation
-------------------
Each file in ``impls/`` is a complete socketserver implementation with
exactly one behaviour broken.  It starts from the running interpreter's
own ``socketserver`` source, executed into the file's namespace (so its
classes belong to it, as a real alternative's would), and then breaks one
thing.  The file declares, in a module-level literal ``BREAKS``, the check
IDs that must catch the breakage (a tuple of IDs, which must end FAIL, or
a dict ``{ID: outcome}`` for breakages that must end TIMEOUT or ERROR).

For each file we run the conformance suite restricted to those checks in a
fresh pytest process with ``--impl path/to/file.py`` and read the outcomes
from the run record.  That process collects only the check files of the
named areas (:func:`check_files`); a check that is not found is "not run",
which fails the test like any other outcome but the declared one.  ``impls/_control.py`` is the unbroken base: every
check named anywhere must PASS (or INFO) against it, which proves that the
failures come from the breakage and not from the harness.

Where the platform (or an OS shape, ``SSCONFORM_OS_SHAPE``) lacks what a
check requires -- ``fork``, ``AF_UNIX`` -- the check is UNSUPPORTED and
cannot show the breakage: it is left out, and an implementation whose every
named check is left out is skipped.  A file may also declare ``REQUIRES``, the
capabilities without which its breakage is the platform's own behaviour (no
``ForkingMixIn`` where there is no ``os.fork``); it is skipped where one is absent.
``NOT_ON = {ID: (os, ...)}`` leaves a check out on those OSes (real or shaped), where
the documented platform behaviour keeps the breakage from showing.  UNSUPPORTED counts only when the record
names a required capability that is absent in its fingerprint; otherwise it
is an outcome like any other, never an excuse.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness import shapes
from harness.core import timeouts
from harness.core.capabilities import caps
from harness.results import fingerprint

HERE = Path(__file__).parent
REPO = HERE.parent.parent
IMPLS = sorted(p for p in (HERE / "impls").glob("*.py") if not p.name.startswith("_"))
CONTROL = HERE / "impls" / "_control.py"


def _literal(path: Path, name: str):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return ast.literal_eval(node.value)
    return None


def declared_breaks(path: Path) -> dict:
    value = _literal(path, "BREAKS")
    if value is None:
        raise AssertionError(f"{path.name} declares no BREAKS")
    if isinstance(value, (tuple, list)):
        return {check_id: "FAIL" for check_id in value}
    return dict(value)


def this_os() -> str:
    """The OS this run stands for: the OS shape's (SSCONFORM_OS_SHAPE) or the real one."""
    shaped = shapes.active()
    return shaped["shape"] if shaped else fingerprint.os_name()


def declared_breaks_here(path: Path) -> dict:
    """``BREAKS`` without the checks its ``NOT_ON`` says cannot show the breakage on this OS."""
    not_on = _literal(path, "NOT_ON") or {}
    return {cid: want for cid, want in declared_breaks(path).items() if this_os() not in not_on.get(cid, ())}


def declared_requires(path: Path) -> tuple:
    """Capabilities without which the breakage is indistinguishable from the platform
    (``REQUIRES``: a missing ForkingMixIn is correct where there is no os.fork)."""
    return tuple(_literal(path, "REQUIRES") or ())


def check_files(check_ids) -> list:
    """The check files of ``check_ids`` (``AREA-NNN`` lives in ``test_area.py``).

    Collecting only these instead of the whole ``conformance.checks`` package
    is a quarter of a small run's CPU time (docs/test-timing.md); ``--check``
    then selects the same checks from them."""
    areas = sorted({check_id.split("-")[0].lower() for check_id in check_ids})
    return [str(REPO / "conformance" / "checks" / f"test_{area}.py") for area in areas]


def run_suite(impl: Path, check_ids, out: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [
        sys.executable, "-m", "pytest", *check_files(check_ids),
        "-c", str(REPO / "conformance" / "suite.ini"), "--rootdir", str(REPO),
        "--impl", str(impl), "--check", ",".join(sorted(check_ids)),
        "--ssconform-out", str(out), "-q", "-p", "no:cacheprovider",
    ]
    done = subprocess.run(command, cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=timeouts.long() * 3)
    records = list(out.glob("*.json"))
    assert len(records) == 1, f"no record from {impl.name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    record = json.loads(records[0].read_text(encoding="utf-8"))
    absent = {name for name, present in record["fingerprint"]["capabilities"].items() if present is False}
    outcomes: dict = {}
    for entry in record["checks"]:
        outcome = entry["outcome"]
        if outcome == "UNSUPPORTED" and not _named_capabilities(entry) & absent:
            outcome = "UNSUPPORTED with the capability present"
        # a parametrised check fails if any variant fails, and is UNSUPPORTED only if no variant ran
        previous = outcomes.get(entry["id"])
        if previous is None or _rank(outcome) > _rank(previous):
            outcomes[entry["id"]] = outcome
    return outcomes


def _named_capabilities(entry: dict) -> set:
    """The capabilities a check entry requires, declared or named by its UNSUPPORTED message."""
    named = set(entry.get("requires") or ())
    _, found, listed = (entry.get("message") or "").partition("capability absent:")
    if found:
        named |= {part.strip() for part in listed.split(",") if part.strip()}
    return named


def _rank(outcome: str) -> int:
    return {"UNSUPPORTED": 0, "SKIP": 1, "PASS": 2, "INFO": 2}.get(outcome, 3)


def applicable(breaks: dict, outcomes: dict) -> dict:
    """``breaks`` without the checks this platform cannot run (UNSUPPORTED, see the module docstring)."""
    return {cid: want for cid, want in breaks.items() if outcomes.get(cid) != "UNSUPPORTED"}


_UNSUPPORTED_HERE: list = []


def unsupported_here() -> frozenset:
    """IDs of the named checks the unbroken control cannot run on this platform (none where
    fork and AF_UNIX exist); an implementation that breaks only those is skipped unrun."""
    if caps().fork and caps().af_unix:
        return frozenset()
    if not _UNSUPPORTED_HERE:
        ids = {cid for path in IMPLS for cid in declared_breaks(path)}
        with tempfile.TemporaryDirectory() as directory:
            outcomes = run_suite(CONTROL, ids, Path(directory))
        _UNSUPPORTED_HERE.append(frozenset(cid for cid, outcome in outcomes.items() if outcome == "UNSUPPORTED"))
    return _UNSUPPORTED_HERE[0]


def test_every_broken_impl_declares_known_checks():
    assert IMPLS, "no broken implementations found"
    for path in IMPLS:
        breaks = declared_breaks(path)
        assert breaks, f"{path.name}: BREAKS is empty"
        for check_id in breaks:
            area = check_id.split("-")[0].lower()
            assert (REPO / "conformance" / "checks" / f"test_{area}.py").exists(), (
                f"{path.name}: {check_id} names no check file"
            )


@pytest.mark.parametrize("impl", IMPLS, ids=[p.stem for p in IMPLS])
def test_suite_rejects_broken_impl(impl, tmp_path):
    breaks = declared_breaks_here(impl)
    absent = [name for name in declared_requires(impl) if not caps().has(name)]
    if absent:
        pytest.skip(f"{impl.name}: its breakage shows only with {', '.join(absent)}, absent here")
    if set(breaks) <= unsupported_here():
        pytest.skip(f"{impl.name}: every check it breaks is UNSUPPORTED here: {sorted(breaks)}")
    outcomes = run_suite(impl, breaks, tmp_path)
    wanted = applicable(breaks, outcomes)
    if not wanted:
        pytest.skip(f"{impl.name}: every check it breaks is UNSUPPORTED here: {sorted(breaks)}")
    wrong = {cid: (want, outcomes.get(cid, "not run")) for cid, want in wanted.items()
             if outcomes.get(cid) != want}
    assert not wrong, f"{impl.name}: checks that did not catch the breakage (wanted, got): {wrong}"


def test_control_impl_passes_every_named_check(tmp_path):
    ids = set()
    for path in IMPLS:
        ids.update(declared_breaks(path))
    # The stdlib-based control declares no extension (its EXT checks would be UNSUPPORTED):
    # the control of the EXT checks is the reference, which declares and keeps every one.
    extension_ids = {cid for cid in ids if cid.startswith("EXT-")}
    outcomes = run_suite(CONTROL, ids - extension_ids, tmp_path / "control")
    if extension_ids:
        outcomes.update(run_suite(Path("reference"), extension_ids, tmp_path / "reference"))
    bad = {cid: outcome for cid, outcome in outcomes.items() if outcome not in ("PASS", "INFO", "UNSUPPORTED")}
    missing = ids - set(outcomes)
    assert not bad and not missing, f"control implementation: bad={bad} missing={sorted(missing)}"
