"""harness.serving.servers: readiness, bounded teardown of broken servers, leak checks, building."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
import types
from pathlib import Path

import pytest

from harness.clients import bounded as clients
from harness.core import addresses, capabilities, clock, timeouts
from harness.core.addresses import UnsupportedFeature
from harness.core.prerequisites import PreconditionFailed
from harness.core.timeouts import HarnessTimeout
from harness.implementations import ImplementationError, resolve
from harness.serving import instrument, servers
from harness.serving.servers import LeakError, ServeError

needs_unix = pytest.mark.skipif(not capabilities.caps().af_unix, reason="AF_UNIX absent")
needs_fork = pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")

SMALL = 0.3  # teardown budgets for servers that are broken on purpose
BROKEN_IMPLS = Path(__file__).resolve().parent.parent / "broken" / "impls"


@pytest.fixture
def fast():
    saved = timeouts._multiplier
    timeouts.set_multiplier(0.2, export=False)
    yield
    timeouts.set_multiplier(saved, export=False)


@pytest.fixture
def private():
    with addresses.private_dir() as directory:
        yield directory


@pytest.fixture
def log(private):
    return instrument.EventLog.create(private)


def _modules():
    found = [pytest.param(socketserver, id="stdlib")]
    try:
        found.append(pytest.param(resolve("reference").module, id="reference"))
    except ImplementationError:  # pragma: no cover - while reference_impl is incomplete
        pass
    return found


def _handler(log, behaviour="echo", base="StreamRequestHandler", module=socketserver, **options):
    return instrument.instrumented(getattr(module, base), behaviour, log, **options)


def _tcp(log, behaviour="echo", class_name="TCPServer", **attrs):
    return servers.build_server(socketserver, class_name, _handler(log, behaviour),
                                addresses.loopback("inet"), **attrs)


# --------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("module", _modules())
@pytest.mark.parametrize("class_name, family, dgram", [
    ("TCPServer", "inet", False), ("ThreadingTCPServer", "inet", False),
    ("UDPServer", "inet", True), ("ThreadingUDPServer", "inet", True),
    ("TCPServer", "inet6", False),
    pytest.param("UnixStreamServer", "unix", False, marks=needs_unix),
    pytest.param("ThreadingUnixDatagramServer", "unix", True, marks=needs_unix),
])
def test_serves_and_tears_down_every_family(module, class_name, family, dgram, private, log):
    if family == "inet6" and not capabilities.caps().ipv6:
        pytest.skip("no IPv6")
    base = "DatagramRequestHandler" if dgram else "StreamRequestHandler"
    handler = _handler(log, "upper", base, module)
    address = addresses.server_address_for(family, private)
    server = servers.build_server(module, class_name, handler, address)
    with servers.serve_in_thread(server) as served:
        assert served.family == family
        assert served.thread.daemon and served.thread.is_alive()
        assert clients.roundtrip(served.address, family, b"abc", dgram=dgram) == b"ABC"
    record = served.teardown
    assert not served.thread.is_alive()
    assert record.hung == [] and record.errors == [] and record.leaks == {}
    assert record.shutdown is not None and record.join is not None and record.server_close is not None
    assert record.shutdown < timeouts.short()
    if family == "unix":
        assert record.unix_path_left is not None
        assert not os.path.exists(address)


def test_ready_means_the_loop_reached_its_selector_and_service_actions_is_untouched(log):
    calls = []

    class Counting(socketserver.TCPServer):
        def service_actions(self):
            calls.append(time.monotonic())

    server = Counting(addresses.loopback("inet"), _handler(log))
    with servers.serve_in_thread(server) as served:
        assert served.ready_by == "select()", served.ready_by
        timeouts.wait_until(lambda: len(calls) > 1, timeouts.short(), "loop iterations")
        assert clients.roundtrip(served.address, "inet", b"ok") == b"ok"
    assert "service_actions" not in vars(server)


@pytest.mark.parametrize("class_name", ["TCPServer", "UDPServer"])
def test_readiness_does_not_need_service_actions(class_name, log):
    """A loop that never calls service_actions() is ready at once and serves."""
    broken = resolve(str(BROKEN_IMPLS / "serve_forever_skips_service_actions.py")).module
    calls = []
    cls = type("NoHook", (getattr(broken, class_name),), {"service_actions": lambda self: calls.append(1)})
    handler = broken.DatagramRequestHandler if "UDP" in class_name else broken.StreamRequestHandler
    echo = type("Echo", (handler,), {"handle": lambda self: self.wfile.write(self.rfile.readline())})
    server = cls(addresses.loopback("inet"), echo)
    start = time.monotonic()
    with servers.serve_in_thread(server) as served:
        ready_after = time.monotonic() - start
        family = "inet"
        if "UDP" in class_name:
            with clients.dgram_client(family) as sock:
                sock.sendto(b"ok\n", served.address)
                assert sock.recv(64) == b"ok\n"
        else:
            assert clients.roundtrip(served.address, family, b"ok\n") == b"ok\n"
    assert calls == []
    assert ready_after < timeouts.short(), "readiness waited out its budget"
    assert served.teardown.hung == []


class _MinimalServer:
    """Just the serving API, without service_actions (like the 2.7 API)."""

    address_family = socket.AF_INET

    def __init__(self):
        self.server_address = ("127.0.0.1", 0)
        self.stop = threading.Event()
        self.closed = False

    def serve_forever(self, poll_interval=0.5):
        self.stop.wait(timeouts.long())

    def shutdown(self):
        self.stop.set()

    def server_close(self):
        self.closed = True


def test_a_server_without_service_actions_is_ready_when_its_loop_waits():
    server = _MinimalServer()
    with servers.serve_in_thread(server) as served:
        assert served.ready_by == "wait()"
        assert served.thread.is_alive()
    assert server.closed and served.teardown.hung == []


@needs_fork
def test_forking_servers_are_refused_in_thread(log):
    server = _tcp(log, class_name="ForkingTCPServer")
    try:
        with pytest.raises(ValueError, match="serve_in_process"):
            with servers.serve_in_thread(server):
                pass
    finally:
        server.server_close()


# --------------------------------------------------------------------------- broken servers


def test_shutdown_that_never_returns_is_waited_for_once_and_the_loop_still_stops(log):
    unblock = threading.Event()
    closed = []

    class StuckShutdown(socketserver.TCPServer):
        def shutdown(self):
            unblock.wait(timeouts.long())  # never asks the loop to stop, never returns

        def server_close(self):
            closed.append(True)
            super().server_close()

    try:
        start = clock.now()
        with servers.serve_in_thread(StuckShutdown(addresses.loopback("inet"), _handler(log)),
                                     shutdown_budget=SMALL, close_budget=SMALL) as served:
            pass
        first = clock.now() - start
        # the check's own verdict stands: the loop was stopped without shutdown()
        assert served.teardown.hung == [f"server.shutdown() (after {SMALL:.2f}s)"]
        assert served.teardown.stopped_by == "the stdlib's private shutdown flag"
        assert not served.thread.is_alive() and closed == [True]
        assert SMALL <= first < 3 * SMALL + timeouts.short()
        # the next server of the same implementation does not wait for shutdown() again
        start = clock.now()
        with servers.serve_in_thread(StuckShutdown(addresses.loopback("inet"), _handler(log)),
                                     shutdown_budget=timeouts.short(), close_budget=SMALL) as served:
            assert clients.roundtrip(served.address, "inet", b"ok") == b"ok"
        assert clock.now() - start < timeouts.short()
        assert served.teardown.hung[0].startswith("server.shutdown() (not waited for")
        assert not served.thread.is_alive() and closed == [True, True]
    finally:
        unblock.set()


def test_serve_forever_ignoring_shutdown_is_a_precondition_failure_once_waited_for(log):
    release = threading.Event()

    class Deaf(socketserver.TCPServer):
        def serve_forever(self, poll_interval=0.5):
            release.wait(timeouts.long())  # waits (so it is ready), then ignores shutdown

    try:
        start = time.monotonic()
        with pytest.raises(PreconditionFailed, match="SHUTDOWN-001") as info:
            with servers.serve_in_thread(Deaf(addresses.loopback("inet"), _handler(log)),
                                         shutdown_budget=SMALL) as served:
                pass
        assert info.value.prerequisite == "SHUTDOWN-001" and info.value.timed_out
        assert served.teardown.stopped_by == "nothing: the serve thread was abandoned"
        assert time.monotonic() - start < 3 * SMALL + timeouts.short()
        start = time.monotonic()
        with pytest.raises(PreconditionFailed, match="SHUTDOWN-001"):
            with servers.serve_in_thread(Deaf(addresses.loopback("inet"), _handler(log)),
                                         shutdown_budget=timeouts.short()):
                pass
        assert time.monotonic() - start < timeouts.short(), "the second teardown waited again"
    finally:
        release.set()


def test_a_loop_that_never_waits_is_a_precondition_failure_once_waited_for(log):
    release = threading.Event()

    class Busy(socketserver.TCPServer):
        def serve_forever(self, poll_interval=0.5):
            deadline = time.monotonic() + timeouts.long()
            while not release.is_set() and time.monotonic() < deadline:
                pass  # never reaches a selector

    try:
        start = time.monotonic()
        with pytest.raises(PreconditionFailed, match="SERVE-007") as info:
            with servers.serve_in_thread(Busy(addresses.loopback("inet"), _handler(log)),
                                         ready_budget=SMALL, shutdown_budget=SMALL):
                pytest.fail("must not yield")  # pragma: no cover
        assert info.value.prerequisite == "SERVE-007"
        assert time.monotonic() - start < 4 * SMALL + timeouts.short()
        release.set()
        start = time.monotonic()
        with pytest.raises(PreconditionFailed, match="SERVE-007"):
            with servers.serve_in_thread(Busy(addresses.loopback("inet"), _handler(log)),
                                         ready_budget=timeouts.short()):
                pytest.fail("must not yield")  # pragma: no cover
        assert time.monotonic() - start < SMALL, "the second start waited again"
    finally:
        release.set()


def test_serve_forever_returning_or_raising_early(log):
    class Returns(socketserver.TCPServer):
        def serve_forever(self, poll_interval=0.5):
            return None

    class Raises(socketserver.TCPServer):
        def serve_forever(self, poll_interval=0.5):
            raise RuntimeError("broken loop")

    with pytest.raises(ServeError):
        with servers.serve_in_thread(Returns(addresses.loopback("inet"), _handler(log)),
                                     shutdown_budget=SMALL):
            pass
    with pytest.raises(RuntimeError, match="broken loop"):
        with servers.serve_in_thread(Raises(addresses.loopback("inet"), _handler(log)),
                                     shutdown_budget=SMALL):
            pass


def test_a_handler_that_never_returns_makes_server_close_time_out(log, fast):
    server = _tcp(log, "hang", "ThreadingTCPServer")  # block_on_close joins the handler
    sock = None
    try:
        with pytest.raises(HarnessTimeout, match=r"server_close"):
            with servers.serve_in_thread(server, close_budget=SMALL) as served:
                sock = clients.connect(served.address, "inet")
                log.wait_for(lambda ev: instrument.select(ev, kind="hang"), what="the hang")
        assert served.teardown.hung == [f"server.server_close() (after {SMALL:.2f}s)"]
    finally:
        instrument.release(log, "hang")
        if sock is not None:
            sock.close()
    log.wait_for(lambda ev: instrument.select(ev, phase="handle", edge="end"), what="release")


def test_teardown_problems_do_not_mask_the_block_error(log):
    unblock = threading.Event()

    class StuckShutdown(socketserver.TCPServer):
        def shutdown(self):
            unblock.wait(timeouts.long())

    server = StuckShutdown(addresses.loopback("inet"), _handler(log))
    with pytest.raises(KeyError):
        with servers.serve_in_thread(server, shutdown_budget=SMALL, close_budget=SMALL) as served:
            raise KeyError("the check failed")
    assert served.teardown.hung
    unblock.set()
    socketserver.TCPServer.shutdown(server)


# --------------------------------------------------------------------------- leaks


def test_leaked_handler_thread_is_a_leak_error(log, fast):
    server = _tcp(log, "hold", "ThreadingTCPServer", daemon_threads=True)
    sock = None
    with pytest.raises(LeakError, match="threads") as info:
        with servers.serve_in_thread(server) as served:
            sock = clients.connect(served.address, "inet")
            log.wait_for(lambda ev: instrument.select(ev, kind="hold"), what="hold")
    assert isinstance(info.value, AssertionError)
    assert "threads" in info.value.leaks and served.teardown.leaks == info.value.leaks
    sock.close()  # lets the held handler finish
    log.wait_for(lambda ev: instrument.select(ev, phase="finish", edge="end"), what="finish")


@pytest.mark.skipif(servers.open_fds() is None, reason="no /proc/self/fd or /dev/fd")
def test_leaked_descriptor_is_a_leak_error(log):
    kept = []
    with pytest.raises(LeakError, match="fds") as info:
        with servers.serve_in_thread(_tcp(log)) as served:
            kept.append(clients.connect(served.address, "inet"))
            kept[0].shutdown(socket.SHUT_WR)
            clients.recv_until_eof(kept[0])
    assert str(kept[0].fileno()) in " ".join(info.value.leaks["fds"])
    kept[0].close()


@pytest.mark.skipif(servers.open_fds() is None, reason="no /proc/self/fd or /dev/fd")
def test_descriptor_held_only_by_garbage_is_no_leak(log):
    """coll-handler: a socket only a reference cycle holds (a handler whose files finish() never
    closed, handler_no_finally) is closed by the collector: not a leak.  The collector is off
    in the block, so without the teardown's own collection this would be a LeakError."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        with servers.serve_in_thread(_tcp(log)) as served:
            sock, other = socket.socketpair()
            other.close()
            files = [sock.makefile("rb")]
            files.append(files)  # the cycle
            fileno = sock.fileno()
            sock.close()  # deferred: the file object still refers to the socket
            del sock, files, other
            assert str(fileno) in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd")
    finally:
        if enabled:
            gc.enable()
    assert served.teardown.leaks == {}


