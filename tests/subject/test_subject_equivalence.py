"""Equivalence: the host's own stdlib through the agent tells the same truth as in-process.

The whole suite runs twice on this interpreter against ``stdlib``: in-process,
and with ``--subject-python`` naming this same interpreter, so that the
implementation lives in an agent process.  Every check that ran both ways
(not UNSUPPORTED "needs in-process access" through the agent) must end with
the same outcome.  This is the proof that the agent path -- the mirror for
introspection, the spec-built servers for concurrency -- does not change
what a check concludes.  ``nox -s equivalence`` repeats it on 3.9-3.13.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from harness.core import timeouts
from harness.processes import supervisor

REPO = Path(__file__).resolve().parents[2]
NEEDS = "needs in-process access"
#: Areas whose every check variant must run both ways (issue 17: written once in spec form).
THROUGH_AGENT = ("TUTORIAL", "HANDLER", "PIPELINE", "DISCONNECT", "BIND", "UDP", "UNIX")

#: SERVE, SHUTDOWN, THREADING, FORKING: the check IDs that run through the agent (bench
#: servers, conformance/tools/remote_bench.py; the forking lab, agent.py --lab) and must
#: therefore run both ways here.  The others need the host's process: a host child changing
#: process-wide state (SERVE-015/016, SHUTDOWN-012[select]), the process's ResourceWarnings
#: (SHUTDOWN-013), or a handler/hook class of the check's own (THREADING-005/013).
RUN_BOTH_WAYS = (
    {f"SERVE-{n:03d}" for n in range(1, 15)}
    | {f"SHUTDOWN-{n:03d}" for n in range(1, 13)}
    | {f"THREADING-{n:03d}" for n in (1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12)}
    | {f"FORKING-{n:03d}" for n in range(1, 15)}
    | {"SERVE-013[poll_interval_none]"}  # a variant, named ID[variant]: its own wait for shutdown()
)


def _run(out: Path, *extra: str, impl: str = "stdlib") -> dict:
    """One inner run of the suite, under the kit's supervisor: a process group of its own
    (its xdist workers, and the agents they start, end with it), bounded, and on timeout
    stopped as a group.  ``--max-worker-restart 0``: a worker that crashes ends the run with
    its output here, instead of xdist restarting workers that may sit idle."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance.checks",
               "--impl", impl, "--ssconform-out", str(out), "-q", "-n", "2", "--max-worker-restart", "0",
               *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSCONFORM_") or k == "SSCONFORM_TIMEOUT_MULTIPLIER"}
    done = supervisor.run_captured(command, what="the inner conformance run", budget=timeouts.long() * 10,
                                   env=env, cwd=str(REPO))
    records = sorted(out.glob("*.json"))
    assert len(records) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(records[0].read_text(encoding="utf-8"))


def test_agent_path_outcomes_equal_in_process_outcomes(tmp_path):
    local = _run(tmp_path / "local")
    agent = _run(tmp_path / "agent", "--subject-python", sys.executable)
    assert agent["fingerprint"]["subject"]["via"] == "agent"
    assert "subject" not in local["fingerprint"]
    here = {(c["id"], c["variant"]): c for c in local["checks"]}
    both = {}
    for entry in agent["checks"]:
        key = (entry["id"], entry["variant"])
        if entry["outcome"] == "UNSUPPORTED" and NEEDS in entry["message"]:
            continue
        both[key] = (here[key]["outcome"], entry["outcome"])
    differ = {f"{k[0]}[{k[1]}]": v for k, v in both.items() if v[0] != v[1]}
    assert not differ, f"in-process vs agent outcomes differ: {differ}"
    left_out = sorted(f"{k[0]}[{k[1]}]" for k in here if k[0].split("-")[0] in THROUGH_AGENT and k not in both)
    assert not left_out, f"did not run through the agent: {left_out}"
    missing = sorted(RUN_BOTH_WAYS - {key[0] for key in both} - {f"{k[0]}[{k[1]}]" for k in both if k[1]})
    assert not missing, f"check IDs that should run through the agent but did not: {missing}"
    ran = len(both)
    assert ran >= 30, f"only {ran} check variants ran through the agent"
    print(f"equivalence: {ran} of {len(agent['checks'])} check variants ran both ways, all equal")


# extport: the EXT checks (declared extensions) run through the agent too.  The stdlib declares
# none, so for it both ways end UNSUPPORTED "not declared"; the reference declares all four,
# and the test below runs them both ways against it, every variant (EXT-004's select ones in a
# fresh agent without PollSelector).
RUN_BOTH_WAYS = RUN_BOTH_WAYS | {f"EXT-{n:03d}" for n in range(1, 5)}


def test_declared_extensions_end_alike_both_ways_for_the_reference(tmp_path):
    """extport: the reference (which declares every extension) as the subject, on this
    interpreter: each EXT variant ran through the agent and ends as in-process."""
    select = ("-k", "test_ext.py")
    local = _run(tmp_path / "local", *select, impl="reference")
    agent = _run(tmp_path / "agent", *select, "--subject-python", sys.executable, impl="reference")
    assert agent["fingerprint"]["subject"]["via"] == "agent"
    here = {(c["id"], c["variant"]): c["outcome"] for c in local["checks"]}
    there = {(c["id"], c["variant"]): (c["outcome"], c["message"] or "") for c in agent["checks"]}
    assert set(here) == set(there) and {key[0] for key in here} == {f"EXT-{n:03d}" for n in range(1, 5)}
    left_out = sorted(key for key, (_, message) in there.items() if NEEDS in message)
    assert not left_out, f"EXT variants not through the agent: {left_out}"
    differ = {f"{k[0]}[{k[1]}]": (here[k], there[k][0]) for k in there if here[k] != there[k][0]}
    assert not differ, f"in-process vs agent outcomes differ (reference): {differ}"
    assert all(here[k] == "PASS" for k in here), f"the reference keeps every promise in-process: {here}"
