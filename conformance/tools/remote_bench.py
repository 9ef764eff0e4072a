"""Bench servers: one server a check drives itself, in this process or in the subject.

Theory of operation
-------------------
The SERVE, SHUTDOWN and THREADING checks call a server's methods themselves
(``handle_request()`` with a timeout, ``serve_forever()`` twice,
``shutdown()`` before the loop ...) and judge from what its hooks recorded
into a :class:`~conformance.tools.recorder.Recorder`.  :func:`bench_server`
builds that server from a declarative spec -- server class, recorded hooks,
a handler *action* of :data:`conformance.tools.handlers.ACTIONS`, class
attributes, a socket timeout, ``get_request`` failures -- so that one check
body runs two ways:

* in-process (``--impl X``): the spec becomes the same subclass and
  :func:`~conformance.tools.handlers.recording_handler` the checks built
  before, recording into a plain :class:`Recorder`; nothing changes;
* through the subject agent (``--subject-python EXE``): the agent builds
  the server (``bench_build``, ``harness/subject/agent.py``), its hooks
  write named ``record`` events to an event log with the subject's clock
  and thread, read here by a :class:`LogRecorder` (the Recorder's
  interface; ``add`` appends an event the subject's handler can see, such
  as ``release``), and the check holds a :class:`RemoteServer`: its
  ``handle_request``/``serve_forever``/``shutdown``/``server_close`` each
  start the method in a thread of the agent (``bench_start``) and block
  this caller until it ended (``bench_wait`` in slices of at most
  :data:`SLICE`, so other threads of the check get the agent in between).
  :class:`~conformance.tools.running.Background`, ``LoopThread`` and
  ``call_bounded`` run those blocking calls in threads of their own exactly
  as they run the real ones.  ``serve_forever``'s iterations are counted by
  the agent (:class:`RemoteCounter`, the shape of
  :class:`harness.serving.servers.LoopCounter`).

Every agent request goes through one lock per session (the agent answers
one request at a time), and every wait is bounded.
"""

from __future__ import annotations

import builtins
import shutil
import tempfile
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional

from harness.core import timeouts
from harness.core.timeouts import HarnessTimeout
from harness.serving.instrument import EventLog

from .handlers import recording_handler
from .recorder import Recorder

#: The value a ``handle_timeout`` hook with the action ``"sentinel"`` returns (SERVE-002).
SENTINEL = object()
#: The longest single ``bench_wait`` (seconds): how long another thread may wait for the agent.
SLICE = 0.05
_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def subject_of(impl: Any) -> Any:
    """The subject session of ``impl`` (None: the implementation is in this process)."""
    return getattr(impl, "subject", None)


def _request(session: Any, op: str, budget: Optional[float] = None, **fields: Any) -> Any:
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(session, threading.Lock())
    with lock:
        return session.request(op, budget=budget, **fields)


# --------------------------------------------------------------------------- recorders


class LogRecorder(Recorder):
    """A :class:`Recorder` read from the ``record`` events of an event log (``first``,
    ``before``, ``wait_count`` are the Recorder's, over these)."""

    def __init__(self, session: Any = None) -> None:
        super().__init__()
        #: the subject session whose agent writes what :meth:`add` records (its clock)
        self.session = session
        self.directory = tempfile.mkdtemp(prefix="ssc-bench-")
        self.log = EventLog.create(self.directory)
        weakref.finalize(self, shutil.rmtree, self.directory, True)

    def _events(self) -> List[Dict[str, Any]]:
        found = []
        for event in self.log.read():
            if event.get("kind") == "record":
                info = dict(event)
                info["thread"] = event.get("tid")
                found.append((event["name"], info))
        return found

    def add(self, name: str, **info: Any) -> None:
        """Record ``name``: written by the agent, so every event of the log is on the
        subject's clock (Python 2's is ``time.time``, not this process's)."""
        if self.session is None:
            self.log.append(kind="record", name=name, **info)
            return
        _request(self.session, "bench_record", budget=timeouts.short(), log=self.log.path, name=name, info=info)

    @property  # type: ignore[override]
    def events(self) -> List[Any]:  # the Recorder's attribute: (name, info) in order
        return self._events()

    @events.setter
    def events(self, value: Any) -> None:  # Recorder.__init__ sets it; the log is the truth here
        return None

    def count(self, name: str) -> int:
        return sum(1 for event, _ in self._events() if event == name)

    def names(self, *only: str) -> List[str]:
        return [name for name, _ in self._events() if not only or name in only]

    def infos(self, name: str) -> List[Dict[str, Any]]:
        return [info for event, info in self._events() if event == name]

    def reached(self, predicate: Callable[[Any], Any], budget: float) -> bool:
        try:
            timeouts.wait_until(lambda: predicate(self), budget, "the recorder's predicate",
                                interval=timeouts.poll())
        except HarnessTimeout:
            return False
        return True

    def wait(self, predicate: Callable[[Any], Any], budget: float, what: str) -> None:
        if not self.reached(predicate, budget):
            raise HarnessTimeout(what, budget)


