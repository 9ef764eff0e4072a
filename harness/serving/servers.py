"""Run a server of the implementation under test, and always get it back.

Theory of operation
-------------------
The implementation under test may be broken in any way: ``serve_forever``
may never start its loop, ``shutdown()`` may never return, a handler may
never finish, threads may leak.  None of this may hang the run.  So every
call into the server that can block runs in a *daemon helper thread*
(:func:`call_bounded`) and is abandoned, not killed (threads cannot be
killed), when its budget runs out; the abandoned thread is a daemon and
cannot keep the interpreter alive.  A :class:`HarnessTimeout` then names
what hung, after every other teardown step was still attempted, so one
stuck call does not leave the rest undone.

:func:`serve_in_thread` runs ``serve_forever`` in a daemon thread and
yields only once the loop *is running*, judged without any hook of the
implementation (its ``service_actions()`` may be the very thing a check is
about): the serve thread installs a profile function (``sys.setprofile``,
per thread) just before it calls ``serve_forever``, and the loop is ready
when that thread first calls a function through which a loop waits for its
socket -- ``select.select``, ``poll.poll``, ``epoll.poll``,
``kqueue.control``, ``selectors``' ``select`` (also gevent's and eventlet's
green ones), a blocking ``accept``/``recvfrom``, a ``sleep`` or an event's ``wait``
(:data:`WAIT_CALLS`).  That is an observation of the boundary between the
loop and the OS, as ``strace`` would make it; it needs no timing, so it does
not depend on load.  The profile function removes itself on that call, or
when the wait for readiness ends in any way.  If ``serve_forever`` returns
or raises first, that is :class:`ServeError` (or its exception).

Teardown is ``shutdown()`` (bounded by ``short()``), join of the serve
thread (``short()``), ``server_close()`` (``medium()``: it may join handler
threads or wait for children), each timed into :class:`Teardown`.  A loop
whose first ``select(timeout)`` asked for more than its own
``poll_interval`` (seen by :class:`LoopCounter` in the call's arguments; a
defect SERVE-008 owns) would see the shutdown request only that much later,
in every check: once ``shutdown()`` waits, it is woken with one empty client,
as SERVE-013 wakes ``serve_forever(None)``.  A loop that keeps its
``poll_interval`` is never poked (``serve_poll_interval_ignored``: 5.9x a
clean run before, about 1.3x after).  A check that needs more of such a
loop's iterations than fit in its budget (:meth:`LoopCounter.wait_waits`)
ends PRECONDITION_FAILED naming SERVE-008.  A
``shutdown()`` that does not return is waited for once per implementation
and process: :data:`harness.core.prerequisites.LATCH` remembers it, and later
teardowns call it in an abandoned daemon thread without waiting, then wait
only for the loop to end.  A loop that does not end is stopped by means that
do not involve ``shutdown()``: the stdlib's shutdown flag
(``_BaseServer__shutdown_request``, a private name the reference spells the
same) as a last resort (not waited for once the loop is seen beginning two
new selector waits after it was set: it does not look at the flag), then the thread is abandoned (it is a daemon), its
listening descriptor replaced by one end of a quiet socket pair so that the
abandoned loop idles instead of spinning on a closed socket.  When
``shutdown()`` hung but the loop stopped, the check's own verdict stands
(the hang is recorded in ``Teardown.hung``, and SHUTDOWN-001 owns it); when
the loop could not be stopped, the check ends PRECONDITION_FAILED
(:class:`harness.core.prerequisites.PreconditionFailed`), and so does every
later check of the same implementation at once.

A ``server_close()`` that :mod:`harness.serving.prerequisite_probes` found not to
return is not called at all (:data:`harness.core.prerequisites.GUARD`): the
teardown closes the listening socket itself and the check's own verdict
stands (BIND-015 owns the hang).  With ``count_waits=True`` the profile
function stays installed as a :class:`LoopCounter`, which counts the loop's
selector waits (one per iteration): checks that need "the loop iterated N
times" count those, not ``service_actions()`` calls, which may be the
broken part.

The leak check compares with the state before the block: threads started in
the block still alive after a bounded wait, more open descriptors than
before (``/proc/self/fd`` or ``/dev/fd``; skipped where neither exists;
counted again after a ``gc.collect()`` when there are any: garbage is not a leak),
and AF_UNIX socket files left in live :func:`~harness.core.addresses.private_dir`
directories.  The server's own socket file is removed first and counted
(``Teardown.unix_path_left``): ``server_close()`` does not unlink it by
design, so that is not a leak.  Leaks raise :class:`LeakError`.

A forking server never runs in a process with clients (its children would
inherit the client sockets): :func:`serve_in_thread` refuses one unless
``allow_forking=True``, which only :mod:`harness.processes.server_process` passes.

:func:`build_server` makes a subclass of the implementation's class with
class-attribute overrides, composing ``Forking*``/``Threading*`` classes
from their mixin and base the way the stdlib does when the module lacks
the combination (``ForkingUnixStreamServer`` before 3.12).  When constructing
fails it asks whether the plain class constructs on a fresh address; if not,
the class is broken for every check and the failure is
:class:`~harness.core.prerequisites.PreconditionFailed` naming the check that owns
constructing it (``constructs:<class>``), else the check's own exception
stands.  A family found broken by the probes (``Threading*`` without threads,
datagram requests without their socket) is refused at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import socket
import sys
import threading
import types
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from harness.core import addresses, clock, prerequisites, timeouts
from harness.core.addresses import UnsupportedFeature
from harness.core.capabilities import caps
from harness.core.prerequisites import LATCH, PreconditionFailed
from harness.core.timeouts import HarnessTimeout
from harness.subject.agent import inside_wait


class LeakError(AssertionError):
    """Something started or created during a served block outlived it."""

    def __init__(self, message: str, leaks: Dict[str, List[str]]):
        super().__init__(message)
        self.leaks = leaks


class ServeError(RuntimeError):
    """``serve_forever`` ended (raised or returned) before it became ready."""


# --------------------------------------------------------------------------- bounded calls

_BOUNDED_PREFIX = "ssc-bounded:"


def call_bounded(fn: Callable[..., Any], *args: Any, budget: Optional[float] = None,
                 what: Optional[str] = None, on_start: Optional[Callable[[threading.Thread], Any]] = None,
                 **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` in a daemon thread; return its result or
    re-raise its exception (any ``BaseException``); :class:`HarnessTimeout`
    if it is still running after ``budget`` (default ``short()``), in which
    case the thread is left behind as a daemon.

    A server's ``shutdown()`` that ran out a whole ``short()`` budget is
    remembered (:func:`note_shutdown_stuck`); once it was, calling it again
    raises :class:`~harness.core.prerequisites.PreconditionFailed` at once.
    ``on_start(thread)`` is called once the call's thread runs."""
    budget = timeouts.short() if budget is None else budget
    what = what or str(getattr(fn, "__qualname__", repr(fn)))
    outcome: Dict[str, Any] = {}
    server = shutdown_target(fn)
    stuck = shutdown_stuck(server) if server is not None else None
    if stuck is not None:
        raise PreconditionFailed("shutdown_returns", stuck, timed_out=True)
    loop_ran = loop_running(server) if server is not None else None
    known = prerequisites.GUARD.refuse(fn)
    if known is not None:
        raise known

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller
            outcome["error"] = exc
            if getattr(fn, "__name__", "") in LOOP_CALLS:  # slow-serve
                prerequisites.loop_died(exc, f"{fn.__name__}()")

    thread = threading.Thread(target=run, name=_BOUNDED_PREFIX + what[:60], daemon=True)
    thread.start()
    if on_start is not None:
        on_start(thread)
    try:
        timeouts.join_thread(thread, budget, what)
    except HarnessTimeout:
        if server is not None and budget >= timeouts.short():
            note_shutdown_stuck(server, budget, loop_ran)
        raise
    if "error" in outcome:
        error = outcome.pop("error")
        try:
            raise error
        finally:
            del error
    return outcome.get("value")


