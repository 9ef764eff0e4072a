"""Shared scaffolding for the BIND, PIPELINE, SERVE and SHUTDOWN checks.

Theory of operation
-------------------
These four areas observe *when* the hooks of a server run: the order of the
request pipeline, how often ``service_actions`` runs, whether ``shutdown()``
is still blocked.  The observations come from three small tools:

:class:`Recorder`
    A thread-safe event list with a condition variable.  Hooks overridden in
    a subclass of the implementation's server call ``recorder.add(name)``;
    the check waits (bounded, event-driven) for a predicate over the events
    instead of sleeping.  A counter per name is kept so that a spinning
    serving loop (tens of thousands of ``service_actions`` calls) costs no
    memory.

:class:`Background`
    Runs one call of the implementation (``shutdown()``, ``handle_request()``)
    in a daemon thread the check does *not* wait for, so it can prove that
    the call is still blocked (``done`` stays unset over one
    :func:`harness.core.timeouts.absence` window) and later that it returned.
    With ``watch_wait=True`` the thread installs a profile function
    (``sys.setprofile`` is per thread) that sets ``waiting`` when the call
    enters a Python function named ``wait`` -- ``threading.Event.wait`` in
    ``shutdown()``.  A ``shutdown()`` can only wait *after* it has asked the
    loop to stop, so ``waiting`` proves that the request is pending without
    reading private attributes.  Two things defeat the profile under
    gevent/eventlet monkey-patching: the patched ``Event.wait`` is compiled
    (no Python-level call to see), and all green threads share one OS
    thread, hence one profile function -- so a ``wait`` counts only when it
    happens in the call's own (green) thread (``threading.get_ident()``),
    and :meth:`Background.wait_waiting` also accepts the other proof: the
    call has been running, without returning, for one whole
    :func:`harness.core.timeouts.absence` window.  ``waited_by`` says which proof
    was seen (``"profile"`` or ``"blocked"``).  A ``shutdown()`` that does
    not return within a whole ``short()`` budget is a broken prerequisite
    (:mod:`harness.core.prerequisites`): the check that sees it first judges it,
    and later ones raise :class:`~harness.core.prerequisites.PreconditionFailed`
    when a ``shutdown()`` Background starts, without waiting again (TIMEOUT in
    SHUTDOWN-001, which owns the behaviour, PRECONDITION_FAILED elsewhere).

:class:`LoopThread`
    ``serve_forever`` in a daemon thread that the check controls: unlike
    :func:`harness.serving.servers.serve_in_thread` it neither waits for the loop to
    be ready nor closes the server, because the shutdown checks need to run
    ``serve_forever`` several times on one server, or to start it after
    ``shutdown()`` was called.  On exit it stops a loop that is still
    running (bounded, with :func:`harness.serving.servers.stop_loop`, so a
    ``shutdown()`` that never returns is waited for once per run) and joins
    its thread.

:func:`run_child` runs one ``scenario_*`` function of this module in a
child process (for checks that change process-wide state: the descriptor
limit, ``socket.socketpair``); :func:`failing_accept_server` builds a server
whose ``get_request`` fails a given number of times.

:func:`owned` closes a server on exit (bounded); :func:`make_handler` builds
request handlers with small named behaviours on the implementation's own
``BaseRequestHandler``; :func:`try_roundtrip` and :func:`read_to_eof` turn a
missing reply into an observation the check can *verify*, so that a broken
implementation ends FAIL rather than TIMEOUT.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from harness.clients import clients
from harness.core import clock, timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.core.timeouts import HarnessTimeout
from harness.serving import servers
from harness.serving.servers import call_bounded

# --------------------------------------------------------------------------- recorder


class Recorder:
    """Events from hooks and handlers, shared between threads."""

    #: events beyond this many are only counted (a spinning loop must not
    #: exhaust memory); counts stay exact.
    MAX_EVENTS = 10_000

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self.events: List[Tuple[str, Dict[str, Any]]] = []
        self.counts: Dict[str, int] = {}

    def add(self, name: str, **info: Any) -> None:
        info.setdefault("t", clock.now())
        info.setdefault("thread", threading.get_ident())
        with self._cond:
            self.counts[name] = self.counts.get(name, 0) + 1
            if len(self.events) < self.MAX_EVENTS:
                self.events.append((name, info))
            self._cond.notify_all()

    def count(self, name: str) -> int:
        with self._cond:
            return self.counts.get(name, 0)

    def names(self, *only: str) -> List[str]:
        with self._cond:
            return [name for name, _ in self.events if not only or name in only]

    def infos(self, name: str) -> List[Dict[str, Any]]:
        with self._cond:
            return [info for event, info in self.events if event == name]

    def first(self, name: str) -> Optional[Dict[str, Any]]:
        found = self.infos(name)
        return found[0] if found else None

    def wait(self, predicate: Callable[[Recorder], Any], budget: float, what: str) -> None:
        """Block until ``predicate(self)`` is true; HarnessTimeout after ``budget``."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout=budget):
                raise HarnessTimeout(what, budget)

    def reached(self, predicate: Callable[[Recorder], Any], budget: float) -> bool:
        """Like :meth:`wait`, but answers instead of raising."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self), timeout=budget))

    def wait_count(self, name: str, n: int, budget: Optional[float] = None) -> None:
        budget = timeouts.short() if budget is None else budget
        self.wait(lambda r: r.count(name) >= n, budget, f"{n} x {name}")


def recording_class(base: type, recorder: Recorder, hooks: Tuple[str, ...], name: str = "") -> type:
    """A subclass of ``base`` whose ``hooks`` record their call, then call
    the base implementation and return its value."""

    def wrap(hook: str) -> Callable[..., Any]:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            recorder.add(hook, args=args)
            return getattr(base, hook)(self, *args, **kwargs)

        method.__name__ = hook
        return method

    namespace: Dict[str, Any] = {hook: wrap(hook) for hook in hooks}
    namespace["__module__"] = __name__
    return type(name or f"Recording{base.__name__}", (base,), namespace)


# --------------------------------------------------------------------------- handlers


def make_handler(ss: Any, recorder: Recorder, behaviour: str = "noop", **opts: Any) -> type:
    """A ``ss.BaseRequestHandler`` subclass recording ``handler`` and then:

    ``noop``      nothing
    ``reply``     ``sendall(opts["reply"])`` (stream requests)
    ``echo``      read until EOF (bounded), send it back
    ``raise``     raise ``opts["exc"]`` (an instance or a class)
    ``hold``      wait (bounded) until ``recorder`` has a ``release`` event,
                  record ``handler_done``, then raise ``opts.get("exc")`` if given
    ``shutdown``  call ``self.server.shutdown()`` and record ``shutdown_returned``
    """

    class Handler(ss.BaseRequestHandler):  # type: ignore[name-defined,misc]
        def handle(self) -> None:
            recorder.add("handler", request=self.request, client_address=self.client_address,
                         server=self.server)
            if behaviour == "noop":
                return
            if behaviour == "reply":
                self.request.sendall(opts.get("reply", b"reply"))
                return
            if behaviour == "echo":
                self.request.settimeout(timeouts.short())
                data = bytearray()
                for _ in range(10_000):
                    chunk = self.request.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.request.sendall(bytes(data))
                return
            if behaviour == "raise":
                exc = opts["exc"]
                raise exc() if isinstance(exc, type) else exc
            if behaviour == "hold":
                recorder.add("hold")
                held = recorder.reached(lambda r: r.count("release") > 0, timeouts.short())
                recorder.add("handler_done", released=held)
                exc = opts.get("exc")
                if exc is not None:
                    raise exc() if isinstance(exc, type) else exc
                return
            if behaviour == "shutdown":
                self.server.shutdown()
                recorder.add("shutdown_returned")
                return
            raise ValueError(f"unknown behaviour {behaviour!r}")

    Handler.__name__ = f"Handler_{behaviour}"
    Handler.__qualname__ = Handler.__name__
    return Handler


# --------------------------------------------------------------------------- background calls


class Background:
    """One call in a daemon thread: ``done``, ``value``, ``error``, ``waiting``."""

    def __init__(self, fn: Callable[..., Any], *args: Any, what: str, watch_wait: bool = False,
                 **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.what = what
        self.watch_wait = watch_wait
        self.done = threading.Event()
        self.waiting = threading.Event()
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.started_at: Optional[float] = None
        self.ended_at: Optional[float] = None
        self.waited_by: Optional[str] = None
        self._ident: Optional[int] = None
        self.thread = threading.Thread(target=self._run, name="ssc-check:" + what[:60], daemon=True)

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        # green threads share the OS thread's profile: only our own calls count
        if event == "call" and frame.f_code.co_name == "wait" and threading.get_ident() == self._ident:
            if self.waited_by is None:
                self.waited_by = "profile"
            self.waiting.set()

    def _run(self) -> None:
        self._ident = threading.get_ident()
        if self.watch_wait:
            sys.setprofile(self._profile)
        self.started_at = clock.now()
        try:
            self.value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # reported to the check
            self.error = exc
        finally:
            if self.watch_wait:
                sys.setprofile(None)
            self.ended_at = clock.now()
            self.waiting.set()
            self.done.set()

    def start(self) -> Background:
        server = servers.shutdown_target(self.fn)
        stuck = servers.shutdown_stuck(server) if server is not None else None
        if stuck is not None:
            raise PreconditionFailed("shutdown_returns", stuck, timed_out=True)
        self.thread.start()
        return self

    def finished_within(self, budget: float) -> bool:
        done = self.done.wait(budget)
        server = servers.shutdown_target(self.fn)
        if not done and server is not None and budget >= timeouts.short():
            servers.note_shutdown_stuck(server, budget)
        return done

    def wait_waiting(self, budget: Optional[float] = None) -> None:
        """Until the call waits (or ended); HarnessTimeout otherwise.

        "Waits" is a ``wait`` call seen by the profile, or else the call
        still running one :func:`harness.core.timeouts.absence` window after it
        started (see the module doc)."""
        budget = timeouts.short() if budget is None else budget
        window = timeouts.absence()

        def blocked() -> bool:
            if self.waiting.is_set():
                return True
            started = self.started_at
            if started is not None and clock.now() - started >= window and not self.done.is_set():
                if self.waited_by is None:
                    self.waited_by = "blocked"
                self.waiting.set()
                return True
            return False

        if self.waiting.wait(min(window, budget)):
            return
        timeouts.wait_until(blocked, budget, f"{self.what} to start waiting", interval=timeouts.poll())

    def elapsed(self) -> Optional[float]:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


# --------------------------------------------------------------------------- serving loop


class LoopThread:
    """``server.serve_forever(poll_interval)`` in a daemon thread; see module doc."""

    def __init__(self, server: Any, poll_interval: Optional[float] = None,
                 recorder: Optional[Recorder] = None, count_waits: bool = False) -> None:
        self.server = server
        # the loop's iterations, counted without its hooks (harness.serving.servers.LoopCounter)
        self.counter = servers.LoopCounter(count=True) if count_waits else None
        self.poll_interval = timeouts.poll() if poll_interval is None else poll_interval
        self.recorder = recorder
        self.error: Optional[BaseException] = None
        self.returned = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ssc-check:serve_forever", daemon=True)

    def _run(self) -> None:
        try:
            if self.counter is not None:
                self.counter.install()
            self.server.serve_forever(self.poll_interval)
        except BaseException as exc:  # reported to the check
            self.error = exc
        finally:
            if self.counter is not None:
                sys.setprofile(None)
            self.returned.set()
            if self.recorder is not None:
                self.recorder.add("loop_returned")

    def start(self) -> LoopThread:
        broken = servers.loop_known_broken(self.server)
        if broken is not None:
            raise broken
        self.thread.start()
        return self

    def returned_within(self, budget: float) -> bool:
        return self.returned.wait(budget)

    def stop(self, budget: Optional[float] = None) -> None:
        """Shut a running loop down and join it, each bounded by ``budget``
        (default ``short()``)."""
        if self.thread.ident is None:
            return
        budget = timeouts.short() if budget is None else budget
        if not self.returned.is_set() and budget >= timeouts.short():
            record = servers.Teardown()
            servers.stop_loop(self.server, self.thread, record, budget)
            stuck = servers.shutdown_stuck(self.server)
            if record.hung and stuck:
                # the loop was stopped without shutdown() returning: what the check
                # did after its own shutdown() is not what it meant to judge
                raise PreconditionFailed("shutdown_returns", stuck, timed_out=True)
        elif not self.returned.is_set():  # a quick try after a failed check: judges nothing
            call_bounded(self.server.shutdown, budget=budget, what="server.shutdown()")
        timeouts.join_thread(self.thread, budget, "the serve_forever() thread to exit")

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.stop()
        else:
            # The check already failed: try briefly, then abandon the daemon
            # thread (a shutdown() that timed out has still set its request).
            with contextlib.suppress(BaseException):
                self.stop(timeouts.absence())


@contextlib.contextmanager
def owned(server: Any) -> Iterator[Any]:
    """Yield ``server``; close it (bounded) on exit.  When the block failed,
    a failing ``server_close()`` does not hide the block's exception."""
    try:
        yield server
    except BaseException:
        with contextlib.suppress(BaseException):
            call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
        raise
    call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")


