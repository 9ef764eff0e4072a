"""coll-bind: prerequisites of the BIND/UNIX checks and of the serving loop, and who owns them."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.tools.lab import lab
from harness.core import addresses, capabilities, prerequisites, timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.implementations import resolve
from harness.serving import prerequisite_probes, servers

REPO = Path(__file__).resolve().parents[2]
BROKEN = REPO / "tests" / "broken" / "impls"


def _refused_connect(directory: str) -> BlockingIOError:
    """What a client's connect() gets from a full AF_UNIX backlog (a real one: listen(0))."""
    path = os.path.join(directory, "full")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        server.bind(path)
        server.listen(0)
        for _ in range(64):  # bounded: Linux refuses the second or third
            client = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            client.setblocking(False)
            try:
                client.connect(path)
            except BlockingIOError as exc:
                return exc
    raise AssertionError("a listen(0) backlog took 64 clients")


@pytest.mark.skipif(not capabilities.caps().af_unix, reason="AF_UNIX absent")
def test_a_backlog_shorter_than_request_queue_size_owns_the_connects_it_refuses(latch):
    """bind_listen_fixed_backlog listens with a backlog of 1: the probes find it once, and a
    client's connect() that then times out or gets EAGAIN is BIND-018's; other failures stay."""
    prerequisite_probes.run(resolve("stdlib").module)
    with addresses.private_dir() as directory:
        refused = _refused_connect(directory)
    assert prerequisites.judged_broken_prerequisite(refused) is None, "a healthy backlog"
    prerequisite_probes.run(resolve(str(BROKEN / "bind_listen_fixed_backlog.py")).module)
    broken = prerequisites.judged_broken_prerequisite(refused)
    assert broken is not None and broken.prerequisite == "BIND-018" and "before accept()" in str(broken)
    try:
        raise BlockingIOError(11, "Resource temporarily unavailable")  # not out of a connect
    except BlockingIOError as exc:
        assert prerequisites.judged_broken_prerequisite(exc) is None
    assert prerequisites.judged_broken_prerequisite(ValueError("not a connect")) is None


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


#: implementation -> {check, or check[variant]: the owner its PRECONDITION_FAILED names}: checks that
#: depend on a behaviour another check owns, each proved on the control (PASS) and on the defect
DEPENDENTS = {
    "bind_ignores_bind_and_activate": {"BIND-003": "BIND-002", "BIND-005": "BIND-002", "BIND-006": "BIND-002"},
    "bind_fileno_dup": {"SERVE-015": "BIND-016"},
    # three requests pending before the loop starts; a backlog of 1 completes two connects
    "bind_listen_fixed_backlog": {"SERVE-006": "BIND-018"},
    # the second server, failing to bind the live path on purpose, keeps its socket open
    "bind_no_close_on_failure": {"UNIX-005[live]": "BIND-014"},
    # a closed server leaves no stale path to bind
    "unix_close_unlinks_path": {"UNIX-005[stale]": "UNIX-004"},
}


def _key(check: str, variant: str) -> str:
    return f"{check}[{variant}]" if variant else check


@pytest.mark.parametrize("impl", sorted(DEPENDENTS))
def test_a_check_that_depends_on_another_checks_behaviour_names_it(impl, tmp_path):
    wanted = DEPENDENTS[impl]
    ids = {name.partition("[")[0] for name in wanted}
    control = _graded("_control", ids, tmp_path / "control")
    assert {key: got for key, got in control.items() if got[0] not in ("PASS", "INFO", "UNSUPPORTED")} == {}
    graded = {_key(*key): got for key, got in _graded(impl, ids, tmp_path / "broken").items()}
    assert set(wanted) <= set(graded) | set(ids), graded
    wrong = {name: graded.get(name) for name, owner in wanted.items()
             if graded.get(name) != ("PRECONDITION_FAILED", owner) and graded.get(name, ("",))[0] != "UNSUPPORTED"}
    assert wrong == {}, f"{impl}: (outcome, prerequisite) other than PRECONDITION_FAILED naming the owner"


def test_a_listener_closed_by_a_request_is_found_once_and_refuses_its_stream_loops(latch):
    """tutorial_server_stops_listening's shutdown_request() closes the listening socket: the probes
    find it by serving two requests; every later loop of a class ending its requests so (stream
    kinds, Threading* ones too) is refused naming SERVE-007, datagram kinds still serve, and a
    handle_request() on a closed listener is refused the same way."""
    stdlib = resolve("stdlib").module
    prerequisite_probes.run(stdlib)
    assert servers.loop_known_broken(stdlib.TCPServer) is None
    module = resolve(str(BROKEN / "tutorial_server_stops_listening.py")).module
    prerequisite_probes.run(module)
    for name in ("TCPServer", "ThreadingTCPServer", "UnixStreamServer"):
        broken = servers.loop_known_broken(getattr(module, name))
        assert broken is not None and broken.prerequisite == "SERVE-007", (name, broken)
    assert "listening socket was closed" in str(servers.loop_known_broken(module.TCPServer))
    assert servers.loop_known_broken(module.UDPServer) is None, "a datagram request closes no listener"
    server = module.TCPServer(("127.0.0.1", 0), module.BaseRequestHandler)
    try:
        assert servers.listener_closed(server) is None, "open: handle_request() may serve"
        server.socket.close()
        assert servers.listener_closed(server).prerequisite == "SERVE-007"
        with pytest.raises(PreconditionFailed):
            servers.run_handle_request(server)
    finally:
        server.server_close()
