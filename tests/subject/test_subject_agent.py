"""The agent under every interpreter found: it loads, describes, introspects and serves.

Each test runs once per ``subject_python`` (the host, 2.7, 3.6, 3.7, 3.8,
pypy3; missing ones skip), through the host's own client and session, so a
syntax or library difference of an old interpreter fails here by name.
"""

from __future__ import annotations

import inspect
import socket
import sys

import pytest

from harness.clients import bounded as clients
from harness.core import timeouts
from harness.serving import instrument
from harness.subject.mirror import TOUCHED, NeedsInProcess, clear, reason
from harness.subject.session import SubjectSession


@pytest.fixture
def session(subject_python):
    made = SubjectSession(subject_python, "stdlib")
    yield made
    made.close()


def _version(session):
    return tuple(int(p) for p in session.agent().hello["python"]["version"].split(".")[:2])


def test_it_describes_the_subject_not_the_host(session, subject_python):
    impl = session.implementation()
    version = _version(session)
    assert impl.module_name == ("SocketServer" if version < (3, 0) else "socketserver")
    assert impl.api_version == version
    assert impl.module.__name__ == impl.module_name
    fingerprint = session.fingerprint()
    assert fingerprint["python_version"].startswith("{}.{}".format(*version))
    assert fingerprint["subject"]["via"] == "agent"
    assert fingerprint["subject"]["clock"] == ("time.time" if version < (3, 3) else "time.monotonic")
    if subject_python != sys.executable:
        assert fingerprint["python_version"] != "{}.{}.{}".format(*sys.version_info[:3])


def test_the_mirror_answers_introspection_and_refuses_everything_else(session):
    ss = session.implementation().module
    assert issubclass(ss.ThreadingTCPServer, ss.TCPServer) and issubclass(ss.UDPServer, ss.TCPServer)
    assert ss.TCPServer.address_family == socket.AF_INET and ss.UDPServer.max_packet_size == 8192
    parameters = inspect.signature(ss.BaseServer.serve_forever).parameters
    assert parameters["poll_interval"].default == 0.5
    clear()
    with pytest.raises(NeedsInProcess, match="an instance of TCPServer"):
        ss.TCPServer(("127.0.0.1", 0), ss.StreamRequestHandler)
    assert reason() == "needs in-process access to an instance of TCPServer (the implementation runs in the subject)"

    class Handler(ss.BaseRequestHandler):
        def handle(self):
            pass

    with pytest.raises(NeedsInProcess):
        ss.TCPServer.serve_forever(object())
    with pytest.raises(NeedsInProcess):
        Handler(None, None, None)
    assert len(TOUCHED) == 3
    clear()
    assert reason() is None


@pytest.mark.parametrize("class_name", ["TCPServer", "ThreadingUDPServer", "ForkingTCPServer",
                                        "ThreadingUnixStreamServer"])
def test_a_spec_built_server_serves_and_logs_with_the_subjects_pids(session, class_name, echo_through):
    from harness.core.capabilities import caps

    if ("Forking" in class_name and not caps().fork) or ("Unix" in class_name and not caps().af_unix):
        pytest.skip(f"{class_name} cannot run here")
    reply, events, proc = echo_through(session, class_name)
    assert reply == b"ping\n"
    handled = instrument.intervals(events, "handle")
    assert len(handled) == 1 and handled[0].end is not None
    pids = {iv.pid for iv in handled}
    if "Forking" in class_name:
        assert proc.pid not in pids, "a forking server handles in a child"
    else:
        assert pids == {proc.pid}
    assert proc.teardown["hung"] == []


def test_held_datagrams_are_released_through_the_log(session):
    with session.serve("ThreadingUDPServer", "hold") as proc:
        with clients.dgram_client(proc.family) as sock:
            sock.sendto(b"token-1", proc.address)
            proc.log.wait_for(lambda found: instrument.select(found, kind="hold", token="token-1"),
                              timeouts.short(), "the held datagram")
            instrument.release(proc.log, "token-1")
            reply, _ = clients.recvfrom(sock)
    assert reply == b"released token-1\n"


# ext: declared extensions are read in the subject by the rule the host applies in-process
DECLARATIONS = [
    ('["emfile-backoff", "prompt-shutdown"]', None),
    ('frozenset(["prompt-shutdown", "teleport"])', "unknown extension(s) teleport"),
    ('"prompt-shutdown"', "not the string"),
]


def test_declared_extensions_read_as_in_process(subject_python, tmp_path):
    """A file implementation's ``__socketserver_extensions__`` through the agent gives what
    ``--impl FILE`` gives in-process: the names, or an error naming the bad declaration."""
    import re
    import textwrap

    from harness.implementations import ImplementationError, resolve
    from harness.subject.session import open_subject

    for number, (declared, complaint) in enumerate(DECLARATIONS):
        impl = tmp_path / f"declaring{number}.py"
        impl.write_text(textwrap.dedent(f"""\
            try:
                from socketserver import *  # noqa: F403
            except ImportError:
                from SocketServer import *  # noqa: F403
            __socketserver_extensions__ = {declared}
            """), encoding="utf-8")
        if complaint is None:
            session, loaded = open_subject(subject_python, str(impl))
            session.close()
            assert loaded.extensions == resolve(str(impl)).extensions == {"emfile-backoff", "prompt-shutdown"}
            assert loaded.describe()["extensions"] == ["emfile-backoff", "prompt-shutdown"]
            continue
        for load in (resolve, lambda spec: open_subject(subject_python, spec)):
            with pytest.raises(ImplementationError, match=re.escape(complaint)):
                load(str(impl))