#: slow-serve: the calls that serve requests; one that raises while a run-wide finding is
#: latched ends its check at once (:func:`harness.core.prerequisites.loop_died`)
LOOP_CALLS = frozenset({"serve_forever", "handle_request", "_handle_request_noblock"})


def request_ender(server: Any) -> Optional[str]:
    """The name of the class whose ``process_request`` ``server`` runs (the first of its MRO
    that defines one): ``BaseServer`` ends each request in the loop's own thread,
    ``ThreadingMixIn`` in the request's thread, ``ForkingMixIn`` in a child; None without one."""
    for klass in type(server).__mro__:
        if "process_request" in vars(klass):
            return klass.__name__
    return None


def answers_in_loop(server: Any) -> bool:
    """serve-dead: whether ``server`` finishes each request in the thread of the loop that
    accepted it, so that nothing of it can answer a client once that loop has ended: its
    ``process_request`` is ``BaseServer``'s (:func:`request_ender`), which calls
    ``finish_request()`` and ``shutdown_request()`` itself
    (https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L343-L350);
    ``ThreadingMixIn`` and ``ForkingMixIn`` (or any other override) hand the request to a
    thread or process that may still answer after the loop ended."""
    return request_ender(server) == "BaseServer"


def run_handle_request(server: Any, budget: Optional[float] = None) -> Any:
    """``server.handle_request()`` bounded by ``budget`` (default ``short()``); PRECONDITION_FAILED
    for a listener an earlier request closed (:func:`listener_closed`)."""
    broken = listener_closed(server)
    if broken is not None:
        raise broken
    return call_bounded(server.handle_request, budget=budget, what="server.handle_request()")


def listener_closed(server: Any) -> Optional[PreconditionFailed]:
    """coll-bind: PRECONDITION_FAILED naming SERVE-007 for a server whose listening socket is
    closed, of a class the probes found to close it when a request ends ("serves_again"): its
    next ``handle_request()`` cannot serve (the selector refuses descriptor -1: ValueError).
    Else None."""
    sock = getattr(server, "socket", None)
    with contextlib.suppress(Exception):
        if sock is not None and sock.fileno() == -1:
            return prerequisites.serving_needs(type(server), ("serves_again",))
    return None


# --------------------------------------------------------------------------- building servers

_BASES = ("TCPServer", "UDPServer", "UnixStreamServer", "UnixDatagramServer")
_MIXINS = {"Threading": "ThreadingMixIn", "Forking": "ForkingMixIn"}


def is_forking(server_or_class: Any) -> bool:
    cls = server_or_class if isinstance(server_or_class, type) else type(server_or_class)
    return any(klass.__name__ == "ForkingMixIn" for klass in cls.__mro__)


def require_for(class_name: str) -> None:
    if "Unix" in class_name:
        addresses.require("unix")
    if class_name.startswith("Forking") and not caps().fork:
        raise UnsupportedFeature(f"{class_name} needs os.fork (capability 'fork' is absent)", "fork")


def server_class(module: Any, class_name: str) -> type:
    """``module.<class_name>``, or its composition from mixin and base.

    Refuses (:class:`UnsupportedFeature`) classes the platform cannot run:
    ``Unix*`` without AF_UNIX, ``Forking*`` without fork, also when the
    absence is only simulated.
    """
    require_for(class_name)
    found = getattr(module, class_name, None)
    if isinstance(found, type):
        return found
    for prefix, mixin_name in _MIXINS.items():
        base_name = class_name[len(prefix):]
        if class_name.startswith(prefix) and base_name in _BASES:
            mixin = getattr(module, mixin_name, None)
            base = getattr(module, base_name, None)
            if isinstance(mixin, type) and isinstance(base, type):
                # as the stdlib does: class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer)
                return type(class_name, (mixin, base), {"__module__": module.__name__})
            missing = [n for n, v in ((mixin_name, mixin), (base_name, base)) if not isinstance(v, type)]
            raise prerequisites.MissingClass(
                missing[0].replace("MixIn", ""),
                f"{getattr(module, '__name__', module)} has no {class_name} and cannot compose it: "
                f"missing {', '.join(missing)}"
            )
    raise prerequisites.MissingClass(class_name, f"{getattr(module, '__name__', module)} has no server class "
                                                 f"{class_name!r}")