def handler_threads(recorder: Any, collect: bool = False) -> Dict[str, int]:
    """The threads ``reads_replies`` handlers ran in: ``count``, ``alive``, and ``retained``
    (still referenced by anyone, after a ``gc.collect()`` when ``collect``), in-process from
    the weak references they recorded, remotely counted by the agent."""
    session = getattr(recorder, "session", None)
    if session is not None:
        return _request(session, "bench_threads", budget=timeouts.short(), log=recorder.log.path, collect=collect)
    if collect:
        import gc

        gc.collect()
    threads = [info["ref"]() for info in recorder.infos("handler_thread")]
    return {"count": len(threads), "alive": sum(1 for t in threads if t is not None and t.is_alive()),
            "retained": sum(1 for t in threads if t is not None)}


def recorder_for(impl: Any) -> Any:
    """The recorder a bench server of ``impl`` records into."""
    session = subject_of(impl)
    return LogRecorder(session) if session is not None else Recorder()


# --------------------------------------------------------------------------- remote calls


class RemoteError(Exception):
    """An exception of the subject with no builtin class of that name here."""


def _exception(described: Dict[str, Any], class_name: Optional[str], mro: Optional[List[str]] = None) -> BaseException:
    """The subject's exception as one of this interpreter's: its first class (in its MRO)
    with a builtin of that name here (Python 2's ``socket.error`` is an ``IOError``, so an
    ``OSError``); else :class:`RemoteError`."""
    message = described.get("exc") or class_name or "error"
    cls = None
    for name in [class_name or ""] + list(mro or []):
        found = getattr(builtins, name, None)
        if isinstance(found, type) and issubclass(found, BaseException) and found is not BaseException:
            cls = found
            break
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            exc = cls(message)
        except Exception:
            exc = RemoteError(message)
    else:
        exc = RemoteError(f"{class_name}: {message}")
    if cls is not None and cls.__name__ != class_name and not isinstance(exc, RemoteError):
        exc.subject_class = class_name  # type: ignore[attr-defined]
    if described.get("errno") is not None and isinstance(exc, OSError):
        exc.errno = described["errno"]
    return exc


class RemoteCounter:
    """``serve_forever``'s selector waits, counted by the agent (LoopCounter's shape)."""

    def __init__(self) -> None:
        self.server: Optional[RemoteServer] = None
        self.call: Optional[str] = None
        self.started = threading.Event()
        self.ready = threading.Event()

    def bind(self, server: RemoteServer, call: str) -> None:
        self.server, self.call = server, call
        self.started.set()

    @property
    def waits(self) -> int:
        if self.call is None:
            return 0
        return int(self.server._wait(self.call, {}, 0)["waits"])

    def wait_waits(self, count: int, budget: Optional[float] = None) -> None:
        budget = timeouts.short() if budget is None else budget
        deadline = timeouts.Deadline(budget, f"serve_forever() to begin {count} waits in its selector")
        self.started.wait(budget)
        state = {"waits": 0}
        for _ in range(100_000):
            if self.call is not None:
                state = self.server._wait(self.call, {"waits": count}, min(SLICE, max(deadline.remaining(), 0)))
                if state["waits"] >= count:
                    return
            if deadline.expired():
                break
        raise HarnessTimeout(f"serve_forever() to begin {count} waits in its selector "
                             f"(it began {state['waits']})", budget)

    def thread_ident(self) -> Optional[int]:
        """The ident of the agent's thread running the call."""
        if not self.started.wait(timeouts.short()) or self.call is None:
            return None
        return self.server._wait(self.call, {}, 0)["thread"]["ident"]


class _RemoteSocket:
    def __init__(self, server: RemoteServer):
        self._server = server

    def close(self) -> None:
        """Drop the server in the agent (its server_close(), bounded)."""
        _request(self._server.session, "bench_forget", budget=timeouts.medium(), server=self._server.key)

    def fileno(self) -> int:
        found = _request(self._server.session, "bench_fileno", budget=timeouts.short(), server=self._server.key)
        if found.get("error") is not None:
            raise _exception(found["error"], found.get("error_class"), found.get("error_mro"))
        return int(found["fileno"])