# --------------------------------------------------------------------------- clients


def read_to_eof(sock: socket.socket, budget: float) -> Dict[str, Any]:
    """Read until EOF within ``budget``: ``{"data", "eof", "error"}``."""
    deadline = timeouts.Deadline(budget, "EOF from the server")
    data = bytearray()
    for _ in range(10_000):
        remaining = deadline.remaining()
        if remaining <= 0:
            return {"data": bytes(data), "eof": False, "error": f"no EOF within {budget:.2f}s"}
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return {"data": bytes(data), "eof": False, "error": f"no EOF within {budget:.2f}s"}
        except OSError as exc:
            return {"data": bytes(data), "eof": False, "error": f"{type(exc).__name__}: {exc}"}
        if not chunk:
            return {"data": bytes(data), "eof": True, "error": None}
        data += chunk
    return {"data": bytes(data), "eof": False, "error": "too many reads"}


def try_roundtrip(address: Any, payload: bytes, family: str = "inet",
                  budget: Optional[float] = None) -> Dict[str, Any]:
    """Connect, send, half-close, read to EOF: ``{"data", "eof", "error"}``."""
    budget = timeouts.short() if budget is None else budget
    try:
        sock = clients.connect(address, family, timeout=budget)
    except (HarnessTimeout, OSError) as exc:
        return {"data": b"", "eof": False, "error": f"connect: {type(exc).__name__}: {exc}"}
    with sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            return {"data": b"", "eof": False, "error": f"send: {type(exc).__name__}: {exc}"}
        return read_to_eof(sock, budget)


