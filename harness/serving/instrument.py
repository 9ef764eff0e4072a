"""Handlers that record what they do, readable across threads and processes.

Theory of operation
-------------------
Claims such as "ThreadingTCPServer runs two handlers at once" or "TCPServer
serialises requests" are proved from *intervals*: each request records when
its ``setup``, ``handle`` and ``finish`` started and ended, with
:func:`harness.core.clock.now` (one high-resolution clock that reads the same in
every process on Linux, macOS and Windows, so intervals from forked children
and from the parent compare), the pid and the thread.  :func:`intervals`
pairs the edges, :func:`max_overlap` sweeps them, and :func:`serialised` says
whether no two ever overlapped.

The record is an :class:`EventLog`: JSON lines, one event per line.  Appends
from several writers are *not* made safe by ``O_APPEND``: the Windows C
runtime emulates it by seeking to the end and then writing, two steps
another writer can come between
(https://learn.microsoft.com/en-us/cpp/c-runtime-library/reference/write).
So every writing process has a file of its own (``<path>.w<pid>``), and the
threads of one process take a lock around each write; no two writers ever
share a file, on any OS.  :meth:`EventLog.read` merges the files in clock
order.  A file is opened and closed around each write, so a log never holds a
descriptor that the fd leak check of :mod:`harness.serving.servers` would count, and
a forked child needs nothing from its parent but the path (its pid names its
own file, and its lock is made afresh after the fork).

:func:`instrumented` builds, from the implementation's own handler class
(``BaseRequestHandler``, ``StreamRequestHandler`` or
``DatagramRequestHandler``), a subclass whose ``handle()`` body is a named
*behaviour* (:data:`BEHAVIOURS`).  Names, not functions, so that
:mod:`harness.processes.server_process` can build the same handler in another
process from a JSON spec.  Behaviours use the handler's own I/O: ``rfile``/
``wfile`` when the base class provides them, ``self.request`` otherwise,
so the implementation's file wrappers are exercised too.  Every read in a
behaviour has a timeout (``recv_timeout``, default ``medium()``), so an
instrumented handler never hangs forever even if its client does.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import socket
import tempfile
import threading
import uuid
from typing import Any, Callable, Dict, Iterable, List, Optional

from harness.core import clock, timeouts
from harness.core.lines import read_line
from harness.core.observations import describe_exception

#: Longest string kept in one field, and the cap on one encoded line.
MAX_FIELD = 512
MAX_LINE = 4000


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD:
        return value[: MAX_FIELD - 3] + "..."
    if isinstance(value, bytes):
        return _clip(repr(value))
    if isinstance(value, (list, tuple)):
        return [_clip(item) for item in value][:64]
    if isinstance(value, dict):
        return {str(k): _clip(v) for k, v in list(value.items())[:64]}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value
    return _clip(repr(value))


_locks: Dict[int, threading.Lock] = {}


def _writer_lock() -> threading.Lock:
    """This process's write lock; a forked child makes its own (the parent's may be held)."""
    pid = os.getpid()
    lock = _locks.get(pid)
    if lock is None:
        lock = _locks.setdefault(pid, threading.Lock())
    return lock


class EventLog:
    """JSON-lines events from many threads and processes: one file per writing process."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        #: events that could not be written because the file's directory vanished
        self.dropped = 0

    def __repr__(self) -> str:
        return f"EventLog({self.path!r})"

    def __reduce__(self):
        return (EventLog, (self.path,))

    @classmethod
    def create(cls, directory: str, name: str = "events") -> EventLog:
        """A new, empty log with a unique name in ``directory``."""
        fd, path = tempfile.mkstemp(prefix=name + "-", suffix=".jsonl", dir=directory)
        os.close(fd)
        return cls(path)

    def writer_path(self, pid: Optional[int] = None) -> str:
        """The file process ``pid`` (default: this one) appends to."""
        return f"{self.path}.w{os.getpid() if pid is None else pid}"

    def append(self, **fields: Any) -> Dict[str, Any]:
        """Write one event; returns it as written."""
        event: Dict[str, Any] = {
            "pid": os.getpid(),
            "tid": threading.get_ident(),
            "native_id": getattr(threading, "get_native_id", threading.get_ident)(),
            "t": clock.now(),
        }
        for key, value in fields.items():
            event[key] = _clip(value)
        line = json.dumps(event, sort_keys=True, default=repr)
        if len(line) >= MAX_LINE:
            keep: Dict[str, Any] = {k: event[k] for k in ("pid", "tid", "native_id", "t", "kind") if k in event}
            keep["truncated"] = line[: MAX_LINE // 2]
            line = json.dumps(keep, sort_keys=True)
        data = (line + "\n").encode("utf-8")
        with _writer_lock():
            try:
                fd = os.open(self.writer_path(), os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
            except FileNotFoundError:
                # The private directory is gone: the run that owned this log is
                # over and a straggling handler is still writing.  Nobody reads.
                self.dropped += 1
                return event
            try:
                os.lseek(fd, 0, os.SEEK_END)  # only this process writes here, and only under the lock
                view = memoryview(data)
                for _ in range(len(data) + 1):  # bounded: each write moves at least one byte
                    if not view:
                        break
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        return event

    def _files(self) -> List[str]:
        return [self.path] + sorted(glob.glob(glob.escape(self.path) + ".w*"))

    def read(self) -> List[Dict[str, Any]]:
        """Every complete event so far: each writer's in its order, all merged by time."""
        events: List[Dict[str, Any]] = []
        for path in self._files():
            try:
                with open(path, "rb") as handle:
                    raw = handle.read()
            except FileNotFoundError:
                continue
            for line in raw.split(b"\n")[:-1]:  # a last line without "\n" is still being written
                if line.strip():
                    events.append(json.loads(line.decode("utf-8")))
        events.sort(key=lambda event: event.get("t", 0.0))  # stable: a writer's own order is kept
        return events

    def wait_for(
        self,
        predicate: Callable[[List[Dict[str, Any]]], Any],
        budget: Optional[float] = None,
        what: str = "an event in the log",
    ) -> List[Dict[str, Any]]:
        """Poll the file until ``predicate(events)`` is true; returns the events."""
        budget = timeouts.short() if budget is None else budget
        found: List[List[Dict[str, Any]]] = []

        def check() -> bool:
            events = self.read()
            if predicate(events):
                found.append(events)
                return True
            return False

        timeouts.wait_until(check, budget, what)
        return found[0]

    def count(self, **match: Any) -> int:
        return len(select(self.read(), **match))


def select(events: Iterable[Dict[str, Any]], **match: Any) -> List[Dict[str, Any]]:
    """Events whose fields equal every ``match`` item."""
    return [e for e in events if all(e.get(k) == v for k, v in match.items())]


# --------------------------------------------------------------------------- intervals


@dataclasses.dataclass(frozen=True)
class Interval:
    request: str
    phase: str
    start: float
    end: Optional[float]  # None: started, never ended (still running or hung)
    pid: int
    tid: int
    exc_type: Optional[str] = None

    @property
    def duration(self) -> Optional[float]:
        return None if self.end is None else self.end - self.start


def intervals(events: Iterable[Dict[str, Any]], phase: Optional[str] = None) -> List[Interval]:
    """Pair the ``phase`` start/end events into intervals, ordered by start."""
    starts: Dict[Any, Dict[str, Any]] = {}
    ends: Dict[Any, Dict[str, Any]] = {}
    for event in events:
        if event.get("kind") != "phase":
            continue
        if phase is not None and event.get("phase") != phase:
            continue
        key = (event["request"], event["phase"])
        if event.get("edge") == "start":
            starts.setdefault(key, event)
        elif event.get("edge") == "end":
            ends.setdefault(key, event)
    result = []
    for key, start in starts.items():
        end = ends.get(key)
        result.append(
            Interval(
                request=key[0],
                phase=key[1],
                start=start["t"],
                end=None if end is None else end["t"],
                pid=start["pid"],
                tid=start["tid"],
                exc_type=None if end is None else end.get("exc_type"),
            )
        )
    result.sort(key=lambda iv: (iv.start, iv.request))
    return result


def max_overlap(items: Iterable[Interval], phase: Optional[str] = "handle") -> int:
    """The largest number of intervals open at one instant.

    Only intervals of ``phase`` count (``None``: all given).  An interval
    that never ended is open until the end of time.  An interval ending at
    the very instant another starts does not overlap it: a claim of overlap
    needs one interval to start strictly before another ended, so equal
    stamps (a clock too coarse to tell them apart) never count as evidence of
    concurrency, and a serialising server is never accused of overlapping.
    That is only sound with a clock that resolves handler edges, which is why
    every stamp comes from :mod:`harness.core.clock`.
    """
    points = []
    for iv in items:
        if phase is not None and iv.phase != phase:
            continue
        points.append((iv.start, 1))
        if iv.end is not None:
            points.append((iv.end, -1))
    points.sort(key=lambda p: (p[0], p[1]))  # ends (-1) before starts (+1) at a tie
    current = best = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


def serialised(items: Iterable[Interval], phase: Optional[str] = "handle") -> bool:
    """True when no two ``phase`` intervals ever overlapped."""
    return max_overlap(items, phase) <= 1


# --------------------------------------------------------------------------- handler I/O


def exception_fields(exc: BaseException) -> Dict[str, Any]:
    """The fields an event carries about an exception: ``exc`` (its repr),
    ``exc_type``, ``errno``, ``errno_name`` and ``winerror``.

    They are :func:`harness.core.observations.describe_exception`, the kit's one
    description of an exception (with its one errno mapping, Winsock numbers
    to their POSIX names, so an event log written on Windows names ECONNRESET
    as a Linux one does), under the event log's field names.
    """
    described = describe_exception(exc)
    return {
        "exc": repr(exc),
        "exc_type": described["type"],
        "errno": described["errno"],
        "errno_name": described["errno_name"],
        "winerror": described["winerror"],
    }


class _IO:
    """The handler's own I/O, whichever base class it has."""

    def __init__(self, handler: Any, recv_timeout: float):
        self.handler = handler
        request = handler.request
        self.dgram = isinstance(request, tuple)
        self.sock = request[1] if self.dgram else request
        self.rfile = getattr(handler, "rfile", None)
        self.wfile = getattr(handler, "wfile", None)
        if not self.dgram:
            try:
                if self.sock.gettimeout() is None:
                    self.sock.settimeout(recv_timeout)
            except OSError:
                pass
        self._datagram: Optional[bytes] = request[0] if self.dgram else None

    def datagram(self) -> bytes:
        """The received datagram; only meaningful when ``self.dgram``."""
        if self.rfile is not None:
            return self.rfile.read()
        # Every caller checks ``self.dgram`` first, and then it is set.
        assert self._datagram is not None, "datagram() called for a stream request"
        return self._datagram

    def recv(self, size: int) -> bytes:
        if self.rfile is not None:
            read1 = getattr(self.rfile, "read1", None)
            return read1(size) if read1 is not None else self.rfile.read(size)
        return self.sock.recv(size)

    def readline(self, limit: int = 65536) -> bytes:
        if self.rfile is not None:
            return self.rfile.readline(limit)
        return read_line(self.sock.recv, limit)

    def send(self, data: bytes) -> None:
        if self.dgram:
            if self.wfile is not None:
                self.wfile.write(data)
            else:
                self.sock.sendto(data, self.handler.client_address)
            return
        if self.wfile is not None:
            self.wfile.write(data)
            flush = getattr(self.wfile, "flush", None)
            if flush is not None:
                flush()
        else:
            self.sock.sendall(data)


#: Upper bound on loop iterations inside a behaviour (every loop is bounded).
MAX_ITERATIONS = 100_000


def _echo(h, io: _IO, opts) -> None:
    if io.dgram:
        io.send(io.datagram())
        return
    for _ in range(MAX_ITERATIONS):
        data = io.recv(65536)
        if not data:
            return
        io.send(data)


def _echo_line(h, io: _IO, opts) -> None:
    if io.dgram:
        data = io.datagram()
        io.send(data.split(b"\n", 1)[0] + (b"\n" if b"\n" in data else b""))
        return
    io.send(io.readline())


def _upper(h, io: _IO, opts) -> None:
    # The tutorial's handler: recv(1024).strip().upper() until an empty recv.
    if io.dgram:
        io.send(io.datagram().strip().upper())
        return
    for _ in range(MAX_ITERATIONS):
        data = io.recv(1024).strip()
        if not data:
            return
        io.send(data.upper())


def _released(log: EventLog, token: Any) -> Callable[[List[Dict[str, Any]]], bool]:
    def predicate(events: List[Dict[str, Any]]) -> bool:
        return any(
            e.get("kind") == "release" and (e.get("token") in (None, token)) for e in events
        )

    return predicate


def release(log: EventLog, token: Any = None) -> None:
    """Let ``hold``/``hang`` handlers waiting on ``token`` (None: all) return."""
    log.append(kind="release", token=token)


def _hold(h, io: _IO, opts) -> None:
    """Block until the client sends a line or closes (stream), or until
    :func:`release` names the datagram's text (dgram); bounded."""
    log: EventLog = h._ssc_log
    budget = opts.get("hold_timeout") or timeouts.medium()
    if io.dgram:
        token = io.datagram().strip().decode("utf-8", "replace")
        log.append(kind="hold", request=h._ssc_request, token=token)
        try:
            log.wait_for(_released(log, token), budget, f"release of held datagram {token!r}")
        except timeouts.HarnessTimeout:
            log.append(kind="hold_timeout", request=h._ssc_request)
            return
        io.send(b"released " + token.encode("utf-8") + b"\n")
        return
    log.append(kind="hold", request=h._ssc_request)
    deadline = timeouts.Deadline(budget, "the held client")
    try:
        io.sock.settimeout(budget)
    except OSError:
        pass
    try:
        line = io.readline()
    except socket.timeout:
        log.append(kind="hold_timeout", request=h._ssc_request, waited=deadline.elapsed())
        return
    if line:
        io.send(line)


def _hang(h, io: _IO, opts) -> None:
    """Ignore the client and wait for :func:`release` far beyond every
    harness budget: a handler that, as far as a teardown can tell, never
    returns.  Still bounded (``hang_for``, default ``3 * long()``)."""
    log: EventLog = h._ssc_log
    log.append(kind="hang", request=h._ssc_request)
    budget = opts.get("hang_for") or 3 * timeouts.long()
    try:
        log.wait_for(_released(log, "hang"), budget, "release of a hanging handler")
    except timeouts.HarnessTimeout:
        log.append(kind="hang_timeout", request=h._ssc_request)


def _raise(h, io: _IO, opts) -> None:
    raise ValueError(opts.get("message", "instrumented handler raised on purpose"))


def _raise_exit(h, io: _IO, opts) -> None:
    raise SystemExit(opts.get("exit_code", 3))


def _noop(h, io: _IO, opts) -> None:
    return None


def _observe_recv(h, io: _IO, opts) -> None:
    """Record each recv result or exception until EOF, an error or the bound."""
    log: EventLog = h._ssc_log
    size = int(opts.get("recv_size", 65536))
    if io.dgram:
        data = io.datagram()
        log.append(kind="recv", request=h._ssc_request, result=repr(data[:200]), nbytes=len(data))
        return
    for index in range(MAX_ITERATIONS):
        try:
            data = io.recv(size)
        except BaseException as exc:
            log.append(kind="recv", request=h._ssc_request, index=index, **exception_fields(exc))
            if isinstance(exc, OSError):
                return
            raise
        log.append(
            kind="recv", request=h._ssc_request, index=index, result=repr(data[:200]),
            nbytes=len(data), exc=None, exc_type=None,
        )
        if not data:
            if opts.get("send_after_eof") is not None:
                _observe_one_send(h, io, opts["send_after_eof"].encode("utf-8"), "after_eof")
            return


def _observe_one_send(h, io: _IO, payload: bytes, label: str) -> bool:
    log: EventLog = h._ssc_log
    try:
        io.send(payload)
    except BaseException as exc:
        log.append(kind="send", request=h._ssc_request, label=label, **exception_fields(exc))
        if isinstance(exc, OSError):
            return False
        raise
    log.append(kind="send", request=h._ssc_request, label=label, nbytes=len(payload),
               exc=None, exc_type=None)
    return True


def _observe_send(h, io: _IO, opts) -> None:
    """Send ``chunk`` (default 64 KiB) ``count`` times, recording each result,
    stopping at the first error."""
    chunk = b"x" * int(opts.get("chunk_size", 65536))
    for index in range(int(opts.get("count", 64))):
        if not _observe_one_send(h, io, chunk, f"chunk {index}"):
            return


def _close_unread(h, io: _IO, opts) -> None:
    """Reply without reading the request (closing with unread data)."""
    io.send(opts.get("reply", "bye\n").encode("utf-8"))


#: behaviour name -> handle() body ``f(handler, io, options)``.
BEHAVIOURS: Dict[str, Callable[[Any, _IO, Dict[str, Any]], None]] = {
    "echo": _echo,
    "echo_line": _echo_line,
    "upper": _upper,
    "hold": _hold,
    "hang": _hang,
    "raise": _raise,
    "raise_exit": _raise_exit,
    "noop": _noop,
    "observe_recv": _observe_recv,
    "observe_send": _observe_send,
    "close_unread": _close_unread,
}


def _exc_fields(exc: Optional[BaseException]) -> Dict[str, Any]:
    if exc is None:
        return {"exc": None, "exc_type": None}
    return {"exc": repr(exc), "exc_type": type(exc).__name__}


def instrumented(handler_base: type, behaviour: str, log: EventLog, **options: Any) -> type:
    """A subclass of ``handler_base`` recording its phases, with ``behaviour``
    as its ``handle()`` body.  ``options`` are passed to the behaviour
    (``recv_timeout``, ``hold_timeout``, ``message``, ``reply`` ...) and must
    be JSON-serialisable for :mod:`harness.processes.server_process`."""
    if behaviour not in BEHAVIOURS:
        raise KeyError(f"unknown behaviour {behaviour!r}; known: {', '.join(sorted(BEHAVIOURS))}")
    body = BEHAVIOURS[behaviour]
    opts = dict(options)
    recv_timeout = opts.get("recv_timeout")

    def _record(self, phase: str, edge: str, exc: Optional[BaseException] = None, **extra):
        log.append(kind="phase", phase=phase, edge=edge, request=self._ssc_request,
                   behaviour=behaviour, **_exc_fields(exc), **extra)

    def _phase(self, phase: str, call: Callable[[], None], **extra) -> None:
        self._ssc_record(phase, "start", **extra)
        try:
            call()
        except BaseException as exc:
            self._ssc_record(phase, "end", exc)
            raise
        self._ssc_record(phase, "end")

    def setup(self):
        # setup() is the first method BaseRequestHandler.__init__ calls.
        self._ssc_request = uuid.uuid4().hex[:16]
        self._ssc_phase("setup", lambda: handler_base.setup(self),
                        client=repr(getattr(self, "client_address", None)))

    def handle(self):
        def run():
            io = _IO(self, recv_timeout if recv_timeout else timeouts.medium())
            body(self, io, opts)

        self._ssc_phase("handle", run)

    def finish(self):
        self._ssc_phase("finish", lambda: handler_base.finish(self))

    namespace = {
        "setup": setup,
        "handle": handle,
        "finish": finish,
        "_ssc_log": log,
        "_ssc_behaviour": behaviour,
        "_ssc_options": opts,
        "_ssc_record": _record,
        "_ssc_phase": _phase,
        "__module__": __name__,
        "__doc__": f"{handler_base.__name__} with the {behaviour!r} behaviour, instrumented.",
    }
    name = f"Instrumented{handler_base.__name__}_{behaviour}"
    return type(name, (handler_base,), namespace)
