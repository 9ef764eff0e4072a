"""harness.core.prerequisites and harness.serving.prerequisite_probes: what a broken prerequisite costs, and who owns it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.clients import bounded as clients
from harness.core import addresses, capabilities, prerequisites, timeouts
from harness.core.prerequisites import GUARD, LATCH, PreconditionFailed
from harness.implementations import resolve
from harness.serving import prerequisite_probes, servers

REPO = Path(__file__).resolve().parents[2]
HANGS = REPO / "tests" / "reliability" / "impls"
BROKEN = REPO / "tests" / "broken" / "impls"
needs_unix = pytest.mark.skipif(not capabilities.caps().af_unix, reason="AF_UNIX absent")


def test_findings_cross_processes_through_one_file_per_writer(latch):
    code = ("from harness.core.prerequisites import LATCH; "
            "LATCH.set('shutdown_returns', ('k',), 'seen by the child')")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(REPO), timeout=timeouts.long(),
                   env=dict(os.environ, PYTHONPATH=str(REPO)))
    writers = sorted(latch.parent.glob(latch.name + ".w*"))
    assert len(writers) == 1 and latch.read_text() == "", "the child wrote a file of its own, not the shared one"
    assert json.loads(writers[0].read_text().splitlines()[0])["key"] == "shutdown_returns|k"
    assert LATCH.get("shutdown_returns", ("k",)) == "seen by the child"
    LATCH.set("loop_stops", ("k",), "seen here")
    assert len(list(latch.parent.glob(latch.name + ".w*"))) == 2
    prerequisites.discard(str(latch))
    assert not list(latch.parent.glob(latch.name + "*"))


@pytest.mark.parametrize("name, behaviour, function", [
    ("hang_server_activate", "constructor_returns", "server_activate"),
    ("hang_server_close", "server_close_returns", "server_close"),
    ("hang_accept", "get_request_returns", "get_request"),
    ("hang_handler", "handler_returns", "__init__"),
    ("hang_handle_request", "handle_request_returns", "handle_request"),
])
def test_probes_find_the_function_that_hangs_once(latch, name, behaviour, function):
    module = resolve(str(HANGS / f"{name}.py")).module
    start = time.monotonic()
    found = prerequisite_probes.run(module)
    took = time.monotonic() - start
    assert list(found) == [behaviour], found
    assert f"stuck in {function}()" in found[behaviour]
    assert took < 3 * timeouts.short(), f"probing took {took:.1f}s: the hang was waited for more than once"
    hung = LATCH.hung_codes()
    assert [(where[2], owner) for where, (owner, _) in hung.items()] == [(function, behaviour)]


def test_a_healthy_implementation_has_no_findings_and_probing_is_quick(latch):
    start = time.monotonic()
    assert prerequisite_probes.run(socketserver) == {}
    assert time.monotonic() - start < timeouts.short()
    assert LATCH.hung_codes() == {}


def test_the_guard_ends_a_call_of_a_hung_function_at_once_and_owners_time_out(latch):
    module = resolve(str(HANGS / "hang_server_close.py")).module
    prerequisite_probes.run(module)
    server = module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
    try:
        start = time.monotonic()
        with GUARD.active() as guard:
            with pytest.raises(PreconditionFailed) as info:
                server.server_close()
        assert time.monotonic() - start < timeouts.short()
        assert info.value.prerequisite == "BIND-015" and info.value.timed_out
        assert guard.fired is info.value
        with pytest.raises(PreconditionFailed, match="BIND-015"):  # a bounded call: at once too
            servers.call_bounded(server.server_close)
    finally:
        server.socket.close()


def test_teardown_does_not_call_a_server_close_known_to_hang(latch):
    module = resolve(str(HANGS / "hang_server_close.py")).module
    prerequisite_probes.run(module)
    server = module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
    start = time.monotonic()
    with servers.serve_in_thread(server) as served:
        pass
    assert time.monotonic() - start < timeouts.short()
    assert served.teardown.hung[0].startswith("server.server_close() (not called")
    assert server.socket.fileno() == -1


@needs_unix
def test_a_loop_stuck_in_a_function_known_not_to_return_is_abandoned_at_once(latch):
    """slow-hang: the guard's trace function is unset in the thread it raised in, so a loop's
    second request runs the hung handler for real; the teardown sees the loop inside it and
    gives up at once, naming the owner, instead of waiting out shutdown() and the join."""
    module = resolve(str(HANGS / "hang_handler.py")).module
    prerequisite_probes.run(module)
    server = module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
    with GUARD.active():
        with pytest.raises(PreconditionFailed, match="HANDLER-001"):
            with servers.serve_in_thread(server) as served:
                assert GUARD.stuck_in(served.thread.ident) is None
                for _ in range(2):  # the first call is ended by the guard, the second hangs
                    with socket.create_connection(server.server_address, timeout=timeouts.short()):
                        pass
                timeouts.wait_until(lambda: GUARD.stuck_in(served.thread.ident) is not None, timeouts.short(),
                                    "the loop to run the hung handler")
                start = time.monotonic()
    assert time.monotonic() - start < timeouts.short(), "the teardown waited for a loop known to hang"
    assert served.teardown.hung[0].startswith("serve_forever() (not stopped")
    server.socket.close()


def test_a_class_that_cannot_be_constructed_is_a_prerequisite_of_its_owner(latch):
    module = resolve(str(BROKEN / "api_reuse_port_on.py")).module
    with addresses.private_dir() as directory:
        with pytest.raises(PreconditionFailed) as info:
            servers.build_server(module, "ThreadingUnixStreamServer", module.BaseRequestHandler,
                                 addresses.unix_address(directory, "s"))
    assert info.value.prerequisite == "UNIX-001" and not info.value.timed_out
    assert "so does ThreadingUnixStreamServer(a fresh unix address" in str(info.value)


@needs_unix
def test_a_construction_failing_for_the_checks_own_reasons_stays_its_own(latch):
    with addresses.private_dir() as directory:
        too_long = os.path.join(directory, "x" * 200)
        with pytest.raises(OSError) as info:
            servers.build_server(socketserver, "UnixStreamServer", socketserver.BaseRequestHandler, too_long)
    assert not isinstance(info.value, PreconditionFailed)


@pytest.mark.parametrize("name, class_name, owner", [
    ("threading_serial", "ThreadingTCPServer", "THREADING-001"),
    ("handler_datagram_request_is_bytes", "ThreadingUDPServer", "PIPELINE-013"),
    ("udp_coalesces_datagrams", "ThreadingUDPServer", "UDP-009"),  # slow-hang: get_request() drains
    ("threading_capped", "ThreadingTCPServer", "THREADING-010"),  # slow-hang: 8 handler threads at most
])
def test_a_family_prerequisite_found_by_a_probe_refuses_that_family(latch, name, class_name, owner):
    module = resolve(str(BROKEN / f"{name}.py")).module
    assert servers.build_server(module, class_name, module.BaseRequestHandler,
                                addresses.loopback("inet")).server_close() is None  # before probing
    prerequisite_probes.run(module)
    with pytest.raises(PreconditionFailed) as info:
        servers.build_server(module, class_name, module.BaseRequestHandler, addresses.loopback("inet"))
    assert info.value.prerequisite == owner
    servers.build_server(module, "TCPServer", module.BaseRequestHandler,
                         addresses.loopback("inet")).server_close()  # other families are not refused


def test_the_loop_counter_counts_iterations_without_service_actions():
    class NoHook(socketserver.TCPServer):
        def service_actions(self):
            raise AssertionError("must not be needed")  # pragma: no cover

        def serve_forever(self, poll_interval=0.5):  # the stdlib loop without the hook
            import selectors
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                while not self._BaseServer__shutdown_request:
                    if selector.select(poll_interval):
                        self._handle_request_noblock()
            self._BaseServer__is_shut_down.set()

    server = NoHook(addresses.loopback("inet"), socketserver.BaseRequestHandler)
    with servers.serve_in_thread(server, 0.01, count_waits=True) as served:
        served.loop.wait_waits(5)
        with socket.create_connection(served.address, timeout=timeouts.short()):
            pass
        served.loop.wait_waits(served.loop.waits + 3)
    assert served.loop.waits >= 8


def test_a_loop_that_dies_when_idle_is_found_once_and_refuses_later_loops(latch):
    module = resolve(str(BROKEN / "api_no_service_actions.py")).module
    start = time.monotonic()
    found = prerequisite_probes.run(module)
    assert time.monotonic() - start < timeouts.short(), "the probe waited for a loop that had died"
    assert list(found) == ["serve_forever_runs"] and "AttributeError" in found["serve_forever_runs"]
    _refused_when_served(module, "TCPServer", "SERVE-007")


def test_a_call_ended_in_another_thread_interrupts_the_main_thread_once(latch):
    module = resolve(str(HANGS / "hang_accept.py")).module
    prerequisite_probes.run(module)
    interrupts = []
    server = module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
    try:
        with GUARD.active(lambda: interrupts.append(GUARD.take_interrupt())) as guard:
            for _ in range(2):
                servers.call_bounded(lambda: pytest.raises(PreconditionFailed, server.get_request))
        assert guard.fired is not None and guard.fired.prerequisite == "PIPELINE-013"
        assert interrupts == [guard.fired], "interrupted once, with the exception the thread got"
    finally:
        server.server_close()


@pytest.mark.parametrize("name, behaviour, refused, served", [
    ("pipeline_process_request_no_shutdown", "request_ends", "TCPServer", "ThreadingTCPServer"),
    ("disconnect_udp_closes_socket", "datagram_socket_survives", "UDPServer", "TCPServer"),
    ("serve_forever_stops_after_request", "serve_forever_runs", "TCPServer", None),
])
def test_a_request_that_never_ends_is_found_once_and_refuses_only_its_classes(latch, name, behaviour, refused,
                                                                             served):
    module = resolve(str(BROKEN / f"{name}.py")).module
    assert prerequisite_probes.run(resolve("stdlib").module) == {}, "no finding on a healthy implementation"
    found = prerequisite_probes.run(module)
    assert list(found) == [behaviour]
    _refused_when_served(module, refused, prerequisites.owner_of(behaviour)[0])
    if served is not None:  # a class that ends its requests with functions of its own still serves
        _served(module, served)


def _refused_when_served(module, class_name, owner, address=None):
    """``class_name`` of ``module`` built (on ``address``, default a loopback one), then
    refused when served, naming ``owner``; closed in any case."""
    address = addresses.loopback("inet") if address is None else address
    server = servers.build_server(module, class_name, module.BaseRequestHandler, address)
    try:
        with pytest.raises(PreconditionFailed) as info:
            with servers.serve_in_thread(server):
                pytest.fail("must not serve")  # pragma: no cover
        assert info.value.prerequisite == owner
    finally:
        server.server_close()


def _served(module, class_name):
    server = servers.build_server(module, class_name, module.BaseRequestHandler, addresses.loopback("inet"))
    with servers.serve_in_thread(server):
        pass
    server.server_close()


def test_a_check_that_constructs_a_class_that_never_constructs_is_a_prerequisite_failure(latch):
    module = resolve(str(BROKEN / "bind_activate_before_bind.py")).module
    with pytest.raises(OSError) as before:
        module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
    assert prerequisites.judged_broken_prerequisite(before.value) is None, "not before the probes found it"
    prerequisite_probes.run(module)
    with pytest.raises(OSError) as direct:
        module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
    assert prerequisites.judged_broken_prerequisite(direct.value).prerequisite == "BIND-001"
    try:  # a check that catches the error and then verifies: its verdict is the prerequisite's too
        try:
            module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
        except OSError:
            raise AssertionError("construction: expected success")  # noqa: B904  as verify() in a check
    except AssertionError as judged:
        assert prerequisites.judged_broken_prerequisite(judged).prerequisite == "BIND-001"
    assert prerequisites.judged_broken_prerequisite(AssertionError("unrelated")) is None


@pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")
def test_a_child_that_ends_a_call_known_not_to_return_interrupts_the_check_at_once(latch):
    from conformance.tools.forking_lab import forking_lab

    impl = resolve(str(HANGS / "hang_accept.py"))
    prerequisite_probes.run(impl.module)
    interrupts = []
    with GUARD.active(lambda: interrupts.append(GUARD.take_interrupt())) as guard:
        with forking_lab(impl, "ForkingTCPServer", "hold") as lab:
            client = socket.socket()
            client.settimeout(timeouts.short())
            try:
                # the lab's accept is refused as soon as the connection is queued, and the lab
                # child then ends, closing its listener: a client descheduled before its
                # connect() returned reads that as a reset (seen under two CPU hogs)
                with contextlib.suppress(ConnectionResetError):
                    client.connect(lab.address)
                timeouts.wait_until(lambda: bool(interrupts), timeouts.short(), "the lab's report")
            finally:
                client.close()
    assert guard.fired is not None and guard.fired.prerequisite == "PIPELINE-013"
    assert interrupts == [guard.fired], "interrupted once, with the lab's finding"
    assert lab.teardown["precondition"][0] == "get_request_returns"


def test_a_server_that_forgets_its_port_is_found_once_and_refused_with_its_clients(latch):
    module = resolve(str(BROKEN / "bind_address_not_updated.py")).module
    prerequisite_probes.run(module)
    with pytest.raises(PreconditionFailed) as info:
        servers.build_server(module, "TCPServer", module.BaseRequestHandler, addresses.loopback("inet"))
    assert info.value.prerequisite == "BIND-004"
    server = module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)  # a check's own
    try:
        with pytest.raises(ConnectionRefusedError) as refused:
            socket.create_connection(server.server_address, timeout=timeouts.short())
        assert prerequisites.judged_broken_prerequisite(refused.value).prerequisite == "BIND-004"
    finally:
        server.server_close()
    if capabilities.caps().af_unix:  # a Unix server's address is its path: not refused
        with addresses.private_dir() as directory:
            servers.build_server(module, "UnixStreamServer", module.BaseRequestHandler,
                                 addresses.unix_address(directory, "s")).server_close()


# prec-conc: findings that do not hang, but would fail every check that relies on them


def test_an_abortive_close_is_found_and_a_reset_names_its_owner_without_refusing_loops(latch):
    module = resolve(str(BROKEN / "disconnect_abortive_close.py")).module
    prerequisite_probes.run(resolve("stdlib").module)
    assert prerequisites.abortive_close() is None, "no finding on a healthy implementation"
    assert prerequisite_probes.run(module) == {}, "not a hang"
    broken = prerequisites.judged_broken_prerequisite(ConnectionResetError(104, "Connection reset by peer"))
    assert broken is not None and broken.prerequisite == "PIPELINE-002"
    assert prerequisites.judged_broken_prerequisite(AssertionError("reply: expected b'ok', observed b''")) is None
    _served(module, "TCPServer")  # loops still run: a check that reads no EOF may pass


def test_a_server_that_closes_itself_after_a_handler_error_grades_every_failure(latch):
    """coll-handler: the loop runs on, but the listening socket was closed (PIPELINE-006's)."""
    prerequisite_probes.run(resolve(str(BROKEN / "_control.py")).module)
    assert prerequisites.judged_broken_prerequisite(ConnectionRefusedError(111, "refused")) is None
    prerequisite_probes.run(resolve(str(BROKEN / "pipeline_error_closes_server.py")).module)
    broken = prerequisites.judged_broken_prerequisite(ConnectionRefusedError(111, "refused"))
    assert broken is not None and broken.prerequisite == "PIPELINE-006"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the defect's own
@pytest.mark.parametrize("name, class_name, owner", [
    ("pipeline_handle_error_outside_except.py", "TCPServer", "PIPELINE-015"),
    ("threading_error_to_excepthook.py", "ThreadingTCPServer", "THREADING-004"),
])
def test_an_error_path_that_hides_the_exception_from_handle_error_is_found(latch, name, class_name, owner):
    """coll-handler: found by the probes' raising handler, keyed by the class's error path."""
    control = resolve(str(BROKEN / "_control.py")).module
    prerequisite_probes.run(control)
    assert prerequisites.error_reporting(getattr(control, class_name)) is None
    module = resolve(str(BROKEN / name)).module
    prerequisite_probes.run(module)
    broken = prerequisites.error_reporting(getattr(module, class_name))
    assert broken is not None and broken.prerequisite == owner
    other = "TCPServer" if class_name != "TCPServer" else "ThreadingTCPServer"
    assert prerequisites.error_reporting(getattr(module, other)) is None, "the other error path is sound"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the defect's own
def test_a_server_that_a_vanished_client_breaks_grades_every_failure(latch):
    """coll-handler: a client that resets during its handler ends the loop or leaves its request open."""
    prerequisite_probes.run(resolve(str(BROKEN / "_control.py")).module)
    assert prerequisites.judged_broken_prerequisite(AssertionError("next client: not served")) is None
    prerequisite_probes.run(resolve(str(BROKEN / "disconnect_shutdown_request_raises.py")).module)
    broken = prerequisites.judged_broken_prerequisite(AssertionError("next client: not served"))
    assert broken is not None and broken.prerequisite == "DISCONNECT-002"


@pytest.mark.parametrize("name, owner", [("pipeline_client_address_is_server.py", "PIPELINE-013"),
                                         ("pipeline_handler_gets_socket.py", "PIPELINE-014")])
def test_a_handler_given_another_server_or_client_address_is_found(latch, name, owner):
    """coll-handler: found from what the probes' handler was given, keyed by the class's functions."""
    control = resolve(str(BROKEN / "_control.py")).module
    prerequisite_probes.run(control)
    assert prerequisites.handler_arguments(control.TCPServer) is None
    module = resolve(str(BROKEN / name)).module
    prerequisite_probes.run(module)
    broken = prerequisites.handler_arguments(module.TCPServer)
    assert broken is not None and broken.prerequisite == owner


def test_a_request_socket_that_raises_at_its_end_is_found(latch):
    """coll-handler: a handler's read after its client's SHUT_WR raises instead of giving b''."""
    prerequisite_probes.run(resolve(str(BROKEN / "_control.py")).module)
    module = resolve(str(BROKEN / "tutorial_recv_raises_at_eof.py")).module
    assert prerequisites.handler_arguments(module.TCPServer, "request_reads_eof") is None
    prerequisite_probes.run(module)
    broken = prerequisites.handler_arguments(module.TCPServer, "request_reads_eof")
    assert broken is not None and broken.prerequisite == "TUTORIAL-002"


def test_a_unix_kinds_own_client_address_is_not_a_finding(latch):
    """UNIX-003 owns a UnixStreamServer.get_request() of its own: the probes note inet only."""
    module = resolve(str(BROKEN / "unix_client_address_is_server_path.py")).module
    prerequisite_probes.run(module)
    assert prerequisites.handler_arguments(module.UnixStreamServer) is None


def test_a_handler_lifecycle_that_skips_setup_refuses_servers_and_grades_every_failure(latch):
    module = resolve(str(BROKEN / "handler_setup_not_called.py")).module
    prerequisite_probes.run(resolve("stdlib").module)
    assert prerequisites.handler_needs(socketserver.StreamRequestHandler) is None
    prerequisite_probes.run(module)
    with pytest.raises(PreconditionFailed) as info:
        servers.build_server(module, "TCPServer", module.StreamRequestHandler, addresses.loopback("inet"))
    assert info.value.prerequisite == "HANDLER-001"
    broken = prerequisites.judged_broken_prerequisite(AssertionError("reply: expected b'ok', observed b''"))
    assert broken is not None and broken.prerequisite == "HANDLER-001"


@pytest.mark.parametrize("name, behaviour, refused, served", [
    ("threading_no_shutdown_after_error", "thread_request_ends_after_error",
     ("ThreadingTCPServer", "ThreadingUDPServer"), "TCPServer"),
])
def test_a_request_that_never_ends_after_its_handler_raised_refuses_its_classes(latch, name, behaviour,
                                                                                refused, served):
    module = resolve(str(BROKEN / f"{name}.py")).module
    prerequisite_probes.run(module)
    for class_name in refused:
        _refused_when_served(module, class_name, prerequisites.owner_of(behaviour)[0])
    _served(module, served)


def test_a_loop_that_a_handler_error_ends_grades_every_other_failure(latch):
    module = resolve(str(BROKEN / "disconnect_error_kills_server.py")).module
    prerequisite_probes.run(resolve("stdlib").module)
    assert prerequisites.judged_broken_prerequisite(AssertionError("next client: expected served")) is None
    prerequisite_probes.run(module)
    broken = prerequisites.judged_broken_prerequisite(AssertionError("next client: expected served"))
    assert broken is not None and broken.prerequisite == "PIPELINE-005"


# prec-bind ---------------------------------------------------------------------------------------


@needs_unix
def test_a_unix_kind_that_does_not_serve_where_its_sibling_does_refuses_its_loops(latch):
    assert prerequisite_probes.run(resolve("stdlib").module) == {}, "no finding on a healthy implementation"
    module = resolve(str(BROKEN / "unix_dgram_stream_socket.py")).module
    assert list(prerequisite_probes.run(module)) == ["unix_datagram_serves"]
    with addresses.private_dir() as directory:
        # it constructs, and is refused when served
        _refused_when_served(module, "ThreadingUnixDatagramServer", "UNIX-002", addresses.unix_address(directory, "s"))
        stream = servers.build_server(module, "UnixStreamServer", module.BaseRequestHandler,
                                      addresses.unix_address(directory, "t"))
        with servers.serve_in_thread(stream):  # the stream kind serves
            pass
        stream.server_close()


def test_port_zero_is_unreachable_only_once_a_server_was_found_to_forget_its_port(latch):
    from harness.clients import bounded

    assert prerequisites.unreachable(("127.0.0.1", 0)) is None, "no finding, no refusal"
    prerequisite_probes.run(resolve(str(BROKEN / "bind_address_not_updated.py")).module)
    with pytest.raises(PreconditionFailed) as info:
        bounded.connect(("127.0.0.1", 0))
    assert info.value.prerequisite == "BIND-004"
    assert prerequisites.unreachable(("127.0.0.1", 5)) is None and prerequisites.unreachable("/a/path") is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client, pytest.raises(OSError) as sent:
        address = ("127.0.0.1", 0)
        client.sendto(b"x", address)
    assert prerequisites.judged_broken_prerequisite(sent.value).prerequisite == "BIND-004"


@needs_unix
def test_a_kind_the_probes_could_not_construct_is_its_owners_whatever_builds_it(latch):
    assert prerequisites.unconstructible("ThreadingUnixStreamServer", "raised") is None, "not before the probes"
    prerequisite_probes.run(resolve(str(BROKEN / "udp_ipv4_only.py")).module)
    broken = prerequisites.unconstructible("ThreadingUnixStreamServer", "raised TypeError")
    assert broken.prerequisite == "UNIX-001" and "raised TypeError" in broken.detail
    assert prerequisites.unconstructible("TCPServer", "raised") is None, "TCPServer constructs"


def test_handlers_that_never_overlap_are_the_forking_owners():
    prerequisites.needs_overlap("forking_overlaps", 2, 2)  # they did: the check judges its own clause
    with pytest.raises(PreconditionFailed) as info:
        prerequisites.needs_overlap("forking_overlaps", 1, 2)
    assert info.value.prerequisite == "FORKING-001"


# lead ---------------------------------------------------------------------------------------------


def test_a_missing_documented_method_grades_every_other_failure_naming_api_020(latch):
    """A TCPServer without verify_request(): the loop's own call raises AttributeError on the
    first request, in any check; the probes find the absence once, and every other failure
    is graded PRECONDITION_FAILED naming API-020 (which owns the documented methods)."""
    prerequisite_probes.run(resolve("stdlib").module)
    failure = AttributeError("'AgentTCPServer' object has no attribute 'verify_request'")
    assert prerequisites.judged_broken_prerequisite(failure) is None
    prerequisite_probes.run(resolve(str(BROKEN / "api_no_verify_request.py")).module)
    broken = prerequisites.judged_broken_prerequisite(failure)
    assert broken is not None and broken.prerequisite == "API-020", broken
    assert "verify_request" in str(broken)


@pytest.mark.parametrize("name, owner", [("bind_fileno_dup", "SHUTDOWN-008"), ("bind_no_close_on_failure", "BIND-014")])
def test_a_server_that_leaves_descriptors_names_their_owner_for_every_leak(latch, name, owner):
    """bind_fileno_dup's fileno() opens a duplicate that server_close() never closes
    (SHUTDOWN-008); bind_no_close_on_failure's constructor keeps the socket of a failed bind
    (BIND-014; coll-bind: a check that made a bind fail on purpose): each is found once, and a
    teardown's descriptor leak is then its owner's, not each check's own."""
    leaks = {"fds": ["15 -> socket:[1]"]}
    prerequisite_probes.run(resolve("stdlib").module)
    assert servers.leak_owner(leaks, "fds: 15") is None
    prerequisite_probes.run(resolve(str(BROKEN / f"{name}.py")).module)
    owned = servers.leak_owner(leaks, "fds: 15")
    assert owned is not None and owned.prerequisite == owner, owned
    assert servers.leak_owner({"threads": ["t"]}, "threads: t") is None, "only descriptors are its"


# slow-serve --------------------------------------------------------------------------------------


def test_a_loop_that_dies_under_a_run_wide_finding_ends_its_check_at_once_but_not_its_owner(latch):
    interrupts = []

    def died(error, check="SERVE-001"):
        GUARD.check = check
        with GUARD.active(lambda: interrupts.append(GUARD.take_interrupt())):
            prerequisites.loop_died(error, "serve_forever()")

    died(ValueError("boom"))
    assert interrupts == [], "no run-wide finding: a loop's death is the check's own observation"
    LATCH.set("loop_survives_handler_error", ("k",), "serve_forever() ended after a handler raised")
    died(SystemExit(0))
    died("KeyboardInterrupt: ")
    died(timeouts.HarnessTimeout("x", 1.0))
    assert interrupts == [], "a loop ended by SystemExit, Ctrl-C or the harness is no death"
    died(ValueError("boom"), check="PIPELINE-005")
    assert interrupts == [], "the owner judges the death itself"
    died(ValueError("boom"))
    died("AttributeError: no verify_request")
    assert [(exc.prerequisite, "ValueError: boom" in str(exc)) for exc in interrupts[:1]] == [("PIPELINE-005", True)]
    assert len(interrupts) == 2 and "AttributeError" in str(interrupts[1]), "a subject's described error too"
    GUARD.check = "SERVE-001"
    with GUARD.active(lambda: interrupts.append(GUARD.take_interrupt())):
        prerequisites.loop_died(ValueError("first"), "serve_forever()")
        prerequisites.loop_died(ValueError("second"), "serve_forever()")
    assert len(interrupts) == 3, "one interrupt per check"
    GUARD.check = ""


def test_a_served_loop_killed_by_a_handler_error_interrupts_the_check(latch):
    module = resolve(str(BROKEN / "disconnect_error_kills_server.py")).module
    prerequisite_probes.run(module)
    assert LATCH.first_of("loop_survives_handler_error") is not None

    class Raises(module.BaseRequestHandler):
        def handle(self):
            raise ValueError("the check's handler raises")

    interrupts = []
    server = module.TCPServer(addresses.loopback("inet"), Raises)
    GUARD.check = "HANDLER-003"
    try:
        with GUARD.active(lambda: interrupts.append(GUARD.take_interrupt())):
            with contextlib.suppress(Exception):
                with servers.serve_in_thread(server, check_leaks=False) as served:
                    with socket.create_connection(served.address, timeout=timeouts.short()):
                        timeouts.wait_until(lambda: bool(interrupts), timeouts.short(), "the loop's death")
    finally:
        GUARD.check = ""
        server.server_close()
    assert [exc.prerequisite for exc in interrupts] == ["PIPELINE-005"]


def test_the_error_path_probe_stops_waiting_for_a_reply_once_the_loop_died(latch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    dead = __import__("threading").Thread(target=lambda: None)
    dead.start()
    dead.join()
    server = type("Silent", (), {"server_address": listener.getsockname()})()
    try:
        got = prerequisite_probes._exchange(server, False, loop=dead)
        assert got.get("loop_died") and not got["waited"], "it stopped before its budget ran out"
        assert prerequisite_probes._exchange(server, False)["waited"], "without the loop it waits (control)"
    finally:
        listener.close()


def test_an_idle_loop_without_service_actions_is_found_and_its_lab_is_stopped_by_signal(latch):
    prerequisite_probes.run(resolve("stdlib").module)
    assert LATCH.first_of("service_actions_idle") is None, "the stdlib's idle loop calls it"
    impl = resolve(str(BROKEN / "serve_forever_skips_service_actions.py"))
    prerequisite_probes.run(impl.module)
    assert LATCH.first_of("service_actions_idle") is not None


@pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")
@pytest.mark.parametrize("name", ["serve_forever_skips_service_actions.py", "serve_actions_only_after_requests.py"])
def test_the_lab_sees_active_children_and_exit_statuses_without_service_actions(latch, name):
    from conformance.tools.forking_lab import children_states, forking_lab, handle_starts, reaped
    from harness.clients import bounded

    impl = resolve(str(BROKEN / name))
    prerequisite_probes.run(impl.module)
    with forking_lab(impl, "ForkingTCPServer", "echo") as lab:
        assert lab.by_signal(), "a loop found not to run service_actions() is not asked on stdin"
        assert bounded.roundtrip(lab.address, payload=b"x") == b"x"
        timeouts.wait_until(lambda: handle_starts(lab.events()), timeouts.short(), "the handler")
        teardown = lab.stop()
        events = lab.events()
    child = handle_starts(events)[0]["pid"]
    assert children_states(events)[:2] == [None, [child]], "before the first fork, then after it"
    assert [e["exitcode"] for e in reaped(events, child)] == [0], "reaped by server_close() or the lab"
    assert teardown.get("active_children") in ([], [child])


def test_a_shutdown_stuck_on_a_loop_that_died_or_never_ran_is_not_a_broken_shutdown(latch):
    server = socketserver.TCPServer(addresses.loopback("inet"), socketserver.BaseRequestHandler)
    try:
        servers.note_shutdown_stuck(server, 1.0, loop_ran=False)
        assert servers.shutdown_stuck(server) is None, "no loop ran: the documented deadlock"
        servers.note_loop_died(server, SystemExit("the handler's"))
        servers.note_shutdown_stuck(server, 1.0, loop_ran=True)
        assert servers.shutdown_stuck(server) is None, "waiters of a loop that raised are SHUTDOWN-007's"
        servers._DIED.clear()
        servers.note_shutdown_stuck(server, 1.0, loop_ran=True)
        assert servers.shutdown_stuck(server) is not None, "a running loop's shutdown() that hangs is latched"
        # None once gevent or eventlet is imported in this process (another test's, in the same worker)
        green = "gevent" in sys.modules or "eventlet" in sys.modules
        assert servers.loop_running(server) is (None if green else False)
    finally:
        server.server_close()


def test_a_pending_shutdown_that_the_next_loop_forgets_is_not_latched_as_shutdown_001(latch):
    """coll-server: shutdown() called with no loop running, which the next serve_forever()
    forgets (it clears the request on start), blocks until a later shutdown(): that is
    SHUTDOWN-002/003's own defect, not "shutdown() does not stop a running loop", so nothing
    is latched and every later shutdown() of the run is still called (9 collateral before)."""
    from conformance.tools.running import Background, LoopThread

    if "gevent" in sys.modules or "eventlet" in sys.modules:  # another test's, in this xdist worker
        pytest.skip("loop_running() cannot see loops once gevent or eventlet is imported (None)")
    module = resolve(str(BROKEN / "shutdown_request_reset_on_start.py")).module
    server = module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
    try:
        pending = Background(server.shutdown, what="server.shutdown()").start()
        assert pending.loop_ran is False
        with LoopThread(server) as loop:
            assert not pending.finished_within(timeouts.short())  # forgotten by the loop
            assert not loop.returned.is_set()
        assert pending.done.wait(timeouts.short())  # the LoopThread's own shutdown() released it
        assert servers.shutdown_stuck(server) is None
        with LoopThread(server, count_waits=True) as again:  # its shutdown() is called, and returns
            again.counter.wait_waits(1)
            running = Background(server.shutdown, what="server.shutdown()").start()
            assert running.loop_ran
            assert running.finished_within(timeouts.short())
    finally:
        server.server_close()


@pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")
@pytest.mark.parametrize("name, found", [("_control.py", False), ("forking_parent_shutdown_request.py", True)])
def test_a_forking_parent_that_shuts_down_the_handed_request_is_found_by_its_server(latch, name, found):
    """coll-server: the server process sees its parent call shutdown_request() on the request it
    just handed to a child (whether the child's reply then wins the race or not); the finding
    refuses later forking stream servers and grades the check that saw it, naming FORKING-006.
    The stdlib's parent only closes: nothing is found."""
    from harness.processes.server_process import serve_in_process

    with serve_in_process(str(BROKEN / name), "ForkingTCPServer", "echo") as proc:
        clients.roundtrip(proc.address, payload=b"x\n")
    GUARD.fired = None
    prerequisites.note_forked_finding("ForkingTCPServer")
    refused = prerequisites.forked_handler_needs("ForkingUnixStreamServer")
    assert (GUARD.fired is not None) is found and (refused is not None) is found
    if found:
        assert refused.prerequisite == "FORKING-006" and not refused.timed_out
        assert prerequisites.forked_handler_needs("ForkingUDPServer") is None  # nothing to shut down
    GUARD.fired = None


@pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")
@pytest.mark.parametrize("name, children", [("forking_serial.py", "FORKING-001"),
                                            ("concurrency_forking_waits.py", "FORKING-012"),
                                            ("api_collect_children_blocks.py", None)])
def test_forked_handlers_that_never_overlap_are_found_once_and_refuse_every_check_at_once(latch, monkeypatch,
                                                                                         name, children):
    """fork-probe: a mix-in that runs one forked handler at a time (inline, a parent waiting for each
    child, a blocking collect_children()) is found by one probe of the process, latched for the
    run's other processes, and refused naming FORKING-001 without probing or waiting again."""
    from conformance.tools import forking_overlap

    monkeypatch.setattr(forking_overlap, "_PROBED", set())
    impl = resolve(str(BROKEN / name))
    with pytest.raises(PreconditionFailed) as first:
        forking_overlap.require_overlap(impl)
    assert first.value.behaviour == "forking_overlaps" and first.value.prerequisite == "FORKING-001"
    assert "1 of 2 held handlers" in first.value.detail

    def probe_again(impl):
        raise AssertionError("probed twice in one run")

    monkeypatch.setattr(forking_overlap, "probe", probe_again)
    LATCH.clear()  # another process of the run: it knows only the shared latch file
    monkeypatch.setattr(forking_overlap, "_PROBED", set())
    with pytest.raises(PreconditionFailed) as again:
        forking_overlap.require_overlap(impl)
    assert again.value.detail == first.value.detail
    # what the probe's lab saw of its children: in the server process (FORKING-001's), never in
    # active_children (FORKING-012's), or children as they should be (no refusal)
    if children is None:
        forking_overlap.require_children(impl)
    else:
        with pytest.raises(PreconditionFailed) as seen:
            forking_overlap.require_children(impl)
        assert seen.value.prerequisite == children


@pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")
def test_forked_handlers_that_overlap_are_no_finding(latch, monkeypatch):
    from conformance.tools import forking_overlap

    timeouts.set_multiplier(1.0, export=False)  # the kit's own budget for a clean mix-in (restored by latch)
    monkeypatch.setattr(forking_overlap, "_PROBED", set())
    forking_overlap.require_overlap(resolve("stdlib"))
    forking_overlap.require_children(resolve("stdlib"))
    assert LATCH.first_of("forking_overlaps") is None and LATCH.first_of("children_tracked") is None


@pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")
@pytest.mark.parametrize("name, stuck", [("_control.py", None),
                                         ("forking_serial.py", "a held handler runs in the server's serving thread"),
                                         ("concurrency_forking_waits.py", "waits (waitpid) for a child whose handler"),
                                         ("api_collect_children_blocks.py", "waits (waitpid) for a child whose handler")])
def test_a_lab_loop_that_cannot_serve_before_a_held_handler_ends_is_seen_at_once(latch, name, stuck):
    """fork-wait: a serial mix-in (the handler inline in the loop's thread, a parent waiting for
    its child, a blocking collect_children()) is seen from the lab's log while the first handler
    holds, and the wait for the second one ends then (it waited out short() before); a clean
    mix-in's two handlers hold together, and its loop is never seen so."""
    from conformance.tools.forking_lab import forking_lab, loop_stuck
    from conformance.tools.held_clients import held_clients

    with forking_lab(resolve(str(BROKEN / name)), "ForkingTCPServer", "hold") as lab:
        with held_clients(lab.address, "inet", 2, lab.log) as held:
            started, seen = held.started, loop_stuck(lab.events())
            if started == 2:
                held.release_all()
    after = loop_stuck(lab.events())  # the lab stopped: every handler ended when its client closed
    if stuck is None:
        assert (started, seen, after) == (2, None, None)
    else:
        assert started == 1 and seen is not None and stuck in seen
        assert after is None, "the held handlers ended when their clients closed: the loop served again"


def test_a_read_to_eof_from_a_class_whose_requests_never_end_names_pipeline_002_at_once(latch):
    """slow-teardown: a client of a class latched ``request_ends`` does not wait out its budget
    for an EOF that never comes (tutorial_keeps_connection_open: 5 s in each of BIND-003/009/011,
    PIPELINE-006/011); a class whose requests end is read as before."""
    from types import SimpleNamespace

    from conformance.tools.roundtrip import read_to_eof

    control = resolve(str(BROKEN / "_control.py")).module
    module = resolve(str(BROKEN / "tutorial_keeps_connection_open.py")).module
    prerequisite_probes.run(control)
    prerequisite_probes.run(module)
    mine, peer = socket.socketpair()
    with mine, peer:
        peer.sendall(b"reply")
        peer.shutdown(socket.SHUT_WR)
        healthy = read_to_eof(mine, timeouts.short(), served=SimpleNamespace(local_class=control.TCPServer))
        assert healthy == {"data": b"reply", "eof": True, "error": None}
        with pytest.raises(PreconditionFailed) as never:  # refused before reading (the EOF above is not read)
            read_to_eof(mine, timeouts.long(), served=SimpleNamespace(local_class=module.TCPServer))
        assert never.value.prerequisite == "PIPELINE-002"
        assert read_to_eof(mine, timeouts.short(), served=None)["eof"], "no server named: read as before"


@pytest.mark.parametrize("name, oversleeps", [("_control.py", False), ("serve_poll_interval_ignored.py", True)])
def test_the_probes_loop_counters_see_the_loops_own_select(latch, monkeypatch, name, oversleeps):
    """slow-teardown: every LoopCounter the probes install sees the loop's first select(timeout)
    (not the kit's own timeouts.poll(), whose name is a selector's), so stop_loop wakes a probe
    loop that sleeps past its poll_interval (serve_poll_interval_ignored: 6 s of probes) and
    never pokes one that keeps it."""
    counters = []

    class Recorded(servers.LoopCounter):
        def install(self):
            counters.append(self)
            super().install()

    monkeypatch.setattr(servers, "LoopCounter", Recorded)
    assert prerequisite_probes.run(resolve(str(BROKEN / name)).module) == {}
    assert len(counters) >= 2, "the idle loop and the served loops are counted"
    assert all(c.reached == "select" for c in counters), [c.reached for c in counters]
    assert all((c.oversleeps is not None) == oversleeps for c in counters), [c.oversleeps for c in counters]


@pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")
@pytest.mark.parametrize("name, by_signal", [("_control.py", False), ("serve_poll_interval_ignored.py", True)])
def test_the_lab_of_a_loop_that_oversleeps_is_stopped_by_signal_and_still_tears_down(latch, name, by_signal):
    """slow-teardown: the probes latch a loop seen sleeping past its poll_interval (SERVE-008's
    "poll_interval_kept"); its forking lab, where no LoopCounter looks, is interrupted at once
    instead of asked on stdin, which its service_actions() notices a whole oversized timeout
    late.  A loop that keeps its poll_interval is asked as before."""
    from conformance.tools.forking_lab import forking_lab, handle_starts
    from harness.clients import bounded

    impl = resolve(str(BROKEN / name))
    prerequisite_probes.run(impl.module)
    assert (LATCH.first_of("poll_interval_kept") is not None) == by_signal
    with forking_lab(impl, "ForkingTCPServer", "echo") as lab:
        assert lab.by_signal() == by_signal
        assert bounded.roundtrip(lab.address, payload=b"x") == b"x"
        timeouts.wait_until(lambda: handle_starts(lab.events()), timeouts.short(), "the handler")
        teardown = lab.stop()
    assert lab.killed is None, "stopped by its own teardown, not killed"
    assert teardown.get("event") == "teardown" and teardown.get("error") is None and teardown.get("close_error") is None
    assert teardown.get("active_children") == [], "server_close() reaped the handler's child"


def test_every_owner_in_the_data_file_is_a_check_of_the_suite(tmp_path, monkeypatch):
    """owners.toml names checks by ID: each must be a check the suite defines (in the file its area
    maps to), or a PRECONDITION_FAILED would name a check no one can run; and a malformed entry is
    refused when the module loads, not when a finding is first graded."""
    root = Path(__file__).resolve().parents[2] / "conformance" / "checks"
    for behaviour, (owner, words) in prerequisites.OWNERS.items():
        area = owner.split("-")[0].lower()
        source = (root / f"test_{area}.py").read_text(encoding="utf-8")
        assert f'@check("{owner}"' in source, f"owners.toml: [{behaviour}] names {owner}, which test_{area}.py lacks"
        assert words.strip(), behaviour
    assert prerequisites.RUN_WIDE[0] == "handler_lifecycle" and len(prerequisites.RUN_WIDE) == 5
    bad = tmp_path / "harness" / "core"
    bad.mkdir(parents=True)
    (bad / "__init__.py").write_text("")
    (bad / "owners.toml").write_text('[x]\nowner = "SERVE-7"\nbehaviour = "b"\nserving_need = ["a"]\nfamily_need = ["A", "b"]\n')
    from importlib import resources

    monkeypatch.setattr(resources, "files", lambda package: bad)
    with pytest.raises(ValueError, match=r"\[x\]: owner 'SERVE-7' is not a check ID; more than one keying"):
        prerequisites._registry()


# udp-connect: a server's own request path that connect()s the shared datagram socket after the
# handler (a hidden defect of udp_connects_to_client's kind, which no handler of the server's
# first client sees: the instrumented handlers note only what they see themselves)
_SERVER_CONNECTS = '''
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


def process_request(self, request, client_address):
    self.finish_request(request, client_address)
    self.socket.connect(client_address)
    self.shutdown_request(request)


UDPServer.process_request = process_request
'''


def test_a_request_path_that_connects_the_shared_datagram_socket_is_found_once(latch, tmp_path):
    healthy = resolve("stdlib").module
    assert prerequisite_probes.run(healthy) == {}
    assert prerequisites.datagram_socket_connects(healthy.UDPServer) is None, "no finding on a healthy one"
    path = tmp_path / "udp_server_connects.py"
    path.write_text(_SERVER_CONNECTS, encoding="utf-8")
    module = resolve(str(path)).module
    start = time.monotonic()
    assert prerequisite_probes.run(module) == {}, "not a finding that stops later probes"
    assert time.monotonic() - start < timeouts.short(), "the probe waited for a datagram the kernel discarded"
    found = prerequisites.datagram_socket_connects(module.UDPServer)
    assert found is not None and found.prerequisite == "UDP-009" and "getpeername()" in found.detail
    # ThreadingMixIn and ForkingMixIn have a process_request() of their own: not found for them
    assert prerequisites.datagram_socket_connects(module.ThreadingUDPServer) is None
    _served(module, "UDPServer")  # loops are not refused: a server still serves its one client
