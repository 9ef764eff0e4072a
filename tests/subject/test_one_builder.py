"""One builder: a spec with hooks serves alike in a check's thread, a server process and the agent.

:func:`conformance.tools.serving.serve_kind` builds every server from the
same declarative spec with the agent's builder
(:func:`harness.subject.agent.build_server`): in the check's thread
(``TCPServer``), in a server process (``ForkingTCPServer``) and inside the
subject agent (under the host's interpreter and 2.7 when found).  Each path
must honour the spec's hooks; a path that dropped them would answer the
denied request or log no hook calls.
"""

from __future__ import annotations

import pytest

from conformance.tools.serving import serve_kind
from harness.clients import bounded as clients
from harness.core import timeouts
from harness.core.capabilities import caps
from harness.implementations import pythons, resolve
from harness.serving import instrument
from harness.subject.session import SubjectSession

WHERE = {"thread": ("TCPServer", None), "process": ("ForkingTCPServer", None),
         "agent": ("TCPServer", "host"), "agent-2.7": ("TCPServer", "2.7")}


@pytest.fixture(params=sorted(WHERE))
def served_where(request):
    class_name, python = WHERE[request.param]
    if class_name.startswith("Forking") and not caps().fork:
        pytest.skip("no fork here")
    if python is None:
        yield request.param, class_name, resolve("stdlib")
        return
    import sys

    exe = sys.executable if python == "host" else pythons.find_subjects().get(python)
    if exe is None:
        pytest.skip(f"no {python} interpreter on this machine")
    session = SubjectSession(exe, "stdlib")
    try:
        yield request.param, class_name, session.implementation()
    finally:
        session.close()


def _exchange(served):
    with clients.connect(served.address, served.family) as sock:
        clients.sendall(sock, b"ping\n")
        return clients.recv_line(sock, timeouts.Deadline(timeouts.short(), "the reply or EOF"))


def test_recorded_hooks_are_logged_and_the_request_served(served_where):
    where, class_name, impl = served_where
    hooks = {"verify_request": "record", "finish_request": "record"}
    with serve_kind(impl, class_name, "echo_line", hooks=hooks) as served:
        assert served.where == where.split("-")[0]
        reply = _exchange(served)
        events = served.log.wait_for(
            lambda found: instrument.select(found, kind="phase", phase="finish", edge="end"),
            timeouts.short(), "the handler to finish")
    assert reply == b"ping\n", f"{where}: the recorded hooks must call the implementation's own"
    called = [e["hook"] for e in events if e.get("kind") == "hook"]
    assert called == ["verify_request", "finish_request"], f"{where}: hook calls {called}"


def test_a_denied_request_is_closed_unhandled(served_where):
    where, class_name, impl = served_where
    with serve_kind(impl, class_name, "echo_line", hooks={"verify_request": "deny"}) as served:
        reply = _exchange(served)
        events = served.log.wait_for(lambda found: instrument.select(found, kind="hook"),
                                     timeouts.short(), "the verify_request call")
    assert reply == b"", f"{where}: a denied request is closed without a reply, got {reply!r}"
    assert not instrument.select(events, kind="phase"), f"{where}: a denied request ran a handler"


def test_an_unknown_hook_action_is_refused_before_serving():
    with pytest.raises(KeyError, match="vocabulary"):
        with serve_kind(resolve("stdlib"), "TCPServer", "echo", hooks={"verify_request": "explode"}):
            pass


def test_handle_error_is_logged_with_the_exception_it_handles(served_where):
    where, class_name, impl = served_where
    hooks = {"handle_error": "record", "shutdown_request": "record"}
    with serve_kind(impl, class_name, "raise", hooks=hooks, options={"message": "on purpose"}) as served:
        _exchange(served)
        events = served.log.wait_for(
            lambda found: instrument.select(found, kind="hook_return", hook="shutdown_request"),
            timeouts.short(), "the request to be shut down")
    handled = [e.get("handled") for e in instrument.select(events, kind="hook", hook="handle_error")]
    assert len(handled) == 1 and handled[0]["exc_type"] == "ValueError", f"{where}: {handled}"
    assert "on purpose" in handled[0]["exc"]
    returns = [e["hook"] for e in instrument.select(events, kind="hook_return")]
    assert returns == ["handle_error", "shutdown_request"], f"{where}: hook returns {returns}"