@needs_unix
def test_leaked_unix_socket_file_is_a_leak_error(log, private):
    with pytest.raises(LeakError, match="unix socket files"):
        with servers.serve_in_thread(_tcp(log)):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stray:
                stray.bind(addresses.unix_address(private, "stray"))


def test_check_leaks_false_skips_the_check(log):
    kept = []
    with servers.serve_in_thread(_tcp(log), check_leaks=False) as served:
        kept.append(socket.socket())
    assert served.teardown.leak_check == "not run"
    kept[0].close()


def test_clean_block_records_what_was_checked(log):
    with servers.serve_in_thread(_tcp(log)) as served:
        clients.roundtrip(served.address, "inet", b"x")
    assert served.teardown.leak_check.startswith("threads")
    assert served.teardown.as_dict()["leaks"] == {}


# --------------------------------------------------------------------------- overlap proofs


def _two_held_clients(log, server):
    with servers.serve_in_thread(server) as served:
        first = clients.connect(served.address, "inet")
        second = clients.connect(served.address, "inet")
        with first, second:
            log.wait_for(lambda ev: len(instrument.select(ev, kind="hold")) >= 1, what="hold 1")
            try:
                log.wait_for(lambda ev: len(instrument.select(ev, kind="hold")) >= 2,
                             timeouts.absence(), "a second handler while the first holds")
                concurrent = True
            except HarnessTimeout:
                concurrent = False
            clients.sendall(first, b"1\n")
            assert clients.recv_line(first) == b"1\n"
            log.wait_for(lambda ev: len(instrument.select(ev, kind="hold")) >= 2, what="hold 2")
            clients.sendall(second, b"2\n")
            assert clients.recv_line(second) == b"2\n"
        log.wait_for(lambda ev: len(instrument.select(ev, phase="handle", edge="end")) == 2,
                     what="both handlers to end")
    return concurrent, instrument.intervals(log.read())