def loopback() -> Tuple[str, int]:
    return ("127.0.0.1", 0)


# --------------------------------------------------------------------------- failing accept()


def failing_accept_server(ss: Any, handler: type, errno_value: int, failures: int, recorder: Recorder,
                          accept_first: bool = False) -> Any:
    """A ``ss.TCPServer`` whose ``get_request`` raises ``OSError(errno_value)``
    on its first ``failures`` calls (recorded as ``accept_failed``), then
    delegates.  With ``accept_first`` each failing call first accepts the
    pending connection and closes it (a connection aborted by its peer)."""
    tcp = ss.TCPServer
    state = {"left": failures}

    def get_request(self: Any) -> Any:
        if state["left"] > 0:
            state["left"] -= 1
            if accept_first:
                request, _address = tcp.get_request(self)
                request.close()
            recorder.add("accept_failed")
            raise OSError(errno_value, "simulated accept() failure")
        return tcp.get_request(self)

    def service_actions(self: Any) -> Any:
        recorder.add("service_actions")
        return tcp.service_actions(self)

    cls = type("FailingAcceptServer", (tcp,), {"get_request": get_request, "service_actions": service_actions,
                                               "__module__": __name__})
    return cls(("127.0.0.1", 0), handler)


# --------------------------------------------------------------------------- child scenarios
#
# Some checks change process-wide state (RLIMIT_NOFILE, socket.socketpair,
# descriptor numbers above FD_SETSIZE).  They run in a child process started
# by :func:`run_child`: ``python -c CHILD_SCRIPT SPEC``.  The script runs the
# adapter's bootstrap (gevent/eventlet patching) before anything imports
# ``socket``, loads the implementation the way the parent did
# (``harness.implementations.resolve``), runs one scenario function of this
# module and sends its result as one ``result`` message of the child
# protocol (:mod:`harness.processes.child_protocol`: whatever the scenario prints goes
# to stderr).  The parent runs it through
# :func:`harness.processes.supervisor.run_once`.

