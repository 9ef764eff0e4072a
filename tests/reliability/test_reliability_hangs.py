"""No hangs: implementations that hang turn the affected checks into TIMEOUT, and the run ends.

Theory of operation
-------------------
Each file ``impls/hang_*.py`` is a complete socketserver implementation (the
running interpreter's own source executed into the file) that hangs in
exactly one way -- ``shutdown()`` never returns, ``serve_forever`` ignores
``shutdown()``, ``accept`` blocks, a handler never returns, ``server_close()``
blocks, ``handle_request()`` never returns, ``server_activate()`` (so the
constructor) never returns -- by blocking on an event that is never set, as a
real deadlock would.

For each, ``ssconform run --impl FILE -k ...`` runs the checks that exercise
the hung path plus a few that do not (selected by function name, see
:func:`reliability_support.keyword_for`), at ``--timeout-multiplier``
:data:`MULTIPLIER` so that a hang costs a fraction of a second.  Asserted:

* the run ends on its own well within the test's bound, and is not aborted;
* every selected check has an outcome (none missing);
* the check that owns the hung call ends **TIMEOUT** (not FAIL, not ERROR)
  with a message saying what was waited for (``server.shutdown()`` ...), and
  the report (``report.md``) shows that message next to the check;
* checks that only need the hung call to tear down, or that cannot proceed
  without it, end **PRECONDITION_FAILED** naming the check that owns it
  (``precondition``), or keep their own verdict when the harness could stop
  the loop without it (a hung ``shutdown()`` is waited for once per run);
  hangs other than ``shutdown()``/``serve_forever`` are found once per process
  by :mod:`harness.serving.prerequisite_probes`, and later calls end at once;
* the unrelated checks still PASS (or INFO);
* afterwards no process of the run is alive (found by the run's tag in
  ``/proc/<pid>/environ``, however it was started or re-parented), and the
  run's temporary directory is empty.
"""

from __future__ import annotations

import html
import re
import signal

import pytest
import reliability_support as rs

from harness.core import timeouts

pytestmark = pytest.mark.skipif(not rs.proc_environ_readable(), reason="needs Linux /proc")

#: Small enough that each hang costs ~1.5 s, large enough for the unrelated checks on a loaded machine.
MULTIPLIER = "0.3"