def test_threading_server_overlaps_handlers(log):
    concurrent, ivs = _two_held_clients(log, _tcp(log, "hold", "ThreadingTCPServer"))
    assert concurrent
    assert instrument.max_overlap(ivs) == 2 and not instrument.serialised(ivs)
    assert len({iv.tid for iv in ivs if iv.phase == "handle"}) == 2


def test_plain_server_serialises_handlers(log):
    concurrent, ivs = _two_held_clients(log, _tcp(log, "hold", "TCPServer"))
    assert not concurrent
    assert instrument.max_overlap(ivs) == 1 and instrument.serialised(ivs)


# --------------------------------------------------------------------------- building


def test_build_server_applies_class_attribute_overrides(log):
    server = _tcp(log, class_name="ThreadingTCPServer", daemon_threads=True,
                  block_on_close=False, timeout=0.5)
    try:
        assert type(server).__name__ == "HarnessThreadingTCPServer"
        assert isinstance(server, socketserver.ThreadingTCPServer)
        assert server.daemon_threads is True and server.block_on_close is False
        assert server.timeout == 0.5
        assert socketserver.ThreadingTCPServer.daemon_threads is False  # not mutated
        assert server.server_address[1] != 0
    finally:
        server.server_close()


def test_build_server_without_binding(log):
    server = servers.build_server(socketserver, "TCPServer", _handler(log),
                                  addresses.loopback("inet"), bind_and_activate=False)
    try:
        assert server.server_address == ("127.0.0.1", 0)
    finally:
        server.server_close()