def build_server(module: Any, class_name: str, handler: type, address: Any, *,
                 bind_and_activate: bool = True, **attrs: Any) -> Any:
    """An instance of a subclass of ``module.<class_name>`` whose class
    attributes ``attrs`` override the implementation's (``daemon_threads``,
    ``block_on_close``, ``max_children``, ``allow_reuse_address``,
    ``timeout``...).  An IPv6 address sets ``address_family = AF_INET6``
    unless ``attrs`` says otherwise."""
    base = server_class(module, class_name)
    # a server that does not know its own port cannot be reached by any client either
    broken = prerequisites.family_needs(base) or prerequisites.serving_needs(base, ("address_bound",))
    broken = broken or prerequisites.handler_needs(handler)  # prec-conc: setup/handle/finish
    if broken is not None:
        raise broken  # e.g. a Threading* class whose mix-in runs no thread: THREADING-001 owns it
    namespace = dict(attrs)
    if "address_family" not in namespace and isinstance(address, tuple) and ":" in str(address[0]):
        namespace["address_family"] = socket.AF_INET6  # an IPv6 address on TCPServer/UDPServer
    namespace.setdefault("__module__", __name__)
    cls = type(f"Harness{class_name}", (base,), namespace)
    try:
        return _watch_forked_requests(cls(address, handler, bind_and_activate))
    except (UnsupportedFeature, PreconditionFailed):
        raise
    except Exception as exc:
        plain = _plain_construction_fails(module, class_name, base)
        if plain is None:
            raise  # the check's own address or attributes made it fail: its own verdict
        raise PreconditionFailed(
            f"constructs:{class_name}",
            f"{class_name}({address!r}, ...) raised {type(exc).__name__}: {exc}; so does {plain}") from exc


def _watch_forked_requests(server: Any) -> Any:
    """coll-server: a forking server (built in a server process or the forking lab) whose
    parent calls ``shutdown_request()`` on a request it has just handed to a child: SHUT_WR
    acts on the connection both share, so the child's reply is lost or not, by a race, and
    every forking check's client may read EOF instead.  That is FORKING-006's clause (the
    parent only closes); it is latched ("forked_request_kept_open") from the call itself,
    which is deterministic, and the checks then end PRECONDITION_FAILED naming FORKING-006
    (:func:`harness.core.prerequisites.forked_handler_needs`).  Wrapped on the instance:
    whatever its class does, the calls go through unchanged."""
    if getattr(server, "socket_type", None) != socket.SOCK_STREAM or \
            not any(klass.__name__ == "ForkingMixIn" for klass in type(server).__mro__):
        return server  # a datagram request has nothing to shut down
    parent = os.getpid()
    process_request, shutdown_request = server.process_request, server.shutdown_request
    handing: List[Any] = []  # (request, active_children before its process_request())

    def children() -> set:
        return set(getattr(server, "active_children", None) or ())

    def watched_process_request(request: Any, client_address: Any) -> Any:
        handing.append((request, children()))
        try:
            return process_request(request, client_address)
        finally:
            if os.getpid() == parent:
                handing.pop()

    def watched_shutdown_request(request: Any) -> Any:
        if os.getpid() == parent and handing and handing[-1][0] is request:
            forked = sorted(children() - handing[-1][1])
            if forked:
                LATCH.set("forked_request_kept_open", ("ForkingMixIn",),
                          f"the parent process {parent} called shutdown_request() on the request it "
                          f"handed to its child {forked[0]}")
        return shutdown_request(request)

    server.process_request = watched_process_request
    server.shutdown_request = watched_shutdown_request
    return server


def _plain_construction_fails(module: Any, class_name: str, base: type) -> Optional[str]:
    """What constructing ``base`` plainly (a fresh loopback address or private
    socket path, the implementation's ``BaseRequestHandler``) raises; None when
    it constructs.  The cheap probe behind ``constructs:<class>``."""
    family = addresses.family_for_class(class_name)
    handler = getattr(module, "BaseRequestHandler", None)
    what = f"{class_name}(a fresh {family} address, BaseRequestHandler)"
    with contextlib.ExitStack() as stack:
        if family == "unix":
            address: Any = addresses.unix_address(stack.enter_context(addresses.private_dir()), "plain")
        else:
            address = addresses.loopback(family)
        try:
            server = base(address, handler)
        except Exception as exc:  # the finding
            return f"{what}: {type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            server.server_close()
        with contextlib.suppress(Exception):
            server.socket.close()
    return None


# --------------------------------------------------------------------------- leak probes


def _fd_dir() -> Optional[str]:
    for candidate in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(candidate):
            return candidate
    return None


def open_fds() -> Optional[Dict[int, str]]:
    """Open descriptors of this process -> what they point to (None: unknown)."""
    directory = _fd_dir()
    if directory is None:
        return None
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    result = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            target = os.readlink(os.path.join(directory, name))
        except FileNotFoundError:
            continue  # closed since the listing (e.g. the listing's own descriptor)
        except OSError:
            target = "?"  # /dev/fd on macOS: no link targets, numbers only
        result[int(name)] = target
    return result


def _socket_files() -> Dict[str, float]:
    found = {}
    for directory in addresses.live_private_dirs():
        for path in addresses.socket_files(directory):
            found[path] = 1.0
    return found


# --------------------------------------------------------------------------- serving


@dataclasses.dataclass
class Teardown:
    """What stopping a served server took (seconds), for the records."""

    shutdown: Optional[float] = None
    join: Optional[float] = None
    server_close: Optional[float] = None
    hung: List[str] = dataclasses.field(default_factory=list)
    hung_budget: Optional[float] = None
    stopped_by: Optional[str] = None
    errors: List[str] = dataclasses.field(default_factory=list)
    unix_path_left: Optional[bool] = None
    leaks: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
    leak_check: str = "not run"

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ServedServer:
    server: Any
    address: Any
    family: str
    thread: threading.Thread
    ready_by: str = "not yet"
    loop: Optional[LoopCounter] = None  # counts the loop's waits with serve_in_thread(count_waits=True)
    serve_error: Optional[BaseException] = None
    teardown: Teardown = dataclasses.field(default_factory=Teardown)


def _family_of(server: Any) -> str:
    try:
        return addresses.family_name(server.address_family)
    except (AttributeError, ValueError):
        return "unknown"


def _threads_alive(ignore: set) -> List[threading.Thread]:
    return [
        t for t in threading.enumerate()
        if t not in ignore and t.is_alive() and not t.name.startswith(_BOUNDED_PREFIX)
    ]


#: Calls through which a serving loop waits for its socket (C functions by
#: ``__name__``, Python functions by code name): the selection calls of
#: ``select`` and ``selectors`` (``poll`` is also ``epoll.poll`` and
#: ``devpoll.poll``, ``control`` is ``kqueue.control``), gevent's and
#: eventlet's green ``select``, and a loop that blocks on the socket itself,
#: sleeps between polls or waits for an event (``Event.wait``).
WAIT_CALLS = frozenset({"select", "poll", "control", "accept", "_accept", "recvfrom", "recvfrom_into",
                        "sleep", "wait"})


