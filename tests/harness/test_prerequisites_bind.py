"""coll-bind: prerequisites of the BIND/UNIX checks and of the serving loop, and who owns them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.tools.lab import lab
from harness.core import timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.implementations import resolve

REPO = Path(__file__).resolve().parents[2]
BROKEN = REPO / "tests" / "broken" / "impls"


def test_a_late_bind_on_a_socket_the_constructor_bound_names_bind_002():
    """A constructor that binds whatever bind_and_activate says leaves the check nothing to bind
    later (EINVAL): the check cannot judge server_bind()/server_activate() and names BIND-002.
    A constructor that leaves the socket unbound is bound by the check as before."""
    with lab(resolve("stdlib")) as made:
        server = made.build("TCPServer", bind_and_activate=False).built()
        assert server.invoke("server_bind").error is None
    with lab(resolve(str(BROKEN / "bind_ignores_bind_and_activate.py"))) as made:
        server = made.build("UDPServer", bind_and_activate=False).built()
        with pytest.raises(PreconditionFailed) as info:
            server.invoke("server_bind")
        assert info.value.prerequisite == "BIND-002" and "bound to" in info.value.detail
        built = made.build("TCPServer").built()  # bind_and_activate=True: nothing to refuse
        assert built.invoke("server_close").error is None


def _graded(impl: str, check_ids, out: Path) -> dict:
    """(id, variant) -> (outcome, prerequisite) of ``check_ids`` run against ``impl`` (a broken
    implementation's stem, or ``_control``), in a fresh pytest process as the suite runs them."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    areas = sorted({check_id.split("-")[0].lower() for check_id in check_ids})
    command = [sys.executable, "-m", "pytest", *(str(REPO / "conformance" / "checks" / f"test_{a}.py") for a in areas),
               "-c", str(REPO / "conformance" / "suite.ini"), "--rootdir", str(REPO),
               "--impl", str(BROKEN / f"{impl}.py"), "--check", ",".join(sorted(check_ids)),
               "--ssconform-out", str(out), "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=timeouts.long() * 3)
    records = list(out.glob("*.json"))
    assert len(records) == 1, f"no record from {impl}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    record = json.loads(records[0].read_text(encoding="utf-8"))
    return {(c["id"], c["variant"]): (c["outcome"], c.get("prerequisite")) for c in record["checks"]}


#: implementation -> {check: the owner its PRECONDITION_FAILED names}: checks that depend on a
#: behaviour another check owns, each proved on the control (PASS) and on the defect
DEPENDENTS = {
    "bind_ignores_bind_and_activate": {"BIND-003": "BIND-002", "BIND-005": "BIND-002", "BIND-006": "BIND-002"},
    "bind_fileno_dup": {"SERVE-015": "BIND-016"},
}


@pytest.mark.parametrize("impl", sorted(DEPENDENTS))
def test_a_check_that_depends_on_another_checks_behaviour_names_it(impl, tmp_path):
    wanted = DEPENDENTS[impl]
    control = _graded("_control", wanted, tmp_path / "control")
    assert {key: got for key, got in control.items() if got[0] not in ("PASS", "INFO", "UNSUPPORTED")} == {}
    graded = _graded(impl, wanted, tmp_path / "broken")
    assert {check for check, _ in graded} == set(wanted), graded
    wrong = {key: got for key, got in graded.items()
             if got != ("PRECONDITION_FAILED", wanted[key[0]]) and got[0] != "UNSUPPORTED"}
    assert wrong == {}, f"{impl}: (outcome, prerequisite) other than PRECONDITION_FAILED naming the owner"