CHILD_SCRIPT = """
import json, sys
spec = json.loads(sys.argv[1])
from harness.processes.child_protocol import Protocol, bootstrap, take_stdout
proto = Protocol(take_stdout())
bootstrap(spec["impl"])
from harness.implementations import resolve
from conformance.checks import _serve_support
ss = resolve(spec["impl"]).module
try:
    result = getattr(_serve_support, "scenario_" + spec["scenario"])(ss, spec)
except _serve_support.PreconditionFailed as exc:  # re-raised by run_child
    result = {"precondition": [exc.behaviour, exc.detail]}
proto.send(event="result", result=result)
"""


def run_child(impl_spec: str, scenario: str, budget: Optional[float] = None, **options: Any) -> Dict[str, Any]:
    """Run ``scenario_<scenario>(ss, spec)`` in a child process (bounded by
    ``budget``, default ``medium()``) and return its result; a child that
    printed no result raises ``RuntimeError`` with its stderr tail."""
    import json

    from harness.processes import supervisor

    budget = timeouts.medium() if budget is None else budget
    spec = dict(options, impl=impl_spec, scenario=scenario)
    message = supervisor.run_once([sys.executable, "-c", CHILD_SCRIPT, json.dumps(spec)], budget=budget,
                                  what=f"the {scenario} scenario's child process")
    result: Dict[str, Any] = message["result"]
    if isinstance(result.get("precondition"), list):
        raise PreconditionFailed(*result["precondition"], timed_out=True)
    return result