#: the waits a loop makes once per iteration (what :class:`LoopCounter` counts):
#: selection calls, not the accept() or recvfrom() of a request
SELECT_CALLS = frozenset({"select", "poll", "control"})


class LoopCounter:
    """Set ``ready`` when the thread that installed it first calls one of
    :data:`WAIT_CALLS`; a per-thread profile function, removed on that call
    or at the first event after :meth:`stop`.

    With ``count=True`` it stays installed and counts the loop's *waits*:
    calls of :data:`SELECT_CALLS` not made from inside another wait call
    (``selectors``' ``select`` calls ``poll``; that is one wait), which is one
    per iteration of a loop that waits for its socket -- a measure of the loop that needs no
    hook of the implementation (``service_actions()`` may be what is broken)."""

    def __init__(self, count: bool = False) -> None:
        self.ready = threading.Event()
        self.reached: Optional[str] = None
        self.waits = 0
        self._count = count
        self._stopped = False
        self._ident: Optional[int] = None
        self._changed = threading.Condition()
        #: the loop's first select() asked for a longer timeout than its poll_interval (the evidence)
        self.oversleeps: Optional[str] = None
        self.sleeps_for = 0.0  # that timeout (seconds)

    def install(self) -> None:
        self._ident = threading.get_ident()
        _COUNTERS[threading.current_thread()] = self
        sys.setprofile(self._event)

    def stop(self) -> None:
        self._stopped = True

    def wait_waits(self, count: int, budget: Optional[float] = None) -> None:
        """Until the loop has begun ``count`` waits; :class:`HarnessTimeout` after
        ``budget`` (default ``short()``)."""
        budget = timeouts.short() if budget is None else budget
        deadline = timeouts.Deadline(budget, f"serve_forever() to begin {count} waits in its selector")
        with self._changed:
            if self.oversleeps is not None and (count - self.waits) * self.sleeps_for > budget:
                raise PreconditionFailed("poll_interval_kept", f"{count - self.waits} more waits of "
                                         f"{self.oversleeps} take longer than {budget:.2f}s")
            while self.waits < count:
                if deadline.expired():
                    what = (f"serve_forever() to begin {count} waits in its selector "
                            f"(it began {self.waits})")
                    if self.oversleeps is not None:
                        raise PreconditionFailed("poll_interval_kept", f"timed out after {budget:.2f}s "
                                                 f"waiting for {what}: {self.oversleeps}", timed_out=True)
                    raise HarnessTimeout(what, budget)
                self._changed.wait(min(deadline.remaining(), 0.05))

    def _event(self, frame: Any, event: str, arg: Any) -> None:
        if threading.get_ident() != self._ident:
            return  # green threads (gevent, eventlet) share one OS thread's profile function
        if self._stopped and not self._count:
            sys.setprofile(None)
            return
        if event == "c_call":
            name = getattr(arg, "__name__", "")
            if name == "poll" and isinstance(getattr(arg, "__self__", None), types.ModuleType):
                return  # select.poll() makes a poll object; its .poll() method waits
            caller = frame
        elif event == "call":
            name = frame.f_code.co_name
            caller = frame.f_back
        else:
            return
        if name not in WAIT_CALLS:
            return
        if self._count:
            if name not in SELECT_CALLS or _inside_wait(caller):
                return
            with self._changed:
                self.waits += 1
                self._changed.notify_all()
        if not self.ready.is_set():
            self.reached = name
            if event == "call" and name in SELECT_CALLS:
                self.oversleeps = _oversleeps(frame)
                if self.oversleeps is not None:
                    self.sleeps_for = float(frame.f_locals["timeout"])
            self.ready.set()
        if not self._count:
            sys.setprofile(None)


#: serve threads -> their LoopCounter (what stop_loop knows of a loop it stops)
_COUNTERS: weakref.WeakKeyDictionary[threading.Thread, LoopCounter] = weakref.WeakKeyDictionary()


def _inside_wait(frame: Any) -> bool:
    """Whether ``frame`` or one of its few callers is itself a wait call (the agent's function)."""
    return inside_wait(frame, WAIT_CALLS)


def _quiet_the_listener(server: Any) -> None:
    """Replace an abandoned loop's listening descriptor by one end of a
    socket pair whose other end stays open: the listener is closed (clients
    are refused) but the descriptor number stays valid and never readable,
    so the loop idles in its selector instead of spinning on a closed socket."""
    try:
        fd = server.socket.fileno()
    except (AttributeError, OSError, ValueError):
        return
    if fd < 0:
        return
    quiet, keep = socket.socketpair()
    try:
        os.dup2(quiet.fileno(), fd)
    except OSError:
        quiet.close()
        keep.close()
        return
    quiet.close()
    # slow-teardown: the abandoned loop keeps selecting on this descriptor number, so it must
    # never be released: the server gets a duplicate to close (a later server_close(), e.g. the
    # probes' of every server they opened), and the socket object that owns the number is kept
    # with the pair.  Released, the number went to the next socket opened -- another check's
    # listener, which the abandoned loop then served (hang_serve_forever: BIND-009 now and then
    # found its port taken, EADDRINUSE)
    owner = server.socket
    with contextlib.suppress(OSError, AttributeError):
        server.socket = socket.socket(fileno=os.dup(fd))
    _ABANDONED.append((server, keep))
    _ABANDONED.append((owner, keep))


#: abandoned servers and the open ends of their quiet pairs, kept alive for the
#: rest of the process (a collected socket would close the descriptor the loop watches)
_ABANDONED: List[Tuple[Any, socket.socket]] = []


