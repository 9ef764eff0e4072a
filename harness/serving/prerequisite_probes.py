"""Find, once per process, the functions of the implementation that do not return.

Theory of operation
-------------------
Every check relies on a few calls that must return: constructing a server
(``server_bind()``, ``server_activate()``), ``server_close()``,
``get_request()`` with a connection pending, the handler run by
``finish_request()``, and ``handle_request()`` once ``self.timeout`` has
passed.  If one of them hangs, every check that makes the call would wait
out its own budget (or the per-check watchdog), so a hang would cost the run
once per check.  Instead :func:`run` tries each call once, before the first
check of a process, the way the owning check would: in a daemon thread
bounded by ``short()``, over loopback with port 0 (and a private directory
for AF_UNIX).  A healthy implementation passes all of them in milliseconds.

A call that is still running after its budget is a finding: the probe looks
at the stuck thread's frames (``sys._current_frames``, never calls into
it) and takes the innermost frame that runs code of the implementation (its
globals are the implementation module's namespace, also for source
executed into it), so the *function* that hangs is named, not the probe.
:data:`harness.core.prerequisites.LATCH` keeps it under the probe's behaviour,
whose owner (:data:`harness.core.prerequisites.OWNERS`) is the check that judges
that call; :data:`harness.core.prerequisites.GUARD` then ends every later call of
that function at once.  The stuck thread is a daemon and is abandoned.

Each probe runs with the guard active, so a function found by an earlier
probe ends a later probe at once instead of hanging it again; exceptions
other than a hang are no finding (the checks that own those behaviours
judge them).  Probes depend on no check and no order: every process (each
pytest-xdist worker too) makes the same findings.
"""

from __future__ import annotations

import contextlib
import functools
import io
import select
import socket
import struct
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from harness.core import addresses, prerequisites, timeouts
from harness.core.capabilities import caps
from harness.core.prerequisites import GUARD, LATCH, family_key
from harness.serving import servers

_BASES = ("TCPServer", "UDPServer", "UnixStreamServer", "UnixDatagramServer")


def _implementation_frame(thread: threading.Thread, namespace: Dict[str, Any]) -> Any:
    """The innermost frame of ``thread`` running the implementation's code, else None."""
    frames: Dict[Any, Any] = getattr(sys, "_current_frames", dict)()
    frame = frames.get(thread.ident)
    for _ in range(200):  # bounded: a stack is finite, but be sure
        if frame is None:
            return None
        if frame.f_globals is namespace:
            return frame
        frame = frame.f_back
    return None


def _bounded(behaviour: str, module: Any, what: str, fn: Callable[[], Any],
             findings: Dict[str, str]) -> Any:
    """``fn()`` in a daemon thread; on a hang latch the implementation's stuck function."""
    result: Dict[str, Any] = {}

    def run() -> None:
        trace = GUARD.tracer()  # this thread only: an earlier finding ends the call at once
        if trace is not None:
            sys.settrace(trace)
        try:
            result["value"] = fn()
        except BaseException as exc:  # not a hang: the owning check judges it
            result["error"] = exc
        finally:
            sys.settrace(None)

    thread = threading.Thread(target=run, name="ssc-bounded:probe " + what, daemon=True)
    thread.start()
    budget = timeouts.short()
    thread.join(budget)
    if not thread.is_alive():
        return result.get("value")
    frame = _implementation_frame(thread, vars(module))
    if frame is not None:
        if frame.f_code.co_name == "server_close":
            behaviour = "server_close_returns"  # e.g. a constructor that failed and then closes
        detail = f"timed out after {budget:.2f}s waiting for {what} to return (stuck in {frame.f_code.co_name}())"
        LATCH.set_hung(behaviour, frame.f_code, detail)
        findings[behaviour] = detail
    return None


def _construct(cls: type, family: str, directory: Optional[str], name: str, handler: type) -> Any:
    """``cls(a fresh address, handler)``; one that raises is latched as ``constructs:<name>``
    (its owner, :data:`harness.core.prerequisites.CONSTRUCTORS`, judges it; a check that
    constructs the class itself then ends PRECONDITION_FAILED naming it)."""
    try:
        return cls(_address(family, directory, name), handler)
    except prerequisites.PreconditionFailed:
        raise  # a call known not to return, ended by the guard: that finding's owner has it
    except Exception as exc:
        LATCH.set(f"constructs:{name}", (), f"{name}(a fresh {family} address, BaseRequestHandler) raised "
                                             f"{type(exc).__name__}: {exc}")
        raise


def _address(family: str, directory: Optional[str], name: str) -> Any:
    if family == "unix":
        return addresses.unix_address(directory or "", name)
    return addresses.loopback(family)


def run(module: Any) -> Dict[str, str]:
    """Probe ``module`` (the implementation under test); behaviour -> what hung."""
    findings: Dict[str, str] = {}
    opened: List[Any] = []
    handler = getattr(module, "BaseRequestHandler", None)
    if handler is None:
        return findings
    _probe_documented_methods(module)
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(addresses.private_dir()) if caps().af_unix else None
        for name in _BASES:
            cls = getattr(module, name, None)
            family = addresses.family_for_class(name)
            if not isinstance(cls, type) or (family == "unix" and directory is None):
                continue
            construct: Callable[[], Any] = functools.partial(_construct, cls, family, directory, name, handler)
            server = _bounded("constructor_returns", module, f"{name}(address, handler)", construct, findings)
            if server is not None:
                opened.append(server)
                _probe_address(server, name, family)
        for server in opened:
            if type(server).__name__ == "TCPServer":
                # the request path first: a loop thread left running by an idle-loop probe (e.g. a
                # shutdown() that does not wait for the loop) would take the probe's connection,
                # and its get_request() would then look hung: a finding of the harness, not the impl
                _probe_request_path(module, server, findings)
                if not findings:  # a hang found above would only hang the loop's thread again
                    _probe_idle_loop(module, server, findings)
            elif type(server).__name__ == "UDPServer":
                _probe_datagram_request(module, server, findings)
                if not findings:
                    _probe_datagrams_each_served(module, server, findings)
        if not findings:  # a hang found above would only hang this probe's threads again
            _probe_threading(module, findings)
        if not findings:
            _probe_threading_unbounded(module, findings)
        # slow-serve: ThreadingMixIn ends its requests through the same shutdown_request(), or
        # not; its probe runs alongside the others (it waited out its own short() after
        # TCPServer's for a request that never ends: tutorial_keeps_connection_open probed for
        # 10 s), and is joined before the descriptor count of _probe_close_releases
        threaded = None
        if not findings:
            threaded = threading.Thread(target=_probe_served_requests, args=(module, "ThreadingTCPServer", {}),
                                        name="ssc-bounded:probe ThreadingTCPServer requests", daemon=True)
            threaded.start()
        served = {}
        for name in ("TCPServer", "UDPServer"):
            if not findings:  # one finding is enough: UDPServer shares serve_forever() with TCPServer
                served[name] = _probe_served_requests(module, name, findings)
        for name, sibling in (("UnixStreamServer", "TCPServer"), ("UnixDatagramServer", "UDPServer")):
            if served.get(sibling) and not findings and directory is not None:  # prec-bind
                with addresses.private_dir() as unix_dir:
                    _probe_served_requests(module, name, findings, unix_dir)
        if not findings:  # after the request path: a hung handler is that probe's finding, named there
            _probe_handler_lifecycle(handler, module, findings)
        if threaded is not None:
            threaded.join(timeouts.medium())  # bounded: its exchanges and stops are
        counting = threaded is None or not threaded.is_alive()  # its descriptors would be counted
        if not findings and counting:  # a construction or server_close() known to hang would hang it again
            _probe_close_releases(module, findings)
        if not findings:  # coll-bind: likewise
            _probe_backlog(module, findings)
        if not findings and counting:  # it counts descriptors too
            _probe_failed_construction_closes(module, findings)
        for server in opened:
            _bounded("server_close_returns", module, f"{type(server).__name__}.server_close()",
                     server.server_close, findings)
            with contextlib.suppress(Exception):
                server.socket.close()  # a server_close() that hung closed nothing
    return findings