#: impl file stem -> checks that must TIMEOUT (with a word of what hung in the message), checks that must pass
CASES = {
    "hang_shutdown": {
        # shutdown() is waited for once (in the first teardown); the loop stops anyway
        # (shutdown() set its flag), so checks that only tear down keep their verdict
        "timeout": ["SHUTDOWN-001"],
        "precondition": {"SHUTDOWN-004": "SHUTDOWN-001", "SHUTDOWN-007": "SHUTDOWN-001",
                         "THREADING-012": "SHUTDOWN-001"},
        "what": "shutdown()",
        "pass": ["API-012", "PIPELINE-001", "SERVE-003", "BIND-015", "SERVE-007", "HANDLER-005", "UDP-001"],
    },
    "hang_serve_forever": {
        # the loop cannot be stopped at all: every check that served ends PRECONDITION_FAILED
        "timeout": ["SHUTDOWN-001"],
        "precondition": {"SHUTDOWN-004": "SHUTDOWN-001", "SERVE-005": "SHUTDOWN-001",
                         "HANDLER-001": "SHUTDOWN-001", "UDP-001": "SHUTDOWN-001",
                         "SHUTDOWN-007": "SHUTDOWN-001"},
        "what": "shutdown()",
        "pass": ["API-012", "PIPELINE-001", "SERVE-003", "BIND-015"],
    },
    # the other hangs are found once per process by harness.serving.prerequisite_probes, before the
    # first check: the check that owns the hung call TIMEOUTs (whether it runs first or
    # last), every other check that makes the call ends PRECONDITION_FAILED naming it at once
    "hang_accept": {
        "timeout": ["PIPELINE-013[tcp]"],
        "precondition": {cid: "PIPELINE-013" for cid in (
            "SHUTDOWN-004", "PIPELINE-001", "HANDLER-005", "SERVE-003", "CONCURRENCY-001", "DISCONNECT-003",
            "TUTORIAL-003")},
        "what": "get_request()",
        "pass": ["API-012", "UDP-001", "BIND-015", "PIPELINE-013[udp]"],
    },
    "hang_handler": {
        # THREADING-001: a stuck handler thread would not be a daemon; the guard ends the
        # handler before it can get stuck, and ssconform run ends promptly either way
        "timeout": ["HANDLER-001"],
        "precondition": {cid: "HANDLER-001" for cid in (
            "SHUTDOWN-004", "PIPELINE-001", "HANDLER-005", "UDP-001", "THREADING-001", "DISCONNECT-008",
            "CONCURRENCY-004")},
        "what": "TCPServer.finish_request()",
        "pass": ["API-012", "BIND-015", "SERVE-001"],
    },
    "hang_server_close": {
        # teardowns do not call a server_close() known to hang (the check's verdict stands);
        # checks that call it themselves end PRECONDITION_FAILED naming BIND-015
        "timeout": ["BIND-015"],
        "precondition": {cid: "BIND-015" for cid in ("SHUTDOWN-008", "PIPELINE-001", "THREADING-009")},
        "what": "server_close()",
        "pass": ["API-012", "API-016", "SERVE-007"],
    },
    "hang_server_activate": {
        # the constructor hangs once, in the probe (bounded); afterwards every construction
        # of a stream server, also in the check's own thread, ends at once
        "timeout": ["BIND-001[tcp]"],
        "precondition": {"SHUTDOWN-004": "BIND-001"},
        "what": "server_activate()",
        "pass": ["API-012", "UDP-001", "BIND-001[udp]"],
    },
    "hang_handle_request": {
        "timeout": ["SERVE-001"],
        "precondition": {cid: "SERVE-001" for cid in ("PIPELINE-001", "SERVE-009", "SERVE-003", "PIPELINE-005")},
        "what": "handle_request()",
        "pass": ["API-012", "SHUTDOWN-004", "SERVE-005", "UDP-001"],
    },
}

GOOD = {"PASS", "INFO"}


def _unescape_md(text: str) -> str:
    """report.md's text as a reader sees it: Markdown backslash escapes and HTML entities undone."""
    return html.unescape(re.sub(r"\\([\\`*_{}\[\]()#+\-.!|<>~])", r"\1", text))


_RUNS = {}


def _run_case(name, tmp_path_factory):
    """Run the suite once per implementation (shared by the tests below)."""
    if name in _RUNS:
        return _RUNS[name]
    case = CASES[name]
    selected = sorted({_bare(cid) for cid in case["timeout"] + list(case.get("precondition", {})) + case["pass"]})
    out = tmp_path_factory.mktemp(name) / "out"
    bound = timeouts.long() * 4
    run = rs.ssconform(["run", "--impl", str(rs.IMPLS / f"{name}.py"), "--out", str(out),
                        "-k", rs.keyword_for(selected), "--timeout-multiplier", MULTIPLIER], bound)
    try:
        # processes: none of the run may outlive it (a short grace for exits already under way)
        try:
            timeouts.wait_until(lambda: not rs.tagged_processes(run.tag), timeouts.short(), "the run's processes")
        except timeouts.HarnessTimeout:
            pass
        strays = rs.tagged_processes(run.tag)
        left = sorted(str(p.relative_to(run.tmpdir)) for p in run.tmpdir.rglob("*"))
    finally:
        rs.cleanup(run)
    _RUNS[name] = (run, out, bound, strays, left, selected)
    return _RUNS[name]


def _bare(label):
    return label.split("[", 1)[0]