def _describe(exc: Optional[BaseException]) -> Optional[str]:
    return None if exc is None else f"{type(exc).__name__}: {exc}"


def _serve_one(ss: Any, server: Any, payload: bytes) -> Dict[str, Any]:
    """serve_forever(poll()) in a thread, one round trip, shutdown() (bounded)."""
    loop = LoopThread(server).start()
    reply = try_roundtrip(server.server_address, payload)
    stopped: Optional[str] = None
    if not loop.returned.is_set():
        try:
            call_bounded(server.shutdown, budget=timeouts.short(), what="server.shutdown()")
        except PreconditionFailed:  # the child reports it; run_child re-raises it
            raise
        except BaseException as exc:  # reported to the parent
            stopped = _describe(exc)
    ended = loop.returned_within(timeouts.short())
    return {"reply": reply["data"].decode("latin-1"), "reply_error": reply["error"],
            "shutdown_error": stopped, "loop_ended": ended, "loop_error": _describe(loop.error)}


def _echo_handler(ss: Any) -> type:
    class Echo(ss.StreamRequestHandler):  # type: ignore[name-defined,misc]
        def handle(self) -> None:
            self.request.settimeout(timeouts.short())
            self.wfile.write(self.rfile.readline())

    return Echo


def scenario_fd_above_setsize(ss: Any, spec: Dict[str, Any]) -> Dict[str, Any]:
    """The listening socket moved to descriptor ``spec["fd"]`` (>= FD_SETSIZE):
    one request through serve_forever(), one through handle_request()."""
    import os
    import resource

    target = int(spec["fd"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            return {"unsupported": f"RLIMIT_NOFILE hard limit {hard} < {wanted}"}
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as exc:
            return {"unsupported": f"cannot raise RLIMIT_NOFILE to {wanted}: {_describe(exc)}"}
    result: Dict[str, Any] = {"fd": target}
    server = ss.TCPServer(("127.0.0.1", 0), _echo_handler(ss))
    try:
        old = server.socket
        os.dup2(old.fileno(), target)
        server.socket = socket.socket(old.family, old.type, old.proto, fileno=target)
        old.close()
        result["listener_fd"] = server.fileno()
        result["serve_forever"] = _serve_one(ss, server, b"above FD_SETSIZE\n")
        server.timeout = timeouts.short()
        call = Background(server.handle_request, what="server.handle_request()").start()
        reply = try_roundtrip(server.server_address, b"handle_request\n")
        ended = call.finished_within(timeouts.short())
        result["handle_request"] = {"reply": reply["data"].decode("latin-1"), "reply_error": reply["error"],
                                    "returned": ended, "error": _describe(call.error)}
    finally:
        call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
    return result


def scenario_no_socketpair(ss: Any, spec: Dict[str, Any]) -> Dict[str, Any]:
    """``socket.socketpair`` raises EMFILE; with ``spec["no_listen"]`` creating
    any new listening socket fails too.  The server (built before the
    patches) gets three EMFILE accept() failures, then serves one request;
    shutdown() must return."""
    import errno

    def no_pair(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, "simulated: too many open files (socketpair)")

    def no_listen(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, "simulated: too many open files (listen)")

    recorder = Recorder()
    server = failing_accept_server(ss, _echo_handler(ss), errno.EMFILE, 3, recorder)
    socket_class = socket.socket
    original_pair = socket.socketpair

    class NoListen(socket_class):  # type: ignore[valid-type,misc]
        """Sockets made from now on cannot listen.  Set per instance, not on
        the class: eventlet's GreenSocket binds ``listen`` per instance too,
        so an instance attribute is the one override that wins everywhere."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.listen = no_listen.__get__(self)

    try:
        socket.socketpair = no_pair  # type: ignore[assignment]
        if spec.get("no_listen"):
            socket.socket = NoListen  # type: ignore[misc]
        result = _serve_one(ss, server, b"no wake-up pair\n")
    finally:
        socket.socketpair = original_pair  # type: ignore[assignment]
        socket.socket = socket_class  # type: ignore[misc]
        call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
    result["accept_failures"] = recorder.count("accept_failed")
    return result


__all__ = [
    "Background", "LoopThread", "Recorder", "failing_accept_server", "loopback", "make_handler", "owned",
    "read_to_eof", "recording_class", "run_child", "try_roundtrip",
]