def _probe_documented_methods(module: Any) -> None:
    """TCPServer has every documented BaseServer method (API-020 judges it).  One that is
    missing is called by the loop or by a request's path, so its absence surfaces in any
    check; it is latched run-wide, and such failures end PRECONDITION_FAILED naming API-020
    (api_no_verify_request: 41 collateral ERROR/FAIL, each an AttributeError of the
    implementation's own code or a request socket it then leaked)."""
    tcp = getattr(module, "TCPServer", None)
    if not isinstance(tcp, type):
        return  # a missing class is API-001's (MissingClass)
    missing = [name for name in prerequisites.DOCUMENTED_SERVER_METHODS if not callable(getattr(tcp, name, None))]
    if missing:
        LATCH.set("documented_methods", (), f"TCPServer has no callable {', '.join(missing)}")


def _probe_close_releases(module: Any, findings: Dict[str, str]) -> None:
    """A TCPServer constructed, asked its ``fileno()`` (as every selector is), then closed,
    leaves no descriptor behind (SHUTDOWN-008 judges that clients are then refused).  One that
    does makes every check's teardown leak check fail for that defect (bind_fileno_dup: 148
    collateral); it is latched, and those leaks end PRECONDITION_FAILED naming SHUTDOWN-008
    (servers.leak_owner).  Run after the other probes, and bounded as they are: a constructor
    or ``server_close()`` that hangs is theirs (the first version of this probe ran unbounded,
    and a hanging ``server_activate()`` hung the kit's own tests)."""
    tcp = getattr(module, "TCPServer", None)
    handler = getattr(module, "BaseRequestHandler", None)
    before = servers.open_fds()
    if not isinstance(tcp, type) or handler is None or before is None:
        return  # no class (API-001's) or no descriptor table here (the check is then skipped too)

    def cycle() -> Any:
        server = tcp(addresses.loopback("inet"), handler)
        try:
            with contextlib.suppress(Exception):
                server.fileno()  # what fileno() returns is BIND-016's
        finally:
            server.server_close()
        return server

    # the server is kept until the count, as a check keeps it until its teardown's leak check
    # (collected, a leaked socket object would close itself)
    server = _bounded("constructor_returns", module, "TCPServer() then fileno() then server_close()", cycle,
                      findings)
    if findings:
        return  # it hung: that finding's owner has it, and what it left open says nothing
    after = servers.open_fds() or {}
    del server
    left = sorted(fd for fd, target in after.items() if before.get(fd) != target)
    if left:
        LATCH.set("close_releases", (), f"TCPServer.server_close() after fileno() left descriptors "
                                        f"{', '.join(f'{fd} -> {after[fd]}' for fd in left)} open")


def _probe_failed_construction_closes(module: Any, findings: Dict[str, str]) -> None:
    """coll-bind: ``TCPServer(("127.0.0.1", -1))`` raises in ``server_bind()`` (OverflowError) and
    leaves no descriptor open while its exception is still held, as a check holds the exception
    it judges (BIND-013 and BIND-014 judge this; bpo-22435).  One that keeps its socket is
    latched: a teardown's leak of descriptors then ends PRECONDITION_FAILED naming BIND-014
    (servers.leak_owner; bind_no_close_on_failure: UNIX-005[live] failed with a LeakError of the
    second server it failed to bind on purpose).  Bounded as the other probes are."""
    tcp = getattr(module, "TCPServer", None)
    handler = getattr(module, "BaseRequestHandler", None)
    before = servers.open_fds()
    if not isinstance(tcp, type) or handler is None or before is None:
        return

    def fail() -> Any:
        try:
            return tcp(("127.0.0.1", -1), handler)
        except prerequisites.PreconditionFailed:
            raise  # a call known not to return, ended by the guard: that finding's owner has it
        except Exception as exc:  # the socket, if left open, lives on in the traceback's frames
            return exc

    held = _bounded("constructor_returns", module, "TCPServer(('127.0.0.1', -1), handler)", fail, findings)
    if findings or not isinstance(held, Exception):
        return  # it hung (that finding's owner has it), or it constructed: BIND-013 judges that
    after = servers.open_fds() or {}
    left = sorted(fd for fd, target in after.items() if before.get(fd) != target and target.startswith("socket:"))
    tb = held.__traceback__
    for _ in range(200):  # bounded: close what it left, through its own socket object (never a number)
        if tb is None:
            break
        with contextlib.suppress(Exception):
            tb.tb_frame.f_locals["self"].socket.close()
        tb = tb.tb_next
    del held, tb
    if left:
        LATCH.set("failed_construction_closes", (), f"TCPServer(('127.0.0.1', -1)) raised and left descriptors "
                                                    f"{', '.join(f'{fd} -> {after[fd]}' for fd in left)} open")