@contextlib.contextmanager
def serve_in_thread(server: Any, poll_interval: Optional[float] = None, *,
                    check_leaks: bool = True, allow_forking: bool = False,
                    ready_budget: Optional[float] = None,
                    shutdown_budget: Optional[float] = None,
                    close_budget: Optional[float] = None,
                    unlink_unix_path: bool = True,
                    count_waits: bool = False) -> Iterator[ServedServer]:
    """Serve ``server`` in a daemon thread for the duration of the block.

    See the module docstring for readiness, teardown and the leak check.
    On exit raises :class:`HarnessTimeout` naming every teardown step that
    hung, :class:`~harness.core.prerequisites.PreconditionFailed` when the loop
    could not be stopped, the first other teardown exception, or
    :class:`LeakError`; if the block itself raised, that exception wins and
    teardown problems are only recorded in ``served.teardown``.
    ``count_waits``: ``served.loop`` counts the loop's waits (:class:`LoopCounter`).
    """
    if is_forking(server) and not allow_forking:
        raise ValueError(
            "a forking server must not share a process with its clients; "
            "use harness.processes.server_process.serve_in_process"
        )
    poll = timeouts.poll() if poll_interval is None else poll_interval
    ready_budget = timeouts.short() if ready_budget is None else ready_budget
    shutdown_budget = timeouts.short() if shutdown_budget is None else shutdown_budget
    close_budget = timeouts.medium() if close_budget is None else close_budget
    loop_key = prerequisites.function_key(server, "serve_forever")
    never_ready = LATCH.get("serve_forever_waits", loop_key)
    if never_ready is not None:
        raise PreconditionFailed("serve_forever_waits", never_ready)
    broken_loop = loop_known_broken(server)
    if broken_loop is not None:
        raise broken_loop

    threads_before = set(threading.enumerate())  # objects: idents are reused
    fds_before = open_fds() if check_leaks else None
    sockets_before = _socket_files() if check_leaks else {}

    probe = LoopCounter(count=count_waits)
    serve_result: Dict[str, Any] = {}

    def serve() -> None:
        try:
            probe.install()
            server.serve_forever(poll)
        except BaseException as exc:
            serve_result["error"] = exc
            note_loop_died(server, exc)
            if "tearing_down" not in serve_result:  # slow-serve: died while the check ran
                prerequisites.loop_died(exc, "serve_forever()")
        finally:
            sys.setprofile(None)
            serve_result["returned"] = True

    thread = threading.Thread(target=serve, name=f"ssc-serve:{type(server).__name__}", daemon=True)
    served = ServedServer(server=server, address=getattr(server, "server_address", None),
                          family=_family_of(server), thread=thread)
    thread.start()
    body_failed = False
    try:
        deadline = timeouts.Deadline(ready_budget, "serve_forever() to reach its selector")
        try:
            while not probe.ready.wait(min(0.05, max(deadline.remaining(), 0.001))):
                if not thread.is_alive():
                    error = serve_result.get("error")
                    if error is not None:
                        raise error
                    raise ServeError("serve_forever() returned before its loop waited for a request")
                if deadline.expired():
                    detail = (f"timed out after {ready_budget:.2f}s waiting for serve_forever() of "
                              f"{type(server).__name__} to reach a selector (it called none of "
                              f"{', '.join(sorted(WAIT_CALLS))})")
                    LATCH.set("serve_forever_waits", loop_key, detail)
                    raise PreconditionFailed("serve_forever_waits", detail, timed_out=True)
        finally:
            probe.stop()
        served.ready_by = f"{probe.reached}()"
        served.loop = probe
        yield served
    except BaseException:
        body_failed = True
        raise
    finally:
        serve_result["tearing_down"] = True
        _teardown(served, serve_result, shutdown_budget, close_budget, unlink_unix_path,
                  raise_problems=not body_failed)
    if check_leaks:
        _check_leaks(served, threads_before, fds_before, sockets_before)


def loop_known_broken(server: Any) -> Optional[PreconditionFailed]:
    """A :class:`PreconditionFailed` when ``serve_forever()`` of this implementation
    was found to die in an idle loop or after one request, the server's family is
    found broken, or its requests are found never to end
    (:mod:`harness.serving.prerequisite_probes`), else None.  ``server`` may be the
    class (a server that will run in another process, e.g. the forking lab)."""
    cls = server if isinstance(server, type) else type(server)
    found = LATCH.get("serve_forever_runs", prerequisites.function_key(cls, "serve_forever"))
    if found is not None:
        return PreconditionFailed("serve_forever_runs", found)
    return (prerequisites.family_needs(cls) or prerequisites.serving_needs(cls)
            or prerequisites.kind_serves(cls)  # prec-bind: a Unix kind found not to serve
            or prerequisites.handler_needs(getattr(server, "RequestHandlerClass", None)))  # prec-conc


def class_finding(impl: Any, class_name: str,
                  lookup: Callable[[type], Optional[PreconditionFailed]]) -> Optional[PreconditionFailed]:
    """coll-handler: ``lookup(the class)`` -- a probes' finding about the request path of
    ``class_name`` of ``impl``, e.g. :func:`harness.core.prerequisites.error_reporting` (a
    handler's Exception does not reach handle_error() with sys.exc_info() set) or
    :func:`~harness.core.prerequisites.handler_arguments` (the handler is given another server or
    client_address) -- else None, also for an implementation in a subject agent, which the probes
    do not reach.  A check whose verdict reads what that path gave raises it instead of failing
    for a path it does not own."""
    if getattr(impl, "subject", None) is not None:
        return None
    try:
        cls = server_class(impl.module, class_name)
    except Exception:  # noqa: BLE001  no such class here: nothing was found about it
        return None
    return lookup(cls)


def shutdown_target(fn: Any) -> Any:
    """The server whose bound ``shutdown`` method ``fn`` is, else None."""
    if getattr(fn, "__name__", "") == "shutdown":
        return getattr(fn, "__self__", None)
    return None


#: frames of the request path: a loop inside one is busy with a request, and a
#: shutdown() that waits for it is not (yet) what is broken
REQUEST_FRAMES = frozenset({"_handle_request_noblock", "handle_request", "get_request", "verify_request",
                            "process_request", "finish_request", "shutdown_request", "close_request"})


def loop_busy_in_request(server: Any) -> Optional[str]:
    """The request-path function a thread running ``server.serve_forever()`` is
    inside now (from ``sys._current_frames``, looked at, never called), else None.
    Green threads (gevent, eventlet) are not OS threads and are not seen."""
    frames: Dict[int, Any] = getattr(sys, "_current_frames", dict)()
    for frame in frames.values():
        chain = []
        while frame is not None:
            chain.append(frame)
            frame = frame.f_back
        loop = [f for f in chain if f.f_code.co_name == "serve_forever" and f.f_locals.get("self") is server]
        if not loop:
            continue
        inner = chain[:chain.index(loop[0])]
        busy = [f.f_code.co_name for f in inner if f.f_code.co_name in REQUEST_FRAMES]
        if busy:
            return busy[-1]
    return None


def shutdown_stuck(server: Any) -> Optional[str]:
    """What was seen when ``shutdown()`` of this implementation did not return
    in this run (None: never seen).  Never for a server living in a subject
    interpreter (``remote``): the host sees only its proxy, whose methods are the
    same code for every subject server, so a latch would refuse every later one."""
    if getattr(server, "remote", False):
        return None
    return LATCH.get("shutdown_returns", prerequisites.function_key(server, "shutdown", "serve_forever"))