@needs_unix
@needs_fork
def test_missing_combination_is_composed_like_the_stdlib(log, private):
    fake = types.ModuleType("fake_ss")
    fake.ForkingMixIn = socketserver.ForkingMixIn
    fake.UnixStreamServer = socketserver.UnixStreamServer
    cls = servers.server_class(fake, "ForkingUnixStreamServer")
    assert cls.__mro__[1:3] == (socketserver.ForkingMixIn, socketserver.UnixStreamServer)
    with pytest.raises(AttributeError, match="missing ThreadingMixIn"):
        servers.server_class(fake, "ThreadingUnixStreamServer")
    with pytest.raises(AttributeError, match="no server class"):
        servers.server_class(fake, "SCTPServer")


def test_platform_absence_refuses_clearly(log):
    with capabilities.simulate_absent("fork", "af_unix"):
        with pytest.raises(UnsupportedFeature, match="fork") as info:
            servers.server_class(socketserver, "ForkingTCPServer")
        assert info.value.capability == "fork"
        with pytest.raises(UnsupportedFeature, match="af_unix"):
            servers.server_class(socketserver, "UnixStreamServer")
        assert servers.server_class(socketserver, "ThreadingTCPServer") is socketserver.ThreadingTCPServer


# --------------------------------------------------------------------------- bounded calls