def _probe_backlog(module: Any, findings: Dict[str, str]) -> None:
    """coll-bind: a TCPServer lets ``request_queue_size`` clients connect before it accepts one
    (BIND-018 judges it, BIND-005 the listen() call).  Several checks connect that many clients
    (or fewer) before the loop accepts; with a shorter backlog their connect() times out (TCP
    drops the SYN) or fails with EAGAIN (AF_UNIX), which is latched so that such a failure ends
    PRECONDITION_FAILED naming BIND-018 (prerequisites._backlog_client; bind_listen_fixed_backlog:
    SERVE-006, UNIX-007 and CONCURRENCY-001 ended ERROR).  Each connect waits ``absence()`` at
    most, as BIND-018's do: a healthy backlog completes them at once."""
    tcp = getattr(module, "TCPServer", None)
    handler = getattr(module, "BaseRequestHandler", None)
    if not isinstance(tcp, type) or handler is None:
        return
    server = _bounded("constructor_returns", module, "TCPServer(address, handler)",
                      lambda: tcp(addresses.loopback("inet"), handler), findings)
    if server is None:
        return
    wanted = server.request_queue_size if isinstance(server.request_queue_size, int) else 0
    connected: List[socket.socket] = []
    failure: Optional[str] = None
    try:
        # the listening socket's own address: server_address is BIND-003/004's (a server that
        # keeps port 0 there made every connect fail, a false finding in bind_address_not_updated)
        address = server.socket.getsockname()
        for _ in range(min(wanted, 64)):  # bounded: the default is 5
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.settimeout(timeouts.absence())
            try:
                client.connect(address)
            except (socket.timeout, BlockingIOError) as exc:  # a dropped SYN, EAGAIN: a short backlog
                client.close()
                failure = f"{type(exc).__name__}: {exc}"
                break
            except OSError:  # refused, unreachable: not the backlog; the checks that own it judge it
                client.close()
                break
            connected.append(client)
    finally:
        for client in connected:
            client.close()
        _bounded("server_close_returns", module, "TCPServer.server_close()", server.server_close, findings)
        with contextlib.suppress(Exception):
            server.socket.close()
    if failure is not None:
        LATCH.set("backlog_holds", (f"completed={len(connected)}",),
                  f"TCPServer (request_queue_size={wanted}) let {len(connected)} clients connect before "
                  f"accept(); the next one got {failure}")