def _weakrefable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


def loop_running(server: Any) -> Optional[bool]:
    """slow-serve: whether a thread runs ``server.serve_forever()`` now (its frames, looked at,
    never called); None where green threads (gevent, eventlet) may hide it."""
    if "gevent" in sys.modules or "eventlet" in sys.modules:
        return None
    frames: Dict[int, Any] = getattr(sys, "_current_frames", dict)()
    for frame in frames.values():
        for _ in range(200):  # bounded: a stack is finite
            if frame is None:
                break
            if frame.f_code.co_name == "serve_forever" and frame.f_locals.get("self") is server:
                return True
            frame = frame.f_back
    return False


#: slow-serve: servers whose serve_forever() ended with an exception (any BaseException) while a
#: check ran it: a shutdown() then stuck waits for a loop that died (SHUTDOWN-007's clause)
_DIED: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def note_loop_died(server: Any, error: BaseException) -> None:
    """Remember that ``server``'s loop ended with ``error`` (see :func:`note_shutdown_stuck`)."""
    with contextlib.suppress(TypeError):  # a server class without weak references
        _DIED[server] = f"{type(error).__name__}: {error}"


def note_shutdown_stuck(server: Any, budget: float, loop_ran: Optional[bool] = None) -> str:
    """Remember that ``server.shutdown()`` did not return within ``budget``; the
    detail.  Not when the loop is stuck inside a request: shutdown() rightly waits
    for it, and the hung request is what the check that sees it reports.  Not when no
    loop ran when shutdown() was called (``loop_ran`` False, slow-serve): it waits for a
    loop that had already died (SHUTDOWN-007's case: shutdown_waiters_stuck_on_exception
    latched it, and every later check that stops a healthy loop ended PRECONDITION_FAILED
    naming SHUTDOWN-001) or never ran (the documented deadlock)."""
    detail = f"timed out after {budget:.2f}s waiting for server.shutdown() of {type(server).__name__} to return"
    if getattr(server, "remote", False):
        return detail  # judged by the check that saw it, latched for nothing (see shutdown_stuck)
    if loop_ran is False:
        return f"{detail} (no serve_forever() ran when it was called)"
    died = _DIED.get(server) if _weakrefable(server) else None
    if died is not None:  # SHUTDOWN-007 judges waiters released by a loop that raised
        return f"{detail} (its serve_forever() had ended with {died})"
    busy = loop_busy_in_request(server)
    if busy is not None:
        return f"{detail} (serve_forever() is inside {busy}())"
    LATCH.set("shutdown_returns", prerequisites.function_key(server, "shutdown", "serve_forever"), detail)
    return shutdown_stuck(server) or detail


def _shutdown_unless_hung(server: Any, thread: threading.Thread, budget: float) -> None:
    """slow-hang: ``server.shutdown()`` bounded by ``budget`` (:func:`call_bounded`), given up
    with :class:`PreconditionFailed` as soon as the loop's ``thread`` is seen inside a function
    the probes found not to return (:meth:`harness.core.prerequisites.Guard.stuck_in`): such a
    loop never stops, and shutdown() would wait for it out its whole budget, then the join step
    out another (hang_handler: 10 s in every check whose loop met the hung handler twice)."""
    what = "server.shutdown()"

    def on_start(caller: threading.Thread) -> None:
        _wake_late_loop(server, thread, caller, budget)

    if not LATCH.hung_codes():  # nothing is known to hang: the plain bounded call
        call_bounded(server.shutdown, budget=budget, what=what, on_start=on_start)
        return
    outcome: Dict[str, BaseException] = {}

    def run() -> None:
        try:
            call_bounded(server.shutdown, budget=budget, what=what, on_start=on_start)
        except BaseException as exc:  # re-raised below
            outcome["error"] = exc

    waiter = threading.Thread(target=run, name=_BOUNDED_PREFIX + "shutdown() unless hung", daemon=True)
    waiter.start()
    deadline = timeouts.Deadline(budget + timeouts.short(), what)  # call_bounded ends first
    while waiter.is_alive() and not deadline.expired():
        hung = prerequisites.GUARD.stuck_in(thread.ident)
        if hung is not None:
            raise hung
        waiter.join(timeouts.poll())
    if waiter.is_alive():
        raise HarnessTimeout(what, budget)
    if "error" in outcome:
        raise outcome.pop("error")


def stop_loop(server: Any, thread: threading.Thread, record: Teardown, shutdown_budget: float) -> None:
    """Stop ``server``'s ``serve_forever`` running in ``thread``; see the module
    docstring.  Records into ``record``; raises :class:`PreconditionFailed`
    when the loop could not be stopped (at once when that was seen before)."""
    served = ServedServer(server=server, address=None, family="", thread=thread, teardown=record)
    key = prerequisites.function_key(server, "shutdown", "serve_forever")
    start = clock.now()
    stuck = LATCH.get("shutdown_returns", key)
    waited = 0.0  # how long the loop has had, since shutdown() was called, to end
    if stuck is None:
        try:
            _shutdown_unless_hung(server, thread, shutdown_budget)
        except PreconditionFailed as hung:  # slow-hang: see _shutdown_unless_hung
            record.hung.append(f"serve_forever() (not stopped: {hung.detail})")
            record.shutdown = round(clock.now() - start, 6)
            raise
        except HarnessTimeout as exc:
            record.hung.append(f"{exc.what} (after {exc.budget:.2f}s)")
            record.hung_budget = exc.budget
            if loop_busy_in_request(server) is not None:
                record.shutdown = round(clock.now() - start, 6)
                return  # a hung request: the join step times out, as the check's TIMEOUT
            stuck = note_shutdown_stuck(server, exc.budget)
            waited = exc.budget
    else:
        # known not to return: started in an abandoned daemon thread, not waited for
        threading.Thread(target=_quietly(server.shutdown), name=_BOUNDED_PREFIX + "server.shutdown()",
                         daemon=True).start()
        record.hung.append(f"server.shutdown() (not waited for: {stuck})")
    record.shutdown = round(clock.now() - start, 6)
    if stuck is None:
        return  # it returned: the join step judges the loop
    unstoppable = LATCH.get("loop_stops", key)
    by_flag = LATCH.get("loop_stops_by_flag", key)
    # the loop gets one budget to end after shutdown(), then one after the flag;
    # a loop known to need the flag goes straight to it, and one known not to
    # end gets no wait at all (the outcome is decided by the latch)
    served.thread.join(0 if unstoppable or by_flag else max(shutdown_budget - waited, 0))
    if served.thread.is_alive() and hasattr(server, "_BaseServer__shutdown_request"):
        record.stopped_by = "the stdlib's private shutdown flag"
        server._BaseServer__shutdown_request = True
        _join_unless_ignored(served.thread, 0 if unstoppable else shutdown_budget)
        if not served.thread.is_alive():
            LATCH.set("loop_stops_by_flag", key, "shutdown() did not stop the loop; its flag did")
    if not served.thread.is_alive() and not unstoppable:
        record.stopped_by = record.stopped_by or "shutdown() (which then did not return)"
        return
    record.stopped_by = "nothing: the serve thread was abandoned" if served.thread.is_alive() else record.stopped_by
    if served.thread.is_alive():
        _quiet_the_listener(server)
    detail = unstoppable or (f"serve_forever() of {type(server).__name__} still ran after shutdown() "
                             f"and its shutdown flag ({stuck})")
    record.hung.append(detail)
    LATCH.set("loop_stops", key, detail)
    raise PreconditionFailed("loop_stops", detail, timed_out=True)