def _matching(checks, label):
    """The records of ``label`` (an ID, or ``ID[variant]`` for one variant)."""
    cid, _, variant = label.partition("[")
    return [c for c in checks.get(cid, []) if not variant or c["variant"] == variant.rstrip("]")]


def _label(cid, check):
    return f"{cid}[{check['variant']}]" if check["variant"] else cid


def _unsupported_here(check) -> bool:
    return check["outcome"] == "UNSUPPORTED" and "capability absent" in (check.get("message") or "")


def _assert_timeouts(case, cids, checks, report):
    wrong = {}
    for label in cids:
        cid = _bare(label)
        if not _matching(checks, label):
            wrong[label] = "missing from the record"
            continue
        for check in _matching(checks, label):
            if _unsupported_here(check):
                continue  # a variant this platform cannot run (Windows: AF_UNIX, fork) cannot hang
            if check["outcome"] != "TIMEOUT":
                wrong[_label(cid, check)] = f"{check['outcome']} (expected TIMEOUT): {check['message'][:200]}"
                continue
            message = check["message"]
            assert "timed out after" in message and "waiting for" in message, message
            assert case["what"] in message, f"{_label(cid, check)}: the message does not say what hung: {message}"
            said = message.split("waiting for", 1)[1].strip()[:60]
            assert any(cid in line and said in line for line in report.splitlines()), \
                f"report.md does not show {_label(cid, check)} with {said!r}"
    return wrong


#: Cases only the plugin's per-check watchdog can turn into TIMEOUT: the hang is in the
#: check's own (main) thread, and the watchdog is SIGALRM with setitimer, which Windows
#: lacks (https://docs.python.org/3/library/signal.html#signal.setitimer, "Availability:
#: Unix").  There the run bound ends such a run and keeps the finished checks
#: (test_reliability_run_bound.py and, simulated, tests/harness/test_supervisor.py).
NEEDS_WATCHDOG = {"hang_server_activate"}
_NO_WATCHDOG = pytest.mark.skipif(
    not hasattr(signal, "setitimer"),
    reason="no SIGALRM/setitimer (Windows, or its shape): a hang in the check's own thread is "
           "ended by the run bound, not by a per-check watchdog")


@pytest.mark.parametrize("name", [pytest.param(n, marks=_NO_WATCHDOG) if n in NEEDS_WATCHDOG else n
                                  for n in sorted(CASES)])
def test_a_hanging_implementation_times_out_and_the_run_ends_clean(name, tmp_path_factory):
    case = CASES[name]
    run, out, bound, strays, left, selected = _run_case(name, tmp_path_factory)
    assert not run.timed_out, f"the run did not end within {bound:g}s:\n{run.stderr[-3000:]}"
    assert not strays, f"processes of the run still alive after it ended: {strays}"
    assert not left, f"the run left temporary files: {left[:10]}"
    assert run.returncode == 1, "a run with TIMEOUTs must exit 1"

    record = rs.only_record(out)
    assert not record.get("aborted"), record.get("aborted")
    checks = rs.by_id(record)
    missing = [cid for cid in selected if cid not in checks]
    assert not missing, f"selected checks without an outcome: {missing}"

    report = _unescape_md((out / "report.md").read_text(encoding="utf-8"))
    wrong = _assert_timeouts(case, case["timeout"], checks, report)
    for cid, owner in case.get("precondition", {}).items():
        for check in checks[cid]:
            if (check["outcome"], check.get("prerequisite")) != ("PRECONDITION_FAILED", owner):
                wrong[_label(cid, check)] = (f"{check['outcome']} {check.get('prerequisite')} (expected "
                                             f"PRECONDITION_FAILED naming {owner}): {check['message'][:200]}")
    for label in case["pass"]:
        cid = _bare(label)
        for check in _matching(checks, label):
            if check["outcome"] not in GOOD and not _unsupported_here(check):
                wrong[_label(cid, check)] = f"{check['outcome']} (expected PASS): {check['message'][:200]}"
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in sorted(wrong.items()))
