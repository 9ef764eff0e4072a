"""The one probed full run shared by the leak and security tests (it takes a minute or two).

``probed_run`` runs ``ssconform run --impl stdlib --impl reference`` -- the
whole suite, both implementations -- with ``tests/reliability/probe`` first
on ``PYTHONPATH``: its ``sitecustomize`` logs every socket address bound,
connected or sent to, in every process of the run, and ``ssc_leakprobe``
(loaded by ``PYTEST_PLUGINS``) snapshots each pytest process before and
after the suite.  Around the run, this process measures what it can see from
outside: its own descriptors, its children (zombies included), the run's
private ``TMPDIR`` and the kit's entries in the system temporary directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, List

import pytest
import reliability_support as rs

from harness import shapes
from harness.core import timeouts

KIT_PREFIXES = ("ssc-", "ssconform-")


def kit_temp_entries() -> List[str]:
    found = []
    for base in dict.fromkeys([tempfile.gettempdir(), "/tmp"]):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        found += [os.path.join(base, n) for n in names if n.startswith(KIT_PREFIXES)]
    return sorted(found)


@dataclasses.dataclass
class ProbedRun:
    run: rs.Run
    out: Path
    sockets: List[dict]
    in_process: List[dict]
    outside: Dict[str, Dict[str, object]]
    strays: List[rs.Proc]
    tmpdir_left: List[str]


@pytest.fixture(scope="session")
def probed_run(tmp_path_factory) -> ProbedRun:
    if not rs.proc_environ_readable():
        pytest.skip("needs Linux /proc")
    if shapes.active() is not None:  # e.g. the Windows shape's appends are not atomic
        pytest.skip("the probe is a Linux instrument (/proc, logs appended with O_APPEND): not under an OS shape")
    base = tmp_path_factory.mktemp("probed")
    out, socket_log, leak_log = base / "out", base / "sockets.jsonl", base / "leaks.jsonl"
    before = {"fds": len(rs.open_fds()), "children": len(rs.children_of(os.getpid())),
              "kit_temp_entries": kit_temp_entries()}
    run = rs.ssconform(["run", "--impl", "stdlib", "--impl", "reference", "--out", str(out)], timeouts.long() * 25,
                       pythonpath=[rs.PROBE],
                       extra_env={"SSC_PROBE_SOCKET_LOG": str(socket_log), "SSC_PROBE_LEAK_FILE": str(leak_log),
                                  "PYTEST_PLUGINS": "ssc_leakprobe"})
    try:
        try:
            timeouts.wait_until(lambda: not rs.tagged_processes(run.tag), timeouts.short(), "the run's processes to end")
        except timeouts.HarnessTimeout:
            pass
        strays = rs.tagged_processes(run.tag)
        tmpdir_left = sorted(str(p.relative_to(run.tmpdir)) for p in run.tmpdir.rglob("*"))
        children = rs.children_of(os.getpid())
        after = {"fds": len(rs.open_fds()), "children": len(children),
                 "zombies": len([c for c in children if c.state == "Z"]),
                 "kit_temp_entries": kit_temp_entries()}
    finally:
        rs.cleanup(run)
    new_entries = sorted(set(after["kit_temp_entries"]) - set(before["kit_temp_entries"]))
    outside = {
        "before": {"fds": before["fds"], "children": before["children"], "zombies": 0,
                   "kit_temp_entries": len(before["kit_temp_entries"])},
        "after": {"fds": after["fds"], "children": after["children"], "zombies": after["zombies"],
                  "kit_temp_entries": len(after["kit_temp_entries"]),
                  "new_kit_temp_entries": new_entries},  # other users of the machine may add some
    }
    sockets = [json.loads(line) for line in socket_log.read_text(encoding="utf-8").splitlines()] \
        if socket_log.exists() else []
    in_process = [json.loads(line) for line in leak_log.read_text(encoding="utf-8").splitlines()] \
        if leak_log.exists() else []
    return ProbedRun(run, out, sockets, in_process, outside, strays, tmpdir_left)