def _select_frame(loop: threading.Thread) -> Any:
    """slow-teardown: the frame of the selector wait (:data:`SELECT_CALLS`) that the serve
    ``loop`` is inside now, called from its ``serve_forever``, else None; read from its stack
    (looked at, never called)."""
    frames: Dict[Any, Any] = getattr(sys, "_current_frames", dict)()
    frame = frames.get(loop.ident) if loop.ident is not None else None
    wait = None
    for _ in range(200):  # bounded: from the innermost frame out to serve_forever
        if frame is None:
            return None
        name = frame.f_code.co_name
        if name == "serve_forever":
            return wait
        if name in SELECT_CALLS:
            wait = frame
        frame = frame.f_back
    return None


def _join_unless_ignored(loop: threading.Thread, budget: float) -> None:
    """slow-teardown: join the serve ``loop`` for at most ``budget`` after its shutdown flag was
    set, but stop waiting once it is seen to begin two selector waits of its ``serve_forever``
    after the one it was in (each a new call: the frames seen are held, so none is reused): a
    loop that looks at the flag leaves at its next check, which comes before the second of
    them (the first may have begun before the flag was set).  Only on that evidence; a loop
    whose waits cannot be seen (no Python frame for them, green threads) gets the whole
    budget, as before (hang_serve_forever: 5 s per loop that ignores the flag)."""
    deadline = timeouts.Deadline(budget, "the serve_forever() thread to see its shutdown flag")
    seen: List[Any] = []
    for _ in range(100_000):  # bounded also in count: each turn waits poll()
        if not loop.is_alive() or deadline.expired():
            return
        frame = _select_frame(loop)
        if frame is not None and all(frame is not other for other in seen):
            seen.append(frame)
            if len(seen) > 2:
                return
        loop.join(min(timeouts.poll(), max(deadline.remaining(), 0)))


def _oversleeps(frame: Any) -> Optional[str]:
    """At the call of a selector's ``select(timeout)`` (``frame``, before its body runs):
    what shows that the loop sleeps past its own ``poll_interval``, else None, from the
    arguments of that call and of ``serve_forever(poll_interval)`` up the stack."""
    timeout = frame.f_locals.get("timeout")
    caller = frame.f_back
    for _ in range(8):  # the loop calls its selector directly, or through a helper or two
        if caller is None or not isinstance(timeout, (int, float)):
            return None
        if caller.f_code.co_name == "serve_forever":
            poll = caller.f_locals.get("poll_interval")
            if isinstance(poll, (int, float)) and timeout > poll:
                return f"select(timeout={timeout!r}) in serve_forever(poll_interval={poll!r})"
            return None
        caller = caller.f_back
    return None