def test_call_bounded_returns_raises_and_times_out():
    assert servers.call_bounded(lambda a, b=0: a + b, 1, b=2, budget=SMALL, what="add") == 3
    with pytest.raises(ZeroDivisionError):
        servers.call_bounded(lambda: 1 / 0, budget=SMALL, what="divide")
    with pytest.raises(SystemExit):
        servers.call_bounded(lambda: (_ for _ in ()).throw(SystemExit(4)), budget=SMALL, what="exit")
    release = threading.Event()
    start = clock.now()  # not time.monotonic(): 15.6 ms steps on Windows before 3.13
    with pytest.raises(HarnessTimeout, match="a stuck call") as info:
        servers.call_bounded(release.wait, timeouts.long(), budget=SMALL, what="a stuck call")
    assert SMALL <= clock.now() - start < SMALL + timeouts.short()
    assert info.value.budget == SMALL
    release.set()


def test_run_handle_request(log):
    server = _tcp(log, timeout=0.05)
    try:
        assert servers.run_handle_request(server, SMALL) is None  # handle_timeout path
        result = {}
        thread = threading.Thread(
            target=lambda: result.update(r=clients.roundtrip(server.server_address, "inet", b"q")))
        thread.start()
        server.timeout = None
        servers.run_handle_request(server, timeouts.short())
        timeouts.join_thread(thread, timeouts.short(), "client")
        assert result["r"] == b"q"
        start = time.monotonic()
        with pytest.raises(HarnessTimeout, match="handle_request"):
            servers.run_handle_request(server, SMALL)  # nobody connects, no timeout
        assert time.monotonic() - start < SMALL + timeouts.short()
    finally:
        server.server_close()


