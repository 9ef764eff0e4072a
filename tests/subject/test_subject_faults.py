"""A killed, a hung and a foreign agent each end clearly and never hang the run.

The fake agents (``fake_agent.py``) misbehave on purpose; every wait of the
client is bounded by ``harness.core.timeouts``, so each test ends within a few
budgets even when the agent never answers.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from harness.core import timeouts
from harness.core.timeouts import HarnessTimeout
from harness.subject.client import AgentDied, ProtocolMismatch, SubjectAgent
from harness.subject.session import SubjectSession, open_subject

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_agent.py")


def fake(mode):
    return [sys.executable, FAKE, mode]


def test_another_protocol_version_is_a_clear_error():
    with pytest.raises(ProtocolMismatch, match=r"speaks subject protocol 99; this kit speaks 1"):
        SubjectAgent.start("fake", command=fake("mismatch"), hello_budget=timeouts.medium())


def test_an_agent_that_exits_before_its_hello_is_reported_dead():
    with pytest.raises(AgentDied, match=r"exited \(status 3\) before its hello"):
        SubjectAgent.start("fake", command=fake("mute"), hello_budget=timeouts.medium())


def test_a_hung_agent_becomes_a_harness_timeout_and_is_stopped():
    agent = SubjectAgent.start("fake", command=fake("hang"), hello_budget=timeouts.medium())
    started = time.monotonic()
    with pytest.raises(HarnessTimeout, match="to answer ping"):
        agent.request("ping", budget=0.5)
    assert time.monotonic() - started < 0.5 + 2 * timeouts.medium()
    assert not agent.child.running(), "a hung agent must be stopped, not left running"
    with pytest.raises(AgentDied, match="not usable: no answer to ping"):
        agent.request("ping", budget=0.5)


def test_an_agent_killed_mid_request_is_reported_dead_with_its_status():
    agent = SubjectAgent.start("fake", command=fake("die"), hello_budget=timeouts.medium())
    with pytest.raises(AgentDied, match=r"died while waiting for the answer to ping \(exit status 9\)"):
        agent.request("ping", budget=timeouts.medium())
    assert agent.child.stopped["reaped"]


def test_an_agent_killed_from_outside_is_replaced_for_the_next_request():
    session = SubjectSession(sys.executable, "stdlib")
    try:
        first = session.agent()
        first.child.kill()
        first.child.wait(timeouts.short())
        with pytest.raises(AgentDied):
            first.request("ping")
        assert "clock" in session.request("ping")  # a fresh agent answers
        assert session.started == 2
    finally:
        session.close()


def test_a_subject_that_cannot_start_is_one_implementation_error():
    from harness.implementations import ImplementationError

    with pytest.raises(ImplementationError, match="--subject-python /nonexistent/python"):
        open_subject("/nonexistent/python", "stdlib")


@pytest.mark.skipif(os.name != "posix", reason="a fake interpreter as a shell script")
def test_ssconform_run_refuses_a_foreign_agent_before_any_check(tmp_path, capsys):
    from harness.cli import main as cli

    fake_python = tmp_path / "python-fake"
    fake_python.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{FAKE}' mismatch\n", encoding="utf-8")
    fake_python.chmod(0o755)
    status = cli.main(["run", "--subject-python", str(fake_python), "--out", str(tmp_path / "out")])
    assert status == 2
    assert "speaks subject protocol 99; this kit speaks 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.json"))


@pytest.mark.parametrize("given, message", [
    ("'/tmp/unclosed -OO", "No closing quotation"),
    ("'/nonexistent dir/python' -OO", "no such interpreter"),
])
def test_ssconform_run_refuses_a_subject_command_it_cannot_start(given, message, tmp_path, capsys):
    """``--subject-python`` takes shell-quoted words (a path with a space, then flags):
    an unclosed quote or a missing interpreter is a usage error (exit 2), before any check."""
    from harness.cli import main as cli

    status = cli.main(["run", "--subject-python", given, "--out", str(tmp_path / "out")])
    assert status == 2, f"--subject-python {given!r}: exit {status}"
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.json"))