def _waiting(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside a ``wait`` call now (looked at, never called)."""
    frames: Dict[Any, Any] = getattr(sys, "_current_frames", dict)()
    frame = frames.get(thread.ident)
    for _ in range(200):  # bounded
        if frame is None:
            return False
        if frame.f_code.co_name == "wait":
            return True
        frame = frame.f_back
    return False


def _wake_late_loop(server: Any, loop: threading.Thread, caller: threading.Thread, budget: float) -> None:
    """Once ``shutdown()`` (in ``caller``) waits for a loop that sleeps past its own
    ``poll_interval`` (its :class:`LoopCounter` saw the first ``select(timeout)`` ask
    for more than ``serve_forever``'s ``poll_interval``), wake that loop with one empty
    client, as SERVE-013 wakes ``serve_forever(None)``: its next check of the shutdown
    request comes at once, not a whole oversized timeout later.  Only on that
    evidence: a loop that keeps its ``poll_interval`` is never poked, so no check of a
    healthy implementation sees the client.  A daemon thread, bounded by ``budget``."""

    def watch() -> None:
        deadline = timeouts.Deadline(budget, "shutdown() to wait for an oversleeping loop")
        while caller.is_alive() and not deadline.expired():
            counter = _COUNTERS.get(loop)
            if (counter is not None and counter.oversleeps and _waiting(caller)
                    and loop_busy_in_request(server) is None):
                _poke(server)
                return
            caller.join(timeouts.poll() * 5)

    threading.Thread(target=watch, name=_BOUNDED_PREFIX + "wake a late loop", daemon=True).start()


def _poke(server: Any) -> None:
    """One empty client of ``server``: a connection closed at once, or an empty datagram."""
    with contextlib.suppress(Exception):
        with socket.socket(server.address_family, server.socket_type) as client:
            client.settimeout(timeouts.short())
            if server.socket_type == socket.SOCK_STREAM:
                client.connect(server.server_address)
            else:
                client.sendto(b"", server.server_address)


def _quietly(fn: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(BaseException):
            fn()
    return run


def _teardown(served: ServedServer, serve_result: Dict[str, Any], shutdown_budget: float,
              close_budget: float, unlink_unix_path: bool, raise_problems: bool) -> None:
    server, record = served.server, served.teardown
    first_error: Optional[BaseException] = None
    budgets: List[float] = []

    def step(name: str, fn: Callable[[], Any], budget: float) -> None:
        nonlocal first_error
        start = clock.now()
        try:
            fn()
        except HarnessTimeout as exc:
            record.hung.append(f"{exc.what} (after {exc.budget:.2f}s)")
            budgets.append(exc.budget)
        except BaseException as exc:
            record.errors.append(f"{name}: {exc!r}")
            if first_error is None:
                first_error = exc
        finally:
            setattr(record, name, round(clock.now() - start, 6))

    precondition: Optional[PreconditionFailed] = None
    if served.thread.is_alive():
        try:
            stop_loop(server, served.thread, record, shutdown_budget)
        except PreconditionFailed as exc:
            precondition = exc
        except BaseException as exc:
            record.errors.append(f"shutdown: {exc!r}")
            first_error = exc
    else:
        record.shutdown = 0.0
    if precondition is None or not served.thread.is_alive():  # an abandoned loop keeps its listener
        step("join", lambda: timeouts.join_thread(served.thread, shutdown_budget,
                                                   "the serve_forever() thread to exit"), shutdown_budget)
        known = prerequisites.GUARD.known_hung(server.server_close)
        if known is None:
            step("server_close", lambda: call_bounded(server.server_close, budget=close_budget,
                                                      what="server.server_close()"), close_budget)
        else:
            # BIND-015 owns it (harness.serving.prerequisite_probes); the check's own verdict stands
            record.hung.append(f"server.server_close() (not called: {known.detail})")
            with contextlib.suppress(Exception):
                server.socket.close()
    if "error" in serve_result:
        served.serve_error = serve_result["error"]
        record.errors.append(f"serve_forever raised {serve_result['error']!r}")
        if first_error is None:
            first_error = serve_result["error"]
    path = served.address if isinstance(served.address, str) else None
    if path and unlink_unix_path:
        record.unix_path_left = os.path.exists(path)
        if record.unix_path_left:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    if budgets:
        record.hung_budget = max(budgets)
    if isinstance(first_error, KeyboardInterrupt):
        raise first_error  # an interrupt (Ctrl-C, the CLI's SIGINT) outranks any teardown problem
    if not raise_problems:
        return
    if precondition is not None:
        raise precondition
    if record.hung and budgets:
        raise HarnessTimeout("server teardown: " + "; ".join(record.hung) + " did not finish",
                             max(budgets))
    if first_error is not None:
        raise first_error


def _check_leaks(served: ServedServer, threads_before: set,
                 fds_before: Optional[Dict[int, str]], sockets_before: Dict[str, float]) -> None:
    record = served.teardown
    leaks: Dict[str, List[str]] = {}
    ignore = threads_before | {served.thread, threading.current_thread()}
    try:
        timeouts.wait_until(lambda: not _threads_alive(ignore), timeouts.short(),
                            "threads started while serving to finish")
    except HarnessTimeout:
        leaks["threads"] = [f"{t.name} (daemon={t.daemon})" for t in _threads_alive(ignore)]
    if fds_before is not None:
        after, new = _new_fds(fds_before)
        if new:
            leaks["fds"] = [f"{fd} -> {after[fd]}" for fd in new]
        record.leak_check = "threads, fds, unix socket files"
    else:
        record.leak_check = "threads, unix socket files (fd count unavailable)"
    stray = sorted(set(_socket_files()) - set(sockets_before))
    if stray:
        leaks["unix socket files"] = stray
    record.leaks = leaks
    if leaks:
        lines = [f"{kind}: {', '.join(items)}" for kind, items in leaks.items()]
        owned = leak_owner(leaks, "; ".join(lines), type(served.server))
        if owned is not None:
            raise owned
        raise LeakError(f"{type(served.server).__name__} leaked after teardown: " + "; ".join(lines),
                        leaks)


def _new_fds(fds_before: Dict[int, str]) -> Tuple[Dict[int, str], List[int]]:
    """The descriptor table now, and the descriptors new since ``fds_before``: a number free
    before, or one that now points elsewhere (a socket's target names its inode:
    "socket:[1234]").  When there are any, they are counted again after a ``gc.collect()``: a
    socket only unreachable garbage holds (a reference cycle through a handler whose files
    were never closed, e.g. a finish() skipped after handle() raised, HANDLER-002's) is
    closed by the collector and is no leak of the server; every check that met such a
    handler failed its leak check for a defect it does not own (handler_no_finally: 16
    collateral).  Only then: a full collection per teardown would cost every check."""
    after = open_fds() or {}
    new = sorted(fd for fd, target in after.items() if fds_before.get(fd) != target)
    if new:
        gc.collect()
        after = open_fds() or {}
        new = sorted(fd for fd, target in after.items() if fds_before.get(fd) != target)
    return after, new


def leak_owner(leaks: Dict[str, Any], detail: str,
               server_cls: Optional[type] = None) -> Optional[PreconditionFailed]:
    """Who owns descriptors left open after a teardown, when it is not the check: requests the
    probes found never to end (``request_ends``, PIPELINE-002) stay open, a server_close()
    the probes found to leave descriptors (``close_releases``, SHUTDOWN-008) leaves them, and a
    constructor that failed keeps its socket (``failed_construction_closes``, BIND-014; coll-bind:
    a check that made one fail on purpose); each is PRECONDITION_FAILED naming its owner.  None:
    the leak is the check's own finding."""
    if set(leaks) - {"fds"}:
        return None
    never_ends = prerequisites.serving_needs(server_cls, ("request_ends",)) if server_cls else None
    if never_ends is not None:
        return never_ends
    for behaviour in ("close_releases", "failed_construction_closes"):  # coll-bind: the second
        found = LATCH.first_of(behaviour)
        if found is not None:
            return PreconditionFailed(behaviour, f"{detail} ({found})")
    return None


def describe_server(server: Any) -> Dict[str, Any]:
    """Facts about a server instance for observations."""
    cls = type(server)
    return {
        "class": cls.__name__,
        "mro": [k.__name__ for k in cls.__mro__],
        "family": _family_of(server),
        "address": getattr(server, "server_address", None),
        "python": sys.version.split()[0],
    }


__all__: Tuple[str, ...] = (
    "LeakError", "ServeError", "ServedServer", "Teardown", "UnsupportedFeature",
    "build_server", "call_bounded", "describe_server", "is_forking", "open_fds",
    "note_shutdown_stuck", "loop_running", "run_handle_request", "serve_in_thread", "server_class", "shutdown_stuck",
    "shutdown_target",
    "stop_loop", "LoopCounter", "loop_known_broken", "class_finding", "listener_closed",
)