def _probe_handler_lifecycle(base: type, module: Any, findings: Dict[str, str]) -> None:
    """``BaseRequestHandler.__init__`` calls setup(), handle(), finish() once each, in that
    order (no socket: the steps of this handler touch nothing).  Every harness handler
    records and answers through those steps; a lifecycle that skips one is latched
    (prec-conc), so servers are refused at once, naming HANDLER-001, instead of every check
    waiting out its budget for a step that never runs."""
    steps: List[str] = []

    class Steps(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            steps.append("setup")

        def handle(self) -> None:
            steps.append("handle")

        def finish(self) -> None:
            steps.append("finish")

    _bounded("handler_returns", module, "BaseRequestHandler.__init__",
             lambda: Steps(None, ("127.0.0.1", 0), None), findings)
    key = prerequisites.handler_key(Steps)
    if steps != ["setup", "handle", "finish"] and "handler_returns" not in findings and key is not None:
        LATCH.set("handler_lifecycle", key, f"BaseRequestHandler.__init__ ran {steps}, "
                                            f"not ['setup', 'handle', 'finish']")


def _probe_address(server: Any, name: str, family: str) -> None:
    """A server constructed on port 0 knows its real port (server_address): every client
    of every check connects to it.  (A Unix server's address is the path it was given.)"""
    if family == "unix":
        return
    port = server.server_address[1] if isinstance(server.server_address, tuple) else None
    if port == 0:
        detail = (f"{name}(port 0) has server_address {server.server_address!r}, not its bound address "
                  f"{server.socket.getsockname()!r}")
        LATCH.set("address_bound", prerequisites.serving_key(type(server), "address_bound"), detail)


def _probe_request_path(module: Any, server: Any, findings: Dict[str, str]) -> None:
    """get_request() with a connection pending, the handler, handle_request() with a timeout."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(timeouts.short())
    try:
        client.connect(server.server_address)
        accepted = _bounded("get_request_returns", module, "TCPServer.get_request()", server.get_request,
                            findings)
        if accepted is not None:
            request, address = accepted
            try:
                _bounded("handler_returns", module, "TCPServer.finish_request()",
                         lambda: server.finish_request(request, address), findings)
            finally:
                with contextlib.suppress(OSError):
                    request.close()
    except OSError:
        return  # the checks that own connecting judge it
    finally:
        client.close()
    server.timeout = timeouts.poll()
    _bounded("handle_request_returns", module, "TCPServer.handle_request() with self.timeout set",
             server.handle_request, findings)


def _probe_idle_loop(module: Any, server: Any, findings: Dict[str, str]) -> None:
    """serve_forever() survives idle iterations, and stops (harness.serving.servers.stop_loop: a
    hung shutdown() is found here once, by the latch every teardown uses)."""
    counter = servers.LoopCounter(count=True)
    ended: Dict[str, Any] = {}
    actions: List[int] = []  # slow-serve: service_actions() calls of the idle loop
    hook = getattr(server, "service_actions", None)
    if callable(hook):
        def service_actions() -> Any:
            actions.append(1)
            return hook()

        server.service_actions = service_actions  # this instance only: the probe's own server

    poll = timeouts.poll()  # slow-teardown: before install(): the counter's first wait call is the loop's

    def serve() -> None:
        counter.install()
        try:
            server.serve_forever(poll)
        except BaseException as exc:  # the finding, if it comes before shutdown
            ended["error"] = exc
        finally:
            sys.setprofile(None)

    thread = threading.Thread(target=serve, name="ssc-bounded:probe serve_forever()", daemon=True)
    thread.start()
    try:
        # a loop that sleeps past its poll_interval (SERVE-008 owns that) shows it in one idle iteration
        timeouts.wait_until(lambda: counter.waits >= (2 if counter.oversleeps else 3) or not thread.is_alive(),
                            timeouts.short(), "three idle iterations of serve_forever()")
    except timeouts.HarnessTimeout:
        pass  # a loop that never waits: serve_in_thread's readiness owns it (SERVE-007)
    thread.join(0)
    if not thread.is_alive() and "error" in ended:
        error = ended["error"]
        detail = f"serve_forever() raised {type(error).__name__}: {error} in an idle loop"
        LATCH.set("serve_forever_runs", prerequisites.function_key(server, "serve_forever"), detail)
        findings["serve_forever_runs"] = detail
        return
    waits = counter.waits
    if counter.oversleeps is not None:  # slow-teardown: for loops served where no counter looks (the forking lab)
        LATCH.set("poll_interval_kept", prerequisites.function_key(server, "serve_forever"), counter.oversleeps)
    _stop_probe_loop(server, thread)
    server._BaseServer__shutdown_request = False  # for the probes after this one (stdlib spelling)
    if callable(hook):
        del server.service_actions
        if waits >= 2 and not actions:  # a second wait follows a first idle iteration's end
            LATCH.set("service_actions_idle", prerequisites.function_key(server, "serve_forever"),
                      f"serve_forever() began {waits} waits in its selector without calling service_actions()")


def _stop_probe_loop(server: Any, thread: threading.Thread) -> None:
    """stop_loop(), then the loop's end (bounded) when shutdown() returned: a shutdown() that
    does not wait for the loop (shutdown_no_wait) left the probe's loop running, and the next
    probe's reset of the shutdown flag kept it running on a closed socket for the whole run
    (BIND-009 then failed its rebind now and then).  A loop found hung is not waited for again."""
    record = servers.Teardown()
    with contextlib.suppress(Exception):
        servers.stop_loop(server, thread, record, timeouts.short())
    if not record.hung:
        thread.join(timeouts.short())


def _probe_datagram_request(module: Any, server: Any, findings: Dict[str, str]) -> None:
    """A datagram server's get_request() gives ((data, socket), address)."""
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client.sendto(b"probe", server.server_address)
        got = _bounded("get_request_returns", module, "UDPServer.get_request()", server.get_request, findings)
    except OSError:
        return
    finally:
        client.close()
    if got is None:
        return
    request = got[0] if isinstance(got, tuple) and len(got) == 2 else got
    if not (isinstance(request, tuple) and len(request) == 2 and isinstance(request[0], bytes)
            and hasattr(request[1], "sendto")):
        detail = f"UDPServer.get_request() gave the request {request!r:.80}, not (data, socket)"
        LATCH.set("datagram_request", family_key(type(server), "datagram_request") or (), detail)
        findings["datagram_request"] = detail


def _probe_datagrams_each_served(module: Any, server: Any, findings: Dict[str, str]) -> None:
    """slow-hang: two datagrams pending, get_request() twice gives both, one each (the second
    call only once select() saw the socket readable, bounded by ``short()``: a datagram that is
    no longer there is a finding, not a hang).  A get_request() that drains the socket and keeps
    one datagram (udp_coalesces_datagrams) made every check that sends several at once wait out
    its budget for the replies to the dropped ones (8 collateral FAIL/TIMEOUT, 10 s each); it is
    latched as a family need, so datagram servers are refused at once, naming UDP-009."""
    sent = [b"probe-one", b"probe-two"]
    got: List[Any] = []
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for data in sent:  # both are queued at the server's socket once sendto() returns (loopback)
            client.sendto(data, server.server_address)
        for _ in sent:
            if not _readable(server, timeouts.short()):
                break
            request = _bounded("get_request_returns", module, "UDPServer.get_request()", server.get_request,
                               findings)
            if request is None:
                return  # a hang: that finding's owner has it
            got.append(request[0][0] if isinstance(request, tuple) and isinstance(request[0], tuple) else request)
    except (OSError, TypeError, IndexError):
        return  # the checks that own the datagram path judge it
    finally:
        client.close()
    if sorted(got) != sent:
        detail = (f"UDPServer.get_request() with the datagrams {sent!r} pending gave "
                  f"{[data if isinstance(data, bytes) else repr(data)[:40] for data in got]!r} "
                  f"(then nothing was pending within {timeouts.short():.2f}s)")
        LATCH.set("datagrams_each_served", family_key(type(server), "datagrams_each_served") or (), detail)
        findings["datagrams_each_served"] = detail


def _readable(server: Any, budget: float) -> bool:
    """The server's socket has something to read within ``budget`` (a select() of its own, never
    the implementation's)."""
    import select

    return bool(select.select([server.socket], [], [], budget)[0])


def _probe_threading(module: Any, findings: Dict[str, str]) -> None:
    """ThreadingTCPServer.process_request() runs the handler in a thread of its own."""
    cls = getattr(module, "ThreadingTCPServer", None)
    base = getattr(module, "BaseRequestHandler", None)
    if not isinstance(cls, type) or not isinstance(base, type):
        return
    ran: Dict[str, int] = {}
    done = threading.Event()

    class Handler(base):  # type: ignore[misc, valid-type]
        def handle(self) -> None:
            ran["thread"] = threading.get_ident()
            done.set()

    # daemon threads and no join in server_close(): a probe never waits for a handler
    probe_class = type("ProbeThreadingTCPServer", (cls,), {"daemon_threads": True, "block_on_close": False})
    server = _bounded("constructor_returns", module, "ThreadingTCPServer(address, handler)",
                      lambda: probe_class(addresses.loopback("inet"), Handler), findings)
    if server is None:
        return
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(timeouts.short())
    try:
        client.connect(server.server_address)
        accepted = _bounded("get_request_returns", module, "ThreadingTCPServer.get_request()",
                            server.get_request, findings)
        if accepted is None:
            return
        caller: Dict[str, int] = {}

        def process() -> None:
            caller["thread"] = threading.get_ident()
            server.process_request(*accepted)

        _bounded("handler_returns", module, "ThreadingTCPServer.process_request()", process, findings)
        # decided at once: a handler run in the calling thread ran within process(), so it has
        # run by now; one that has not is in another thread (or never runs: process_request()
        # failed before starting it, which THREADING-001 judges): either way not this finding
        # (waiting for it cost threading_close_requires_requests 5 s)
        if done.is_set() and ran.get("thread") == caller.get("thread"):
            detail = "ThreadingTCPServer.process_request() ran the handler in the calling thread"
            LATCH.set("threading_spawns", family_key(cls, "threading_spawns") or (), detail)
            findings["threading_spawns"] = detail
    except OSError:
        return
    finally:
        client.close()
        _bounded("server_close_returns", module, "ThreadingTCPServer.server_close()", server.server_close,
                 findings)
        with contextlib.suppress(Exception):
            server.socket.close()


#: slow-hang: how many handlers :func:`_probe_threading_unbounded` holds at once: THREADING-010's count
HELD_THREADS = 20


def _probe_threading_unbounded(module: Any, findings: Dict[str, str]) -> None:
    """slow-hang: a ThreadingTCPServer runs :data:`HELD_THREADS` held handlers at once (THREADING-010
    judges it).  Requests are taken by a loop of this probe's own (``get_request()``,
    ``process_request()``), each handler holds until released, and the probe waits ``short()`` for
    them all; a capped mix-in blocks its loop in ``process_request()`` once the cap is reached.  That
    is a family need (every check holding handlers or running a swarm against a Threading* server
    waited out its budget, and a cap shared by the module kept later checks' handlers from
    starting): Threading* servers are refused at once, naming THREADING-010.  Everything is
    released and closed afterwards, bounded; the loop is a daemon."""
    cls = getattr(module, "ThreadingTCPServer", None)
    base = getattr(module, "BaseRequestHandler", None)
    if not isinstance(cls, type) or not isinstance(base, type):
        return
    release = threading.Event()
    arrived = threading.Semaphore(0)
    count = [0]
    lock = threading.Lock()

    finished = threading.Semaphore(0)

    class Held(base):  # type: ignore[misc, valid-type]
        def handle(self) -> None:
            try:
                with lock:
                    count[0] += 1
                arrived.release()
                release.wait(timeouts.medium())  # bounded: the probe releases them all
            finally:
                finished.release()

    # The class's own defaults (daemon_threads, block_on_close), as THREADING-010 serves it: a mix-in
    # that counts the threads it keeps (its list exists only for non-daemon threads it joins) caps
    # or sheds only there; with daemon threads and no list, concurrency_sheds_load never shed here.
    probe_class = type("ProbeHeldThreadingTCPServer", (cls,), {})
    server = _bounded("constructor_returns", module, "ThreadingTCPServer(address, handler)",
                      lambda: probe_class(addresses.loopback("inet"), Held), findings)
    if server is None:
        return
    server.socket.settimeout(timeouts.short())  # an accept of the probe's own loop never blocks forever

    def loop() -> None:
        for _ in range(HELD_THREADS):
            if release.is_set():  # the probe is over: no accept() that waits for a client never coming
                return
            try:
                server.process_request(*server.get_request())
            except Exception:  # noqa: BLE001 - not this probe's finding: the checks that own it judge it
                return

    opened: List[socket.socket] = []
    thread = threading.Thread(target=loop, name="ssc-bounded:probe held threads", daemon=True)
    thread.start()
    try:
        deadline = timeouts.Deadline(timeouts.short(), "the probe's held handlers")
        held = 0
        for _ in range(HELD_THREADS):  # one at a time, as THREADING-010: never beyond the listen backlog
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            opened.append(client)
            client.settimeout(timeouts.short())
            client.connect(server.server_address)
            if not arrived.acquire(timeout=max(deadline.remaining(), 0.001)):
                break
            held += 1
        if held < HELD_THREADS and thread.is_alive():  # the loop itself is stuck: a cap
            detail = (f"ThreadingTCPServer ran {count[0]} of {HELD_THREADS} held handlers at once "
                      f"within {timeouts.short():.2f}s")
            LATCH.set("threading_unbounded", family_key(cls, "threading_unbounded") or (), detail)
            findings["threading_unbounded"] = detail
    except OSError:
        return  # connecting is judged by the checks that own it
    finally:
        release.set()
        for client in opened:
            client.close()
        thread.join(timeouts.short())
        ended = timeouts.Deadline(timeouts.short(), "the probe's held handlers to end")
        for _ in range(count[0]):  # non-daemon handler threads: none outlives the probe
            if not finished.acquire(timeout=max(ended.remaining(), 0.001)):
                break
        with contextlib.suppress(Exception):
            server.socket.close()


def _exchange(server: Any, dgram: bool, unix_dir: Optional[str] = None,
              payload: bytes = b"probe", loop: Optional[threading.Thread] = None,
              settled: Optional[Callable[[], Optional[str]]] = None) -> Dict[str, Any]:
    """One request to ``server``: ``{"data", "eof", "waited", "error"}`` (stream: connect, send,
    SHUT_WR, read to EOF; datagram: one datagram, one reply), each bounded by ``short()``.
    ``waited``: the budget ran out (a reset, an abortive close, is an end, judged by the checks
    that own it).  ``unix_dir``: an AF_UNIX client (a datagram one bound in that directory).
    ``loop``: the serving thread; the wait for a stream's end stops when it died (slow-serve: a
    loop that a handler's error ended leaves the request open, and the wait for its EOF cost
    every such run ``short()``): ``{"loop_died": True}``.  ``settled``: says (a description)
    when the server is certainly done with the request yet left it open, so no EOF can come
    (:func:`_left_open`); the wait then ends at once, ``waited`` with ``{"settled": what}``."""
    kind = socket.SOCK_DGRAM if dgram else socket.SOCK_STREAM
    got: Dict[str, Any] = {"data": b"", "eof": False, "waited": False, "error": None, "reset": False}
    deadline = timeouts.Deadline(timeouts.short(), "the probe's reply")
    family = socket.AF_INET if unix_dir is None else socket.AF_UNIX  # type: ignore[attr-defined]
    with socket.socket(family, kind) as client:
        try:
            if unix_dir is not None and dgram:  # an unbound AF_UNIX client cannot be answered
                client.bind(addresses.unix_address(unix_dir, "probe-client"))
            client.settimeout(deadline.remaining())
            if dgram:
                client.sendto(b"probe", server.server_address)
                got["data"] = client.recvfrom(64)[0]
                return got
            client.connect(server.server_address)
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            for _ in range(64):  # bounded: the reply is 5 bytes
                chunk = _recv_while(client, deadline, loop, settled)
                if chunk is None:
                    got["loop_died"] = True
                    break
                if isinstance(chunk, str):  # the server is done with the request and left it open
                    got["waited"] = True
                    got["settled"] = chunk
                    break
                if not chunk:
                    got["eof"] = True
                    break
                got["data"] += chunk
        except socket.timeout:
            got["waited"] = True
        except ConnectionResetError as exc:  # the handler read all it was sent: an abortive close
            got["reset"] = True
            got["error"] = f"{type(exc).__name__}: {exc}"
        except OSError as exc:  # what arrived so far is the observation
            got["error"] = f"{type(exc).__name__}: {exc}"
    return got


def _left_open(server: Any, counter: Any, returned: List[Tuple[int, threading.Thread]],
               kept: List[Any]) -> Optional[Callable[[], Optional[str]]]:
    """A ``settled`` for :func:`_exchange`: the decisive observation that a request was left open.

    A plain server ends a request in its loop's thread: ``process_request()`` runs the handler,
    then ``shutdown_request()``, and only then does the loop go back to its selector.  So once
    the probe's handler has returned (``returned`` holds the counter's waits at that moment, and
    the handler's thread) and ``counter`` has seen the loop begin another wait, the request's end
    has run.  A ThreadingMixIn server ends it in the handler's thread
    (``process_request_thread()``): once that thread has ended, the end has run.  If the request
    socket the handler was given (``kept[-1]``) is still open then (``fileno()`` is not -1:
    nothing closed it), its client will never read EOF, and waiting out ``short()`` for it would
    only cost the run (tutorial_keeps_connection_open, pipeline_process_request_no_shutdown: 5 s
    each).  A request that was shut down but left open is not decided here: its EOF arrives,
    and the read takes it.  Which of the two ``server`` is, is the class its ``process_request``
    comes from (:func:`harness.serving.servers.request_ender`, as for a check's dead loop); None
    (wait for EOF as before) for any other, e.g. a ForkingMixIn server, whose requests end in a
    child."""
    ender = servers.request_ender(server)
    if ender not in ("BaseServer", "ThreadingMixIn"):
        return None
    threaded = ender == "ThreadingMixIn"
    start = len(returned)

    def settled() -> Optional[str]:
        if len(returned) <= start or not kept:
            return None
        waits, thread = returned[-1]
        if (thread.is_alive() if threaded else counter.waits <= waits):
            return None
        fileno = getattr(kept[-1], "fileno", None)
        try:
            number = fileno() if callable(fileno) else -1
        except OSError:
            return None
        if number == -1:
            return None
        after = "its thread ended" if threaded else "serve_forever() began another wait in its selector"
        return f"the handler returned and {after}, with the request socket still open (fileno() {number}): it was not closed"
    return settled


def _recv_while(client: socket.socket, deadline: timeouts.Deadline, loop: Optional[threading.Thread],
                settled: Optional[Callable[[], Optional[str]]] = None) -> Any:
    """``client.recv(64)`` within ``deadline`` (``socket.timeout`` when it passed); None as soon
    as ``loop`` (if given) is found dead with nothing to read, in slices of ``poll()``; what
    ``settled()`` says (a str) as soon as it says it and a slice then found nothing to read."""
    for _ in range(1_000_000):  # bounded by the deadline; the count only bounds the loop itself
        if loop is None and settled is None:
            client.settimeout(max(deadline.remaining(), 0.001))
            return client.recv(64)
        alive = loop is None or loop.is_alive()  # before the read: data sent before the loop died is still read
        done = settled() if settled is not None else None  # likewise: an EOF sent before is still read
        client.settimeout(max(min(deadline.remaining(), timeouts.poll()), 0.001))
        try:
            return client.recv(64)
        except socket.timeout:
            if not alive:
                return None
            if done is not None:
                return done
            if deadline.expired():
                raise
    raise socket.timeout("the probe's reply")


def _quiet_handle_error(cls: Any, seen: Optional[List[Any]] = None) -> Callable[..., None]:
    """``cls.handle_error`` called with stderr unused: the default prints a traceback.
    ``seen`` (coll-handler) gets the exception each call finds in ``sys.exc_info()``."""
    original = cls.handle_error

    def handle_error(self: Any, request: Any, client_address: Any) -> None:
        if seen is not None:
            seen.append(sys.exc_info()[1])
        with contextlib.redirect_stderr(io.StringIO()):
            original(self, request, client_address)

    return handle_error


def _noting_shutdown_request(cls: Any, ended: threading.Event) -> Callable[..., None]:
    """coll-bind: ``cls.shutdown_request`` that sets ``ended`` once it returned."""
    original = cls.shutdown_request

    def shutdown_request(self: Any, request: Any) -> None:
        try:
            original(self, request)
        finally:
            ended.set()

    return shutdown_request


def _probe_error_path(server: Any, cls: type, name: str, thread: threading.Thread,
                      reported: Optional[List[Any]] = None,
                      settled: Optional[Callable[[], Optional[str]]] = None) -> None:
    """A request whose handler raises still ends: the client reads EOF, and the loop serves
    the next request (prec-conc).  A request that never ends is latched, so later loops of
    the class are refused (the checks whose handlers raise on purpose would each wait out
    their budget for it); a loop that died is latched run-wide (prerequisites.RUN_WIDE).
    ``settled``: see :func:`_left_open` (the request's end is then found without waiting)."""
    got = _exchange(server, False, payload=b"raise", loop=thread, settled=settled)
    if got.get("loop_died"):
        LATCH.set("loop_survives_handler_error", prerequisites.function_key(server, "serve_forever"),
                  f"{name}.serve_forever() ended after a handler raised ValueError")
        return
    if not got["waited"] and reported is not None:
        _note_error_reporting(cls, name, reported)
    if not got["waited"]:
        after = _exchange(server, False, loop=thread)
        if after["data"] != b"probe" and not thread.is_alive():
            LATCH.set("loop_survives_handler_error", prerequisites.function_key(server, "serve_forever"),
                      f"{name}.serve_forever() ended after a handler raised ValueError")
        elif after["data"] != b"probe" and _closed(server):
            # coll-handler: the loop runs on, but the server closed its listening socket (PIPELINE-006:
            # pipeline_error_closes_server, 12 collateral: every check whose client vanished or whose
            # handler raised on purpose found the next client refused)
            LATCH.set("server_survives_handler_error", prerequisites.function_key(server, "serve_forever"),
                      f"{name} closed its listening socket after a handler raised ValueError "
                      f"(the next client: {after['error'] or repr(after['data'])})")
        return
    threaded = any(klass.__name__ == "ThreadingMixIn" for klass in cls.__mro__)
    behaviour = "thread_request_ends_after_error" if threaded else "request_ends_after_error"
    LATCH.set(behaviour, prerequisites.serving_key(cls, behaviour),
              f"{name}: a request whose handler raised got no EOF: {got['settled']}" if got.get("settled") else
              f"{name}: a request whose handler raised got no EOF within {timeouts.short():.2f}s "
              f"(it was not shut down and closed)")


def _note_error_reporting(cls: type, name: str, reported: List[Any]) -> None:
    """coll-handler: the request whose handler raised ValueError has ended (its client read EOF or
    a reset), so its handle_error() call, if any, was made: ``reported`` holds what each call found
    in ``sys.exc_info()``.  ThreadingMixIn that never called it (the error went to
    threading.excepthook) is THREADING-004's; a handle_error() called outside the except block
    is PIPELINE-015's.  The checks that read what handle_error() was given consult these
    (:func:`harness.core.prerequisites.error_reporting`) instead of failing for them."""
    threaded = any(klass.__name__ == "ThreadingMixIn" for klass in cls.__mro__)
    if threaded and not reported:  # a thread may end its request before handle_error(): bounded
        with contextlib.suppress(timeouts.HarnessTimeout):
            timeouts.wait_until(lambda: bool(reported), timeouts.absence(), "handle_error() in the handler thread")
    if threaded and not reported:
        LATCH.set("thread_error_to_handle_error", prerequisites.error_key(cls, "thread_error_to_handle_error"),
                  f"{name}: a handler thread's ValueError never reached handle_error()")
    elif reported and not isinstance(reported[0], ValueError) and not threaded:
        LATCH.set("handle_error_sees_exception", prerequisites.error_key(cls, "handle_error_sees_exception"),
                  f"{name}: handle_error() after a handler's ValueError found sys.exc_info() = {reported[0]!r}")


def _probe_vanished_client(name: str, thread: threading.Thread, vanishing: threading.Event, kept: List[Any],
                           vanished_in: List[threading.Thread], server: Any) -> None:
    """coll-handler: a client that resets its connection while its handler runs: the request is
    still ended and closed, and the loop runs on (DISCONNECT-002's clause).  A shutdown_request()
    that lets shutdown()'s OSError escape (ENOTCONN after a reset, which the stdlib swallows) ends
    the loop of a plain server, and leaves a ThreadingMixIn request open; every check whose client
    vanishes then fails for it (disconnect_shutdown_request_raises: 15 collateral).  Latched
    run-wide, as a loop a handler's error ends.  Decided by events, not by a next client (which
    would wait out its budget in a dead loop's backlog): the request closed, the loop ended, or
    the handler's own thread (not the loop's) ended, whichever comes first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        try:
            client.settimeout(timeouts.short())
            client.connect(server.server_address)
            client.sendall(b"vanish")
            if not vanishing.wait(timeouts.short()):
                return  # not read: the request path's own findings say why
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("HH", 1, 0) if sys.platform == "win32"
                              else struct.pack("ii", 1, 0))
        except OSError:
            return
    request = kept[-1] if kept else None
    handler = vanished_in[-1] if vanished_in else thread

    def closed() -> bool:
        return getattr(request, "fileno", lambda: -1)() == -1

    with contextlib.suppress(timeouts.HarnessTimeout):
        timeouts.wait_until(lambda: closed() or not thread.is_alive() or (handler is not thread and not handler.is_alive()),
                            timeouts.short(), "the vanished client's request to end")
    if not thread.is_alive():
        LATCH.set("vanished_client_survived", prerequisites.function_key(server, "serve_forever"),
                  f"{name}.serve_forever() ended after a client reset its connection during the handler")
    elif not closed():
        with contextlib.suppress(timeouts.HarnessTimeout):  # its thread ended; the close may follow
            timeouts.wait_until(closed, timeouts.absence(), "the vanished client's request to be closed")
        if not closed():
            LATCH.set("vanished_client_survived", prerequisites.function_key(server, "serve_forever"),
                      f"{name}: the request of a client that reset its connection during the handler was "
                      f"never closed")


def _note_handler_arguments(cls: type, name: str, server: Any, given: Any, server_only: bool) -> None:
    """coll-handler: the first handler got the server itself (PIPELINE-014) and, on a stream, the
    accepted socket's peer as its client_address (PIPELINE-013).  The checks that read
    ``self.server`` or ``self.client_address`` in a handler (HANDLER-004, a handler that calls
    ``self.server.shutdown()``, a client told apart by its address) consult these
    (:func:`harness.core.prerequisites.handler_arguments`) instead of failing for them."""
    passed, client_address, peer = given
    if passed is not server:
        LATCH.set("handler_gets_server", prerequisites.error_key(cls, "handler_gets_server"),
                  f"{name}: the handler's server argument is {type(passed).__name__} {passed!r:.80}, "
                  f"not the server")
    if server_only or peer is None:
        return
    if client_address != peer:
        LATCH.set("client_address_is_peer", prerequisites.error_key(cls, "client_address_is_peer"),
                  f"{name}: the handler's client_address is {client_address!r}, the connection's peer {peer!r}")


def _probe_eof_read(cls: type, name: str, server: Any, eof_errors: List[BaseException]) -> None:
    """coll-handler: a handler's read after its client shut down writing returns b'' (the request
    socket get_request() gave; TUTORIAL-002 owns a handler that reads to b'').  One that raises
    instead fails every check whose handler reads to the end (SERVE-004/007: no reply); they
    consult this (:func:`harness.core.prerequisites.handler_arguments`) instead."""
    got = _exchange(server, False, payload=b"eof")
    if eof_errors and not got["waited"]:
        error = eof_errors[0]
        LATCH.set("request_reads_eof", prerequisites.error_key(cls, "request_reads_eof"),
                  f"{name}: a handler's recv() after its client's shutdown(SHUT_WR) raised "
                  f"{type(error).__name__}: {error}, not b''")


def _peer(request: Any) -> Any:
    """coll-handler: the peer of a stream request (asked in its handler, while it is open), else None."""
    try:
        return request.getpeername()
    except Exception:  # noqa: BLE001  a datagram request (a tuple), or no peer: nothing to compare
        return None


def _closed(server: Any) -> bool:
    """coll-handler: the server's listening socket is closed (its fileno() is -1)."""
    try:
        return server.socket.fileno() == -1
    except Exception:  # noqa: BLE001  no socket to ask: nothing is known
        return False