class RemoteServer:
    """A bench server in the subject (see the module docstring)."""

    remote = True

    def __init__(self, session: Any, key: str, address: Any, log: EventLog):
        self.session = session
        self.key = key
        self.server_address = tuple(address) if isinstance(address, list) else address
        self.log = log
        self.socket = _RemoteSocket(self)
        self.last_call: Dict[str, Any] = {}
        #: the agent's call id of each method now running (the last one started)
        self.current: Dict[str, str] = {}

    def _wait(self, call: str, until: Dict[str, Any], budget: float) -> Dict[str, Any]:
        return _request(self.session, "bench_wait", budget=budget + timeouts.short(), call=call, until=until,
                        wait=budget)

    def _run(self, method: str, *args: Any, counter: Optional[RemoteCounter] = None) -> Any:
        call = _request(self.session, "bench_start", budget=timeouts.short(), server=self.key, method=method,
                        args=list(args))["call"]
        self.current[method] = call
        if counter is not None:
            counter.bind(self, call)
        # blocks like the real call; the callers bound it (call_bounded, Background ...),
        # and this loop is bounded too, so an abandoned caller thread ends
        deadline = timeouts.Deadline(4 * timeouts.long(), f"{method}() in the subject")
        state: Dict[str, Any] = {}
        for _ in range(1_000_000):
            state = self._wait(call, {"done": True}, SLICE)
            if state["done"] or deadline.expired():
                break
        self.last_call[method] = state
        if not state.get("done"):
            raise HarnessTimeout(f"{method}() in the subject", 4 * timeouts.long())
        if state.get("error") is not None:
            raise _exception(state["error"], state.get("error_class"), state.get("error_mro"))
        if state.get("sentinel"):
            return SENTINEL
        return state.get("value")

    def handle_request(self) -> Any:
        return self._run("handle_request")

    def serve_forever(self, poll_interval: float = 0.5, counter: Optional[RemoteCounter] = None) -> Any:
        return self._run("serve_forever", poll_interval, counter=counter)

    def shutdown(self) -> Any:
        return self._run("shutdown")

    def server_close(self) -> Any:
        return self._run("server_close")

    def fileno(self) -> int:
        return self.socket.fileno()

    def __enter__(self) -> Any:
        value = self._run("__enter__")
        return self if self.last_call["__enter__"].get("is_server") else value

    def __exit__(self, *exc_info: Any) -> Any:
        # the agent's __exit__ gets an exception of its own (JSON carries no exception)
        return self._run("__exit__")


def has_attribute(server: Any, name: str) -> bool:
    """``hasattr(server, name)``, asked of the subject for a remote server."""
    if is_remote(server):
        return bool(_request(server.session, "bench_hasattr", budget=timeouts.short(), server=server.key,
                             name=name)["has"])
    return hasattr(server, name)


def is_remote(server: Any) -> bool:
    return isinstance(server, RemoteServer)


# --------------------------------------------------------------------------- building


def bench_server(impl: Any, recorder: Any, action: str = "returns", *, class_name: str = "TCPServer",
                 hooks: Dict[str, str], socket_timeout: Optional[float] = None,
                 fail_accept: Optional[Dict[str, Any]] = None, action_options: Optional[Dict[str, Any]] = None,
                 harness_build: bool = False, **attrs: Any) -> Any:
    """A ``class_name`` server of ``impl`` on 127.0.0.1 whose ``hooks`` (``{hook: "record"
    | "sentinel"}``) record their calls into ``recorder`` (``"sentinel"``: ``handle_timeout``
    returns :data:`SENTINEL`), with a :func:`recording_handler` doing ``action``,
    ``attrs`` as class attributes; ``fail_accept`` (``{errno, count, accept_first}``)
    makes ``get_request`` fail first, recording ``accept_failed`` (see
    :func:`conformance.tools.handlers.failing_accept_server`).  ``harness_build``: in-process,
    built by :func:`harness.serving.servers.build_server` (its precondition findings apply)."""
    session = subject_of(impl)
    if session is None:
        return _local_server(impl.module, recorder, action, class_name, hooks, socket_timeout, fail_accept,
                             action_options or {}, attrs, harness_build)
    options = dict(action_options or {})
    if "reply" in options:
        options["reply"] = options["reply"].decode("utf-8")
    if "exc" in options:
        exc = options["exc"]
        options["exc"] = exc.__name__ if isinstance(exc, type) else type(exc).__name__
    spec = {"server_class": class_name, "family": "inet", "attrs": attrs, "hooks": hooks, "action": action,
            "action_options": options, "socket_timeout": socket_timeout, "fail_accept": fail_accept,
            "log": recorder.log.path, "directory": recorder.directory}
    built = _request(session, "bench_build", budget=timeouts.long(), spec=spec)
    return RemoteServer(session, built["server"], built["address"], recorder.log)


