"""No leaks: after a full run, nothing of it is left -- measured, not assumed.

Theory of operation
-------------------
``probed_run`` (conftest.py) runs the whole suite against stdlib and
reference once and measures before and after:

* from outside (this process): processes carrying the run's tag in their
  environment (any descendant, however re-parented), this process's own
  descriptors and children (zombies included), the run's private ``TMPDIR``
  (the CLI's per-process scratch directories are made there and must be gone,
  and the CLI must not have had to sweep leftovers), and the kit's entries in
  the system temporary directory (reported; other users of a shared machine
  can add some, so the assertion is on the private ``TMPDIR``);
* from inside each pytest process (``probe/ssc_leakprobe.py``): threads,
  descriptors, children and zombies before the first check and after the last.

The measured figures are printed (``-s``) for docs/reliability.md.
"""

from __future__ import annotations

import json
import os

from harness.cli import suite_run
from harness.core.capabilities import caps
from harness.results import records


def test_the_run_itself_succeeded(probed_run):
    run = probed_run.run
    assert not run.timed_out and run.returncode == 0, run.stderr[-3000:]
    found = [records.read_record(p) for p in probed_run.out.glob("*.json") if p.name != "report.json"]
    assert sorted(r["implementation"]["name"] for r in found) == ["reference", "stdlib"]
    assert all(len(r["checks"]) > 100 and not r.get("aborted") for r in found), "not a full run"


def test_no_process_of_the_run_survives_it(probed_run):
    assert not probed_run.strays, probed_run.strays


def test_no_zombie_child_and_no_descriptor_left_in_the_caller(probed_run):
    before, after = probed_run.outside["before"], probed_run.outside["after"]
    print("\nleaks outside:", json.dumps(probed_run.outside, indent=1))
    assert after["zombies"] == 0 and after["children"] == before["children"]
    assert after["fds"] == before["fds"]


def test_no_temporary_file_socket_or_directory_is_left(probed_run):
    assert probed_run.tmpdir_left == [], probed_run.tmpdir_left
    assert "temporary file(s) behind" not in probed_run.run.stderr, "the CLI had to sweep leftovers"
    # every AF_UNIX path the run used was inside a scratch directory of the CLI
    # (ssconform-XXXXXXXX, its children's TMPDIR), and those are all gone
    paths = [e["address"] for e in probed_run.sockets
             if e["family"] == "AF_UNIX" and isinstance(e["address"], str) and e["address"].startswith("/")]
    if not caps().af_unix:  # Windows: no AF_UNIX path to look for
        assert paths == [], paths
        return
    assert paths, "the probe saw no AF_UNIX path (is the probe loaded?)"
    scratch = {_scratch_of(p) for p in paths}
    assert None not in scratch, [p for p in paths if _scratch_of(p) is None][:10]
    assert not [d for d in scratch if os.path.exists(d)], "scratch directories left behind"


def _scratch_of(path: str):
    parts = path.split(os.sep)
    for index, part in enumerate(parts):
        if part.startswith("ssconform-") and len(part) == len("ssconform-") + 8:
            return os.sep.join(parts[: index + 1])
    return None


def test_each_pytest_process_ends_with_what_it_started_with(probed_run):
    snapshots = probed_run.in_process
    # one per pytest process: for stdlib and reference each, the xdist controller and its workers
    assert len(snapshots) == 2 * (1 + int(suite_run.DEFAULT_WORKERS)), [s["pid"] for s in snapshots]
    for snap in snapshots:
        before, after = snap["before"], snap["after"]
        print(f"\nleaks in pytest process {snap['pid']}: threads {len(before['threads'])} -> {len(after['threads'])}, "
              f"fds {len(before['fds'])} -> {len(after['fds'])}, children {len(before['children'])} -> "
              f"{len(after['children'])}, zombies {len(before['zombies'])} -> {len(after['zombies'])}")
        assert after["threads"] == before["threads"], set(after["threads"]) - set(before["threads"])
        new_fds = {fd: target for fd, target in after["fds"].items() if before["fds"].get(fd) != target}
        assert len(after["fds"]) <= len(before["fds"]), new_fds
        assert after["children"] == [] and after["zombies"] == []