def _probe_served_requests(module: Any, name: str, findings: Dict[str, str],
                           unix_dir: Optional[str] = None) -> bool:
    """Two requests through serve_forever() of ``module.<name>``: each gets its echo (and,
    on a stream, EOF), and the loop is still running after the first.  A request that never
    ends (no EOF after the handler returned), a datagram request whose end closed the shared
    socket, and a loop that returned after one request are findings: every later check that
    serves such a server would wait out its own budget for the same defect.

    prec-bind: ``unix_dir`` serves a Unix kind (:data:`harness.core.prerequisites.KIND_SERVES`)
    there, once its inet sibling was served: a first request it does not answer is a finding of
    that kind, which only the Unix checks' owner judges.  True: the first request got its echo."""
    cls = getattr(module, name, None)
    base = getattr(module, "BaseRequestHandler", None)
    if not isinstance(cls, type) or not isinstance(base, type):
        return False
    dgram = name in ("UDPServer", "UnixDatagramServer")
    address = addresses.loopback("inet") if unix_dir is None else addresses.unix_address(unix_dir, "served")
    # the request stays referenced, as a check's recorder keeps it: only shutdown_request()
    # and close_request() end it then, not the garbage collector (PIPELINE-002 keeps a dup)
    kept: List[Any] = []
    read: List[bytes] = []
    vanishing = threading.Event()  # coll-handler: the vanishing client's request was read
    vanished_in: List[threading.Thread] = []  # and the thread its handler ran in
    given: List[Any] = []  # coll-handler: (server, client_address, request) each handler was given
    eof_errors: List[BaseException] = []  # coll-handler: what a read at the client's end raised

    # the loop's waits (a LoopCounter that counts) and, per handler that returned, the count then
    # and its thread: see _left_open
    counter = servers.LoopCounter(count=True)
    returned: List[Tuple[int, threading.Thread]] = []

    class Echo(base):  # type: ignore[misc, valid-type]
        def handle(self) -> None:
            try:
                self._echo()
            finally:
                returned.append((counter.waits, threading.current_thread()))

        def _echo(self) -> None:
            kept.append(self.request)
            given.append((self.server, self.client_address, _peer(self.request)))  # coll-handler
            if dgram:
                data, sock = self.request
                sock.sendto(data, self.client_address)
                return
            self.request.settimeout(timeouts.short())
            data = self.request.recv(64)
            read.append(data)  # what the handler read (an abortive close is judged by it)
            if data == b"raise":  # the error path (prec-conc)
                raise ValueError("the probe's handler raises on purpose")
            if data == b"eof":  # coll-handler: the client shut down writing; the next read is b''
                try:
                    self.request.recv(64)
                except OSError as exc:
                    eof_errors.append(exc)
            if data == b"vanish":  # coll-handler: the client resets now; return once it did
                vanished_in.append(threading.current_thread())
                vanishing.set()
                select.select([self.request], [], [], timeouts.short())
                return
            self.request.sendall(data)

    # handle_error() quiet: the error path's handler raises on purpose
    reported: List[Any] = []  # what its calls found in sys.exc_info() (coll-handler)
    # coll-bind: shutdown_request() noted, so the second request starts after the first one's end
    # (a ThreadingMixIn ends it in its thread, after the client already read EOF)
    request_ended = threading.Event()
    namespace = {"handle_error": _quiet_handle_error(cls, reported)}
    if callable(getattr(cls, "shutdown_request", None)):  # a missing one is API-020's
        namespace["shutdown_request"] = _noting_shutdown_request(cls, request_ended)
    quiet = type(f"Probe{name}", (cls,), namespace)
    server = _bounded("constructor_returns", module, f"{name}(address, handler)",
                      lambda: quiet(address, Echo), findings)
    if server is None:
        return False
    ended: Dict[str, Any] = {}

    # slow-teardown: the poll interval is taken before the counter is installed: a call of
    # timeouts.poll() after it was the first "wait" the counter saw (its name is a selector's),
    # so the loop's own select(timeout) was never looked at and an oversleeping loop never woken
    poll = timeouts.poll()

    def serve() -> None:
        # slow-serve: a LoopCounter lets stop_loop wake a loop that sleeps past its poll_interval
        # (serve_poll_interval_ignored: each of these probes' loops took a whole second to stop)
        counter.install()
        try:
            server.serve_forever(poll)
        except BaseException as exc:  # the loop died: part of what the finding says
            ended["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            sys.setprofile(None)

    thread = threading.Thread(target=serve, name="ssc-bounded:probe serve_forever() with requests", daemon=True)
    thread.start()
    try:
        settled = None if dgram else _left_open(server, counter, returned, kept)
        first = _exchange(server, dgram, unix_dir, settled=settled)
        if not dgram and first["reset"] and read == [b"probe"]:  # all it was sent was read, yet a reset:
            # an abortive close (the reset may also have dropped the unread echo: not a hang,
            # later loops still run; prec-conc)
            LATCH.set("request_ends_gracefully", prerequisites.serving_key(cls, "request_ends"),
                      f"{name}: the handler read the whole request, and the client then got "
                      f"a reset, not EOF (the request was closed abortively)")
        if given:  # a Unix kind's own client_address is UNIX-003's: only its inet sibling's is noted
            _note_handler_arguments(cls, name, server, given[0], dgram or unix_dir is not None)
        if first["data"] != b"probe":
            if unix_dir is not None:  # its sibling was served: the Unix kind itself does not serve
                _note_kind_unserved(name, first, findings)
            elif _died(thread, ended):  # prec-bind: the loop died on its first request
                detail = f"{name}.serve_forever() died handling its first request ({ended['error']})"
                LATCH.set("serve_forever_runs", prerequisites.function_key(server, "serve_forever"), detail)
                findings["serve_forever_runs"] = detail
            return False  # not served at all: the checks that own the request path judge it
        if not dgram and first["waited"]:
            detail = (f"{name}: the client got the handler's reply but no EOF: {first['settled']}"
                      if first.get("settled") else
                      f"{name}: the client got the handler's reply but no EOF within {timeouts.short():.2f}s "
                      f"after the handler returned (the request was not shut down and closed)")
            LATCH.set("request_ends", prerequisites.serving_key(cls, "request_ends"), detail)
            findings["request_ends"] = detail
            return True
        request_ended.wait(timeouts.absence())  # bounded: an implementation that never calls it is PIPELINE-012's
        if dgram and _shared_socket_connected(cls, name, server):  # udp-connect
            return True  # the second client's datagram would be discarded: its wait would say no more
        second = _exchange(server, dgram, unix_dir)
        if second["data"] == b"probe":
            if not dgram and unix_dir is None:
                _probe_eof_read(cls, name, server, eof_errors)
                _probe_error_path(server, cls, name, thread, reported,
                                  settled=_left_open(server, counter, returned, kept))
                if thread.is_alive():
                    _probe_vanished_client(name, thread, vanishing, kept, vanished_in, server)
            return True
        if dgram and getattr(server.socket, "fileno", lambda: -1)() == -1:
            detail = f"{name}: ending the first datagram request closed the shared server socket"
            LATCH.set("datagram_socket_survives", prerequisites.serving_key(cls, "datagram_socket_survives"),
                      detail)
            findings["datagram_socket_survives"] = detail
        elif not dgram and _no_listener(server, second):  # coll-bind
            detail = (f"{name}: after the first request the listening socket "
                      f"{'was closed (fileno() -1)' if server.socket.fileno() == -1 else 'refused'} "
                      f"the next client ({second['error']})")
            LATCH.set("serves_again", prerequisites.serving_key(cls, "serves_again"), detail)
            findings["serves_again"] = detail
        elif not thread.is_alive():
            detail = (f"{name}.serve_forever() returned after serving one request, without shutdown()"
                      + (f" ({ended['error']})" if "error" in ended else ""))
            LATCH.set("serve_forever_runs", prerequisites.function_key(server, "serve_forever"), detail)
            findings["serve_forever_runs"] = detail
    finally:
        if thread.is_alive():
            _stop_probe_loop(server, thread)
        for request in kept if not dgram else ():  # a datagram request's socket is the server's
            with contextlib.suppress(Exception):
                request.close()
        _bounded("server_close_returns", module, f"{name}.server_close()", server.server_close, findings)
        with contextlib.suppress(Exception):
            server.socket.close()
    return True


def _shared_socket_connected(cls: type, name: str, server: Any) -> bool:
    """udp-connect: after one datagram request served by the server's own request path (the
    probe's handler only replies with ``sendto()``), the shared socket has a peer
    (``getpeername()`` succeeds): the kernel now discards every other client's datagrams
    (connect(2)).  Latched by the path's functions (:func:`~harness.core.prerequisites.request_path_key`),
    not as a finding that stops later probes: loops still serve their one client, and only the
    checks that need several clients answered consult it (:mod:`conformance.tools.shared_socket`)."""
    try:
        peer = server.socket.getpeername()
    except Exception:  # noqa: BLE001  unconnected (ENOTCONN), or no socket to ask: nothing found
        return False
    LATCH.set("datagram_socket_unconnected", prerequisites.request_path_key(cls),
              f"{name}: after serving one datagram request (its handler replied with sendto()), "
              f"getpeername() of the server's socket gave {peer!r}; every other client's datagrams are discarded")
    return True


def _no_listener(server: Any, got: Dict[str, Any]) -> bool:
    """coll-bind: the stream server's listening socket is closed, or refused the client ``got``
    describes (not a reply that was merely slow: a loaded machine must not make a finding)."""
    with contextlib.suppress(Exception):
        if server.socket.fileno() == -1:
            return True
    return "ConnectionRefusedError" in str(got.get("error") or "")


def _died(thread: threading.Thread, ended: Dict[str, Any]) -> bool:
    """prec-bind: the probe's serve_forever() raised (it raises at once on the request it died on)."""
    thread.join(timeouts.absence())
    return "error" in ended and not thread.is_alive()


def _note_kind_unserved(name: str, got: Dict[str, Any], findings: Dict[str, str]) -> None:
    """prec-bind: latch the :data:`~harness.core.prerequisites.KIND_SERVES` behaviour of the
    plain Unix class ``name`` whose first request ``got`` no echo."""
    for behaviour, kind in prerequisites.KIND_SERVES.items():
        if kind == name:
            seen = got["error"] or ("no reply within the budget" if got["waited"] else f"reply {got['data']!r}")
            detail = f"a plain {name} did not answer one request where its inet sibling did ({seen})"
            LATCH.set(behaviour, (f"class={name}",), detail)
            findings[behaviour] = detail


__all__ = ("run",)