def _local_server(module: Any, recorder: Recorder, action: str, class_name: str, hooks: Dict[str, str],
                  socket_timeout: Optional[float], fail_accept: Optional[Dict[str, Any]],
                  action_options: Dict[str, Any], attrs: Dict[str, Any], harness_build: bool = False) -> Any:
    from harness.serving.servers import build_server, server_class

    base = server_class(module, class_name)
    namespace: Dict[str, Any] = {}
    for hook, kind in hooks.items():
        namespace[hook] = _local_hook(base, hook, kind, recorder)
    if fail_accept:  # extport: a recorded get_request stays recorded when it does not fail
        namespace["get_request"] = _failing_get_request(base, recorder, fail_accept, namespace.get("get_request"))
    namespace.update(attrs)
    handler = recording_handler(module, recorder, action, **action_options)
    if harness_build:
        server = build_server(module, class_name, handler, ("127.0.0.1", 0), **namespace)
    else:
        namespace["__module__"] = __name__
        cls = type("BenchServer", (base,), namespace)
        server = cls(("127.0.0.1", 0), handler)
    if socket_timeout is not None:
        server.socket.settimeout(socket_timeout)
    return server


def _local_hook(base: type, hook: str, kind: str, recorder: Recorder) -> Callable[..., Any]:
    from .handlers import thread_facts

    def method(self: Any, *args: Any) -> Any:
        if kind == "sentinel":
            return SENTINEL
        if kind in ("record_request", "record_only"):
            recorder.add(hook, token=thread_facts()["token"], request=id(args[0]) if args else None)
            if kind == "record_only":
                return None
        else:
            recorder.add(hook)
        return getattr(base, hook)(self, *args)

    method.__name__ = hook
    return method


def _failing_get_request(base: type, recorder: Recorder, fail_accept: Dict[str, Any],
                         hook: Optional[Callable[..., Any]] = None) -> Callable[..., Any]:
    # extport: ``then`` (counts): further runs of failures, each starting after a get_request()
    # that returned (the agent's bench_hook does the same)
    runs = list(fail_accept.get("then") or [])
    state = {"left": int(fail_accept["count"])}

    def get_request(self: Any) -> Any:
        if state["left"] > 0:
            state["left"] -= 1
            if fail_accept.get("accept_first"):
                request, _address = base.get_request(self)
                request.close()
            recorder.add("accept_failed")
            raise OSError(int(fail_accept["errno"]), "simulated accept() failure")
        found = hook(self) if hook is not None else base.get_request(self)
        if runs:
            state["left"] = int(runs.pop(0))
        return found

    return get_request


def elapsed_of(server: Any, method: str, measured: float) -> float:
    """How long ``method`` took: ``measured`` on this clock in-process, the subject's own
    duration (its clock) for a remote server."""
    if is_remote(server):
        state = server.last_call.get(method) or {}
        if state.get("started") is not None and state.get("ended") is not None:
            return float(state["ended"]) - float(state["started"])
    return measured


def times_of(server: Any, method: str, call: Any) -> tuple:
    """``(started, ended)`` of ``method`` run by the Background ``call``, on the clock of the
    server's recorder: this one in-process, the subject's for a remote server (None: not yet)."""
    if is_remote(server):
        state = server.last_call.get(method) or {}
        return state.get("started"), state.get("ended")
    return call.started_at, call.ended_at


def ended_of(server: Any, method: str, measured: Optional[float]) -> Optional[float]:
    """When ``method`` returned: ``measured`` (this clock) in-process, the subject's own
    clock for a remote server (the clock its recorded events carry)."""
    if is_remote(server):
        ended = (server.last_call.get(method) or {}).get("ended")
        return None if ended is None else float(ended)
    return measured


__all__ = ["LogRecorder", "RemoteCounter", "RemoteServer", "SENTINEL", "bench_server", "elapsed_of", "ended_of", "handler_threads", "has_attribute", "times_of",
           "is_remote", "recorder_for", "subject_of"]