@pytest.mark.parametrize("name, ignores", [("stdlib", False), ("hang_serve_forever", True)])
def test_a_loop_seen_iterating_past_its_shutdown_flag_is_not_waited_for_its_whole_budget(name, ignores):
    """slow-teardown: after the shutdown flag is set, a loop seen beginning two new selector waits
    of its serve_forever() does not look at it: the join ends on that evidence, not at the end of
    its budget (hang_serve_forever: 5 s per loop); a loop that looks at the flag ends."""
    path = "stdlib" if name == "stdlib" else str(Path(__file__).resolve().parents[1] / "reliability" / "impls"
                                                 / f"{name}.py")
    module = resolve(path).module
    stop = threading.Event()

    class Stop(Exception):
        pass

    class Server(module.TCPServer):
        def service_actions(self):  # the test's own way out of a loop that ignores its flag
            if stop.is_set():
                raise Stop()

    server = Server(addresses.loopback("inet"), module.BaseRequestHandler)
    poll = timeouts.poll()
    loop = threading.Thread(target=_quietly_until_stopped(server, poll, Stop), daemon=True)
    loop.start()
    try:
        timeouts.wait_until(lambda: servers._select_frame(loop) is not None, timeouts.short(), "the loop's select")
        server._BaseServer__shutdown_request = True
        budget = timeouts.long()
        start = time.monotonic()
        servers._join_unless_ignored(loop, budget)
        assert loop.is_alive() == ignores
        assert time.monotonic() - start < budget / 2, "ended on the evidence, not the budget"
    finally:
        stop.set()
        loop.join(timeouts.short())
        server.server_close()
    assert not loop.is_alive()


def _quietly_until_stopped(server, poll, stop_type):
    def run():
        try:
            server.serve_forever(poll)
        except stop_type:
            pass
    return run


def test_an_abandoned_loops_descriptor_is_never_released_for_another_socket():
    """slow-teardown: the listener of a loop that could not be stopped is quieted and its
    descriptor number kept: a later server_close() closes a duplicate, so the next socket opened
    does not get the number the abandoned loop still selects on (it would serve that socket)."""
    module = resolve(str(Path(__file__).resolve().parents[1] / "reliability" / "impls" / "hang_serve_forever.py")).module
    server = module.TCPServer(addresses.loopback("inet"), module.BaseRequestHandler)
    number = server.socket.fileno()
    servers._quiet_the_listener(server)
    server.server_close()
    os.fstat(number)  # still open: the abandoned loop's descriptor
    with socket.socket() as fresh:
        assert fresh.fileno() != number
