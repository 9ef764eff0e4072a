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
yields only once the loop *is running*: it wraps the instance's
``service_actions`` (called by ``serve_forever`` on every loop iteration
since 3.3) to set an event on the first call, calling through to the
original (``ForkingMixIn`` reaps children there).  A server without
``service_actions`` is considered ready when its thread has started.

Teardown is ``shutdown()`` (bounded by ``short()``), join of the serve
thread (``short()``), ``server_close()`` (``medium()``: it may join handler
threads or wait for children), each timed into :class:`Teardown`.  Then a
leak check compares with the state before the block: threads started in
the block still alive after a bounded wait, more open descriptors than
before (``/proc/self/fd`` or ``/dev/fd``; skipped where neither exists),
and AF_UNIX socket files left in live :func:`~harness.addresses.private_dir`
directories.  The server's own socket file is removed first and counted
(``Teardown.unix_path_left``): ``server_close()`` does not unlink it by
design, so that is not a leak.  Leaks raise :class:`LeakError`.

A forking server never runs in a process with clients (its children would
inherit the client sockets): :func:`serve_in_thread` refuses one unless
``allow_forking=True``, which only :mod:`harness.server_process` passes.

:func:`build_server` makes a subclass of the implementation's class with
class-attribute overrides, composing ``Forking*``/``Threading*`` classes
from their mixin and base the way the stdlib does when the module lacks
the combination (``ForkingUnixStreamServer`` before 3.12).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from harness import addresses, timeouts
from harness.addresses import UnsupportedFeature
from harness.capabilities import caps
from harness.timeouts import HarnessTimeout


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
                 what: Optional[str] = None, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` in a daemon thread; return its result or
    re-raise its exception (any ``BaseException``); :class:`HarnessTimeout`
    if it is still running after ``budget`` (default ``short()``), in which
    case the thread is left behind as a daemon."""
    budget = timeouts.short() if budget is None else budget
    what = what or str(getattr(fn, "__qualname__", repr(fn)))
    outcome: Dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=_BOUNDED_PREFIX + what[:60], daemon=True)
    thread.start()
    timeouts.join_thread(thread, budget, what)
    if "error" in outcome:
        error = outcome.pop("error")
        try:
            raise error
        finally:
            del error
    return outcome.get("value")


def run_handle_request(server: Any, budget: Optional[float] = None) -> Any:
    """``server.handle_request()`` bounded by ``budget`` (default ``short()``)."""
    return call_bounded(server.handle_request, budget=budget, what="server.handle_request()")


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
            raise AttributeError(
                f"{getattr(module, '__name__', module)} has no {class_name} and cannot compose it: "
                f"missing {', '.join(missing)}"
            )
    raise AttributeError(f"{getattr(module, '__name__', module)} has no server class {class_name!r}")


def build_server(module: Any, class_name: str, handler: type, address: Any, *,
                 bind_and_activate: bool = True, **attrs: Any) -> Any:
    """An instance of a subclass of ``module.<class_name>`` whose class
    attributes ``attrs`` override the implementation's (``daemon_threads``,
    ``block_on_close``, ``max_children``, ``allow_reuse_address``,
    ``timeout``...).  An IPv6 address sets ``address_family = AF_INET6``
    unless ``attrs`` says otherwise."""
    base = server_class(module, class_name)
    namespace = dict(attrs)
    if "address_family" not in namespace and isinstance(address, tuple) and ":" in str(address[0]):
        namespace["address_family"] = socket.AF_INET6  # an IPv6 address on TCPServer/UDPServer
    namespace.setdefault("__module__", __name__)
    cls = type(f"Harness{class_name}", (base,), namespace)
    return cls(address, handler, bind_and_activate)


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
    ready_by: str = "service_actions"
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


@contextlib.contextmanager
def serve_in_thread(server: Any, poll_interval: Optional[float] = None, *,
                    check_leaks: bool = True, allow_forking: bool = False,
                    ready_budget: Optional[float] = None,
                    shutdown_budget: Optional[float] = None,
                    close_budget: Optional[float] = None,
                    unlink_unix_path: bool = True) -> Iterator[ServedServer]:
    """Serve ``server`` in a daemon thread for the duration of the block.

    See the module docstring for readiness, teardown and the leak check.
    On exit raises :class:`HarnessTimeout` naming every teardown step that
    hung, the first other teardown exception, or :class:`LeakError`; if the
    block itself raised, that exception wins and teardown problems are only
    recorded in ``served.teardown``.
    """
    if is_forking(server) and not allow_forking:
        raise ValueError(
            "a forking server must not share a process with its clients; "
            "use harness.server_process.serve_in_process"
        )
    poll = timeouts.poll() if poll_interval is None else poll_interval
    ready_budget = timeouts.short() if ready_budget is None else ready_budget
    shutdown_budget = timeouts.short() if shutdown_budget is None else shutdown_budget
    close_budget = timeouts.medium() if close_budget is None else close_budget

    threads_before = set(threading.enumerate())  # objects: idents are reused
    fds_before = open_fds() if check_leaks else None
    sockets_before = _socket_files() if check_leaks else {}

    ready = threading.Event()
    had_instance_attr = "service_actions" in vars(server)
    original = getattr(server, "service_actions", None)
    ready_by = "service_actions" if callable(original) else "thread start"
    if callable(original):
        def service_actions(*args: Any, **kwargs: Any) -> Any:
            ready.set()
            return original(*args, **kwargs)

        server.service_actions = service_actions

    serve_result: Dict[str, Any] = {}

    def serve() -> None:
        if not callable(original):
            ready.set()
        try:
            server.serve_forever(poll)
        except BaseException as exc:
            serve_result["error"] = exc
        finally:
            serve_result["returned"] = True

    thread = threading.Thread(target=serve, name=f"ssc-serve:{type(server).__name__}", daemon=True)
    served = ServedServer(server=server, address=getattr(server, "server_address", None),
                          family=_family_of(server), thread=thread, ready_by=ready_by)
    thread.start()
    body_failed = False
    try:
        deadline = timeouts.Deadline(ready_budget, "serve_forever() to start its loop")
        while not ready.wait(min(0.05, max(deadline.remaining(), 0.001))):
            if not thread.is_alive():
                error = serve_result.get("error")
                if error is not None:
                    raise error
                raise ServeError("serve_forever() returned before its loop ran service_actions()")
            deadline.check()
        yield served
    except BaseException:
        body_failed = True
        raise
    finally:
        _teardown(served, serve_result, shutdown_budget, close_budget, unlink_unix_path,
                  raise_problems=not body_failed)
        if callable(original):
            if had_instance_attr:
                server.service_actions = original
            else:
                with contextlib.suppress(AttributeError):
                    del server.service_actions
    if check_leaks:
        _check_leaks(served, threads_before, fds_before, sockets_before)


def _teardown(served: ServedServer, serve_result: Dict[str, Any], shutdown_budget: float,
              close_budget: float, unlink_unix_path: bool, raise_problems: bool) -> None:
    server, record = served.server, served.teardown
    first_error: Optional[BaseException] = None
    budgets: List[float] = []

    def step(name: str, fn: Callable[[], Any], budget: float) -> None:
        nonlocal first_error
        start = time.monotonic()
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
            setattr(record, name, round(time.monotonic() - start, 6))

    if served.thread.is_alive():
        step("shutdown", lambda: call_bounded(server.shutdown, budget=shutdown_budget,
                                              what="server.shutdown()"), shutdown_budget)
    else:
        record.shutdown = 0.0
    step("join", lambda: timeouts.join_thread(served.thread, shutdown_budget,
                                               "the serve_forever() thread to exit"), shutdown_budget)
    step("server_close", lambda: call_bounded(server.server_close, budget=close_budget,
                                              what="server.server_close()"), close_budget)
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
    if record.hung:
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
        after = open_fds() or {}
        # a descriptor is new if its number was free before or now points
        # elsewhere (a socket's target names its inode: "socket:[1234]")
        new = sorted(fd for fd, target in after.items() if fds_before.get(fd) != target)
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
        raise LeakError(f"{type(served.server).__name__} leaked after teardown: " + "; ".join(lines),
                        leaks)


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
    "run_handle_request", "serve_in_thread", "server_class",
)
