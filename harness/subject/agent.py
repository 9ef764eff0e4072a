# -*- coding: utf-8 -*-
# mypy: ignore-errors
"""The subject agent: the implementation under test, inside another interpreter.

Theory of operation
-------------------
The suite runs on the host; the implementation under test runs here, in
whatever interpreter runs this file (CPython 2.7 and 3.x, PyPy).  This one
module depends on nothing but that interpreter's standard library and is
valid Python 2.7 and Python 3 at once, so it is started by path
(``EXE .../harness/subject/agent.py``), never imported from the kit.

It speaks protocol version :data:`PROTOCOL` (``docs/subject-protocol.md``,
``docs/subject-protocol.schema.json``): JSON objects, one per line.
Requests arrive on stdin; replies leave on a private copy of the original
stdout (fd 1 is pointed at stderr at start, so nothing the implementation
prints can corrupt a message).  The first message is ``hello`` with the
protocol version.  A plain ``stop`` line or the end of stdin ends the
agent (that is how :mod:`harness.processes.supervisor` asks a child to
stop), and so does its lifetime (``--lifetime``, a watchdog thread).

What it does, each from a fixed vocabulary:

* ``load``: the implementation -- the subject's own ``socketserver`` (or
  ``SocketServer`` on Python 2), a named module, or a ``.py`` file;
* ``snapshot``: introspection -- names, ``__all__``, every class with its
  bases, MRO and own attributes (values, and signatures of functions read
  with ``inspect.signature``, or ``inspect.getargspec`` on Python 2);
* ``fingerprint``: interpreter, version, OS and capabilities;
* ``serve``: build a server from a declarative spec (server class, family,
  class attributes, handler base, a handler *behaviour* and recorded
  hooks) and run ``serve_forever`` in a thread; readiness is the serve
  thread's first call into a selector (a per-thread profile function, no
  hook of the implementation);
* ``call``: ``shutdown``, ``server_close``, ``handle_request``,
  ``fileno``, ``service_actions`` ... on a served server, each in a daemon
  thread bounded by the request's ``budget``;
* ``stop_server``: the bounded teardown (shutdown, join, server_close);
* ``build``, ``invoke``, ``inspect``, ``serve_built``, ``discard``: a server
  constructed but not served, its constructor's exception a result, bounded
  calls of its methods, its attributes and socket facts read back (the BIND,
  UDP and UNIX checks, through ``conformance/tools/lab.py``).

The builder (behaviours, handler I/O, instrumented handlers, server
composition and hooks: :func:`build_server`) is the kit's only one.  The
agent is never imported *into* a subject, but the host imports it (it is
stdlib only): :mod:`harness.serving.instrument`, the thread path of
:func:`conformance.tools.serving.serve_kind` and
:mod:`harness.processes.server_process` build from the same spec with this
code, passing an :class:`Environment` with the kit's timeouts and
exceptions.  So a behaviour, hook action or ``call`` added here works in all
three paths.

Handler events (``setup``/``handle``/``finish`` edges, ``hold``, ``recv``
...) are written in the kit's event-log format: JSON lines in the file
``<log>.w<pid>`` of each writing process, stamped with the subject's own
clock -- ``time.monotonic`` where it exists, ``time.time`` on Python 2
(named in ``hello.clock``).  Every wait here has a bound given by the host
(``budgets`` in ``load``) or a fixed cap.
"""

from __future__ import print_function

import binascii
import errno
import glob
import inspect
import json
import os
import platform
import socket
import sys
import threading
import time
import traceback

PROTOCOL = 1
AGENT = "ssconform-subject-agent"
PY2 = sys.version_info[0] == 2
if PY2:  # pragma: no cover - exercised under 2.7 by the kit's subject tests
    text_type = unicode  # noqa: F821
    string_types = (str, unicode)  # noqa: F821
    integer_types = (int, long)  # noqa: F821
else:
    text_type = str
    string_types = (str,)
    integer_types = (int,)

_monotonic = getattr(time, "monotonic", None)
now = _monotonic or time.time
CLOCK = "time.monotonic" if _monotonic is not None else "time.time"

#: Bounds the host may override in ``load`` (seconds, already multiplied).
BUDGETS = {"short": 5.0, "medium": 10.0, "long": 30.0, "poll": 0.01}
MAX_ITERATIONS = 100000
MAX_FIELD = 512
#: Requests one agent answers before it stops (a bound on its loop).
MAX_REQUESTS = 10 ** 7


def iter_bounded(count):
    """``range(count)`` without building a list on Python 2."""
    index = 0
    while index < count:
        yield index
        index += 1


class RequestError(Exception):
    """A request the agent refuses: ``code`` is one of the protocol's error codes."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


# =========================================================================== output


class Channel(object):
    """JSON lines on a private descriptor, written whole under a lock."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, message):
        data = (json.dumps(message, sort_keys=True, default=repr) + "\n").encode("utf-8")
        with self.lock:
            view = memoryview(data)
            for _ in range(len(data) + 1):
                if not len(view):
                    break
                view = view[os.write(self.fd, view):]


def take_stdout():
    """Keep the real stdout for the protocol; fd 1 and sys.stdout go to stderr."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if hasattr(os, "register_at_fork"):
        def close_in_child():
            try:
                os.close(fd)
            except OSError:
                pass
        os.register_at_fork(after_in_child=close_in_child)
    return fd


def native(value):
    """JSON's text as the interpreter's native ``str`` (bytes on Python 2), recursively."""
    if PY2 and isinstance(value, text_type):
        return value.encode("utf-8")
    if isinstance(value, list):
        return [native(item) for item in value]
    if isinstance(value, dict):
        return dict((native(k), native(v)) for k, v in value.items())
    return value


def jsonable(value):
    """A JSON-safe copy of ``value`` (repr for anything else), clipped."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, integer_types):
        return int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, bytes) and not PY2:
        return jsonable(repr(value))
    if isinstance(value, string_types):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value if len(value) <= MAX_FIELD else value[:MAX_FIELD - 3] + "..."
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value][:64]
    if isinstance(value, dict):
        return dict((text_type(k), jsonable(v)) for k, v in list(value.items())[:64])
    return jsonable(repr(value))


# --------------------------------------------------------------------------- others: file names
# A path arrives as JSON text: the host's file name, which is UTF-8 (the kit's
# host is Python 3.9+: UTF-8 file names under the C/POSIX locale too, PEP 538
# and PEP 540).  A subject may name files in another encoding: Python 3.6 and
# PyPy 3.9 under LC_ALL=C use ASCII, and 'open' or 'bind' of a non-ASCII path
# raised UnicodeEncodeError.  These two functions carry the same bytes across.


def _fs_codec():
    errors = getattr(sys, "getfilesystemencodeerrors", lambda: "surrogateescape")()
    return sys.getfilesystemencoding() or "utf-8", errors


def subject_path(path):
    """The host's file name ``path`` as this interpreter names the same file."""
    if PY2 or not isinstance(path, text_type):
        return path  # Python 2: native() already made it UTF-8 bytes
    encoding, errors = _fs_codec()
    return path.encode("utf-8", "surrogateescape").decode(encoding, errors)


def host_path(path):
    """This interpreter's file name ``path`` as the host's (UTF-8) text."""
    if PY2 or not isinstance(path, text_type):
        return path
    encoding, errors = _fs_codec()
    return path.encode(encoding, errors).decode("utf-8", "surrogateescape")


def exception_text(exc):
    """``exc``'s message as text.  On Python 2, ``unicode(exc)`` of a message
    holding UTF-8 bytes (a non-ASCII file name) raised UnicodeDecodeError while
    the agent formatted an error reply, and the agent died; ``repr`` is ASCII."""
    try:
        return text_type(exc)
    except UnicodeError:
        return text_type(repr(exc))


def import_from_kit(name, failure):
    """``name`` imported from the kit's checkout, when it was not found (``failure``).

    The host puts its checkout on the agent's PYTHONPATH, which ``-I`` and
    ``-E`` make the subject ignore, so ``--impl reference`` failed to load there.
    This file is ``<checkout>/harness/subject/agent.py``; the checkout is
    appended last to ``sys.path``, so it shadows nothing the subject has.  None
    when ``name`` is not a top-level module of the checkout.
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    top = name.split(".")[0]
    if not isinstance(failure, ImportError) or root in sys.path:
        return None
    if not (os.path.isdir(os.path.join(root, top)) or os.path.isfile(os.path.join(root, top + ".py"))):
        return None
    import importlib
    sys.path.append(root)
    return importlib.import_module(name)


# =========================================================================== event log


def _thread_ident():
    get_ident = getattr(threading, "get_ident", None)
    return get_ident() if get_ident is not None else threading.current_thread().ident


def released_in(events, token):
    """Whether ``events`` hold a ``release`` of ``token`` (or of every token)."""
    return any(e.get("kind") == "release" and e.get("token") in (None, token) for e in events)


class EventLog(object):
    """The kit's event-log format: JSON lines, one file per writing process.

    The one implementation of the format: :class:`harness.serving.instrument.EventLog`
    is this class with the kit's clock and bounded waits.  Appends from several
    writers are not made safe by ``O_APPEND`` (the Windows C runtime emulates it
    by seeking, then writing), so every writing process has a file of its own
    (``<path>.w<pid>``) and its threads take a lock around each write; a file is
    opened and closed around each write, so a log holds no descriptor.
    """

    _locks = {}
    #: the stamp of every event (the host's EventLog uses harness.core.clock.now)
    clock = staticmethod(now)
    #: the cap on one encoded line; a longer event keeps only its identity
    max_line = 4000

    def __init__(self, path):
        self.path = os.path.abspath(subject_path(path))  # others: the subject's file name
        #: events that could not be written because the file's directory vanished
        self.dropped = 0

    def _lock(self):
        """This process's write lock; a forked child makes its own (the parent's may be held)."""
        pid = os.getpid()
        lock = EventLog._locks.get(pid)
        if lock is None:
            lock = EventLog._locks.setdefault(pid, threading.Lock())
        return lock

    def writer_path(self, pid=None):
        """The file process ``pid`` (default: this one) appends to."""
        return "%s.w%d" % (self.path, os.getpid() if pid is None else pid)

    def append(self, **fields):
        """Write one event; returns it as written."""
        native_id = getattr(threading, "get_native_id", None)
        tid = _thread_ident()
        event = {"pid": os.getpid(), "tid": tid, "native_id": native_id() if native_id else tid,
                 "t": self.clock()}
        for key, value in fields.items():
            event[key] = jsonable(value)
        line = json.dumps(event, sort_keys=True, default=repr)
        if len(line) >= self.max_line:
            keep = dict((k, event[k]) for k in ("pid", "tid", "native_id", "t", "kind") if k in event)
            keep["truncated"] = line[:self.max_line // 2]
            line = json.dumps(keep, sort_keys=True)
        data = (line + "\n").encode("utf-8")
        with self._lock():
            try:
                fd = os.open(self.writer_path(), os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                # the private directory is gone: the run that owned this log is
                # over and a straggling handler is still writing.  Nobody reads.
                self.dropped += 1
                return event
            try:
                os.lseek(fd, 0, 2)  # only this process writes here, and only under the lock
                view = memoryview(data)
                for _ in range(len(data) + 1):  # bounded: each write moves at least one byte
                    if not len(view):
                        break
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        return event

    def _files(self):
        escape = getattr(glob, "escape", None)  # Python 3.4+; a kit's private path has no magic
        return [self.path] + sorted(glob.glob((escape(self.path) if escape else self.path) + ".w*"))

    def read(self):
        """Every complete event so far: each writer's in its order, all merged by time."""
        events = []
        for path in self._files():
            try:
                with open(path, "rb") as handle:
                    raw = handle.read()
            except (IOError, OSError) as exc:
                if exc.errno != errno.ENOENT:
                    raise
                continue
            for line in raw.split(b"\n")[:-1]:  # a last line without "\n" is still being written
                if line.strip():
                    events.append(json.loads(line.decode("utf-8")))
        events.sort(key=lambda event: event.get("t", 0.0))  # stable: a writer's own order is kept
        return events

    def wait_released(self, token, budget):
        """Whether a ``release`` of ``token`` came within ``budget`` (polled)."""
        deadline = now() + budget
        for _ in range(MAX_ITERATIONS):
            if released_in(self.read(), token):
                return True
            if now() >= deadline:
                return False
            time.sleep(BUDGETS["poll"])
        return False


# =========================================================================== behaviours


def describe_exception(exc):
    number = getattr(exc, "errno", None)
    return {"exc": repr(exc), "exc_type": type(exc).__name__, "errno": number,
            "errno_name": errno.errorcode.get(number) if isinstance(number, int) else None,
            "winerror": getattr(exc, "winerror", None)}


def read_line(recv, limit, into=None):
    """Bytes up to and including ``\\n`` (or up to EOF or ``limit``), one ``recv(1)`` at a time.

    The only way to read a line from a raw socket without consuming what
    follows it (the next request, or data the other side sends later).  The
    caller passes the one-byte receive and may pass the buffer, so that when
    its receive raises it can still say what had arrived
    (:mod:`harness.core.lines` is this function on the host).
    """
    data = bytearray() if into is None else into
    while len(data) < limit:
        byte = recv(1)
        if not byte:
            break
        data += byte
        if byte == b"\n":
            break
    return bytes(data)


class IO(object):
    """The handler's own I/O, whichever base class it has: ``rfile``/``wfile``
    when the base class provides them (so the implementation's file wrappers
    are exercised too), ``self.request`` otherwise."""

    def __init__(self, handler, recv_timeout):
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
            except (OSError, socket.error):
                pass
        self._datagram = request[0] if self.dgram else None

    def datagram(self):
        """The received datagram; only meaningful when ``self.dgram``."""
        if self.rfile is not None:
            return self.rfile.read()
        return self._datagram

    def recv(self, size):
        if self.rfile is not None:
            read1 = getattr(self.rfile, "read1", None)
            if read1 is not None:
                return read1(size)
            if PY2:  # a 2.7 socket file: read() would wait for size bytes
                return self.sock.recv(size)
            return self.rfile.read(size)
        return self.sock.recv(size)

    def readline(self, limit=65536):
        if self.rfile is not None:
            return self.rfile.readline(limit)
        return read_line(self.sock.recv, limit)

    def send(self, data):
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


# A behaviour is a handle() body ``f(handler, io, options)``.  The handler
# carries ``_ssc_log`` (the EventLog), ``_ssc_request`` (this request's id)
# and ``_ssc_env`` (the Environment: budgets and exception descriptions of
# the process it runs in).  New behaviours: a function here and a line in
# BEHAVIOURS (and the protocol schema's "behaviour" enum).


def _echo(h, io, opts):
    if io.dgram:
        io.send(io.datagram())
        return
    for _ in range(MAX_ITERATIONS):
        data = io.recv(65536)
        if not data:
            return
        io.send(data)


def _echo_line(h, io, opts):
    if io.dgram:
        data = io.datagram()
        io.send(data.split(b"\n", 1)[0] + (b"\n" if b"\n" in data else b""))
        return
    io.send(io.readline())


def _upper(h, io, opts):
    # The tutorial's handler: recv(1024).strip().upper() until an empty recv.
    if io.dgram:
        io.send(io.datagram().strip().upper())
        return
    for _ in range(MAX_ITERATIONS):
        data = io.recv(1024).strip()
        if not data:
            return
        io.send(data.upper())


def _hold(h, io, opts):
    """Block until the client sends a line or closes (stream), or until a
    ``release`` event names the datagram's text (dgram); bounded."""
    log = h._ssc_log
    budget = opts.get("hold_timeout") or h._ssc_env.budget("medium")
    if io.dgram:
        token = io.datagram().strip().decode("utf-8", "replace")
        log.append(kind="hold", request=h._ssc_request, token=token)
        if not log.wait_released(token, budget):
            log.append(kind="hold_timeout", request=h._ssc_request)
            return
        io.send(b"released " + token.encode("utf-8") + b"\n")
        return
    log.append(kind="hold", request=h._ssc_request)
    started = now()
    try:
        io.sock.settimeout(budget)
    except (OSError, socket.error):
        pass
    try:
        line = io.readline()
    except socket.timeout:
        log.append(kind="hold_timeout", request=h._ssc_request, waited=now() - started)
        return
    if line:
        io.send(line)


def _hang(h, io, opts):
    """Ignore the client and wait for a ``release`` of ``"hang"`` far beyond
    every harness budget: a handler that, as far as a teardown can tell,
    never returns.  Still bounded (``hang_for``, default ``3 * long``)."""
    log = h._ssc_log
    log.append(kind="hang", request=h._ssc_request)
    if not log.wait_released("hang", opts.get("hang_for") or 3 * h._ssc_env.budget("long")):
        log.append(kind="hang_timeout", request=h._ssc_request)


def _raise(h, io, opts):
    raise ValueError(opts.get("message", "instrumented handler raised on purpose"))


def _raise_exit(h, io, opts):
    raise SystemExit(opts.get("exit_code", 3))


def _noop(h, io, opts):
    return None


def _observe_one_send(h, io, payload, label):
    try:
        io.send(payload)
    except BaseException as exc:
        fields = h._ssc_env.describe_exception(exc)
        h._ssc_log.append(kind="send", request=h._ssc_request, label=label, **fields)
        if isinstance(exc, (OSError, socket.error, IOError)):
            return False
        raise
    h._ssc_log.append(kind="send", request=h._ssc_request, label=label, nbytes=len(payload),
                      exc=None, exc_type=None)
    return True


def _observe_recv(h, io, opts):
    """Record each recv result or exception until EOF, an error or the bound."""
    log = h._ssc_log
    size = int(opts.get("recv_size", 65536))
    if io.dgram:
        data = io.datagram()
        log.append(kind="recv", request=h._ssc_request, result=brepr(data[:200]), nbytes=len(data))
        return
    for index in range(MAX_ITERATIONS):
        try:
            data = io.recv(size)
        except BaseException as exc:
            fields = h._ssc_env.describe_exception(exc)
            log.append(kind="recv", request=h._ssc_request, index=index, **fields)
            if isinstance(exc, (OSError, socket.error, IOError)):
                return
            raise
        log.append(kind="recv", request=h._ssc_request, index=index, result=brepr(data[:200]),
                   nbytes=len(data), exc=None, exc_type=None)
        if not data:
            if opts.get("send_after_eof") is not None:
                _observe_one_send(h, io, opts["send_after_eof"].encode("utf-8"), "after_eof")
            return


def _observe_send(h, io, opts):
    """Send ``chunk_size`` bytes (default 64 KiB) ``count`` times, recording
    each result, stopping at the first error."""
    chunk = b"x" * int(opts.get("chunk_size", 65536))
    for index in range(int(opts.get("count", 64))):
        if not _observe_one_send(h, io, chunk, "chunk %d" % index):
            return


def _close_unread(h, io, opts):
    """Reply without reading the request (closing with unread data)."""
    io.send(opts.get("reply", "bye\n").encode("utf-8"))


# --------------------------------------------------------------------------- builder: the tutorial
# The seed tutorial's MyTCPHandler bodies (conformance/checks/test_tutorial.py quotes
# the scripts), its code unchanged but for the bounds (recv has the handler's
# timeout; ``while True`` has MAX_ITERATIONS) and ``print`` becoming events:
# ``wrote`` (what recv returned, latin-1 text), ``disconnected``, ``caught``.


try:
    _RESET = ConnectionResetError
except NameError:  # Python 2
    _RESET = None


def _connection_reset(exc):
    """``except ConnectionResetError`` on Python 3; its errno on Python 2."""
    if _RESET is not None:
        return isinstance(exc, _RESET)
    return isinstance(exc, socket.error) and getattr(exc, "errno", None) == errno.ECONNRESET


def _tutorial_recv(h):
    data = h.request.recv(1024).strip()
    h._ssc_log.append(kind="wrote", request=h._ssc_request, data=data.decode("latin-1"))
    return data


def _socketserver1(h, io, opts):
    # socketserver1.py: self.data = self.request.recv(1024).strip(); print(...);
    # self.request.send(self.data.upper())
    h.request.send(_tutorial_recv(h).upper())


def _socketserver2(h, io, opts):
    # socketserver2.py: the same in ``while True``, ``break`` on empty data
    for _ in iter_bounded(MAX_ITERATIONS):
        data = _tutorial_recv(h)
        if not data:
            h._ssc_log.append(kind="disconnected", request=h._ssc_request)  # print(addr, "断开了")
            return
        h.request.send(data.upper())


def _socketserver3(h, io, opts):
    # socketserver3.py (also 4 and 5): socketserver2 + ``except ConnectionResetError: break``
    for _ in iter_bounded(MAX_ITERATIONS):
        try:
            data = _tutorial_recv(h)
            if not data:
                h._ssc_log.append(kind="disconnected", request=h._ssc_request)
                return
            h.request.send(data.upper())
        except Exception as exc:
            if not _connection_reset(exc):
                raise
            # print('出现错误', e)
            h._ssc_log.append(kind="caught", request=h._ssc_request, **h._ssc_env.describe_exception(exc))
            return


#: The behaviour vocabulary: name -> handle() body ``f(handler, io, options)``.
#: The host's harness.serving.instrument.BEHAVIOURS is this table.
BEHAVIOURS = {
    "echo": _echo, "echo_line": _echo_line, "upper": _upper, "hold": _hold, "hang": _hang,
    "raise": _raise, "raise_exit": _raise_exit, "noop": _noop, "observe_recv": _observe_recv,
    "observe_send": _observe_send, "close_unread": _close_unread,
    # builder: the tutorial's handlers (TUTORIAL-*)
    "socketserver1": _socketserver1, "socketserver2": _socketserver2, "socketserver3": _socketserver3,
}


# =========================================================================== the builder
#
# One builder for every path that serves a spec: this agent (``serve``), and
# on the host the thread of a check (conformance.tools.serving.serve_kind) and
# the server process (harness.processes.server_process), which import this
# module (it is stdlib only) and pass harness.serving.instrument.HOST as the
# Environment.  Extension points, one table each: BEHAVIOURS (above),
# HOOKS and HOOK_ACTIONS (here), CALLS and OPS (below).


class Environment(object):
    """What the builder takes from the process it runs in; these are the agent's.

    The host's subclass (:data:`harness.serving.instrument.HOST`) reads the
    kit's ``timeouts``, describes exceptions with the kit's errno mapping,
    resolves server classes, addresses and construction with
    :mod:`harness.serving.servers` (its prerequisite probes), and raises the
    kit's exceptions instead of :class:`RequestError`.
    """

    def budget(self, name):
        """A bound in seconds: ``short``, ``medium``, ``long`` (as given in ``load``)."""
        return BUDGETS[name]

    def describe_exception(self, exc):
        return describe_exception(exc)

    def error(self, code, message):
        """The exception to raise for a refused spec (``code``: a protocol error code)."""
        return RequestError(code, message)

    def server_class(self, module, class_name):
        """``module.<class_name>``, or its composition from mix-in and base."""
        found = getattr(module, class_name, None)
        if found is not None:
            return found
        for prefix, mixin_name in (("Forking", "ForkingMixIn"), ("Threading", "ThreadingMixIn")):
            base_name = class_name[len(prefix):]
            if class_name.startswith(prefix) and base_name:
                mixin = getattr(module, mixin_name, None)
                base = getattr(module, base_name, None)
                if mixin is not None and base is not None:
                    return type(base)(class_name, (mixin, base), {"__module__": module.__name__})
        raise self.error("missing_class", "%s has no server class %s" % (module.__name__, class_name))

    def address(self, family, directory):
        """A bindable server address: loopback port 0, or a path in ``directory``."""
        if family == "unix":
            if not hasattr(socket, "AF_UNIX"):
                raise self.error("unsupported", "AF_UNIX is absent")
            return os.path.join(subject_path(directory), "srv")  # others: the subject's file name
        return ("::1", 0) if family == "inet6" else ("127.0.0.1", 0)

    def construct(self, module, class_name, base, handler, address, namespace, bind_and_activate):
        """An instance of a subclass of ``base`` with ``namespace`` as its class attributes."""
        namespace = dict(namespace)
        namespace.setdefault("__module__", __name__)
        cls = subclass(base, "Agent" + class_name, namespace)
        return cls(address, handler, bind_and_activate)


AGENT_ENV = Environment()


def _record_hook(server, hook, original, args):
    return original(server, *args)


def _deny_hook(server, hook, original, args):
    if hook == "verify_request":
        return False
    return original(server, *args)


# Hook actions of built servers (BIND, UDP, UNIX: port-a).


class InjectedError(Exception):
    """Raised on purpose by a hook whose action is ``raise``."""


#: The InjectedErrors raised since a builder last cleared it (``build`` asks: is the
#: constructor's exception the very one a hook raised?).
INJECTED = []


def _raise_hook(server, hook, original, args):
    exc = InjectedError("%s failed on purpose" % hook)
    INJECTED.append(exc)
    raise exc


def _swallow_hook(server, hook, original, args):
    return None


#: Server hooks a spec may override (each call is logged as ``kind="hook"``).
HOOKS = ("verify_request", "process_request", "finish_request", "shutdown_request", "close_request",
         "handle_error", "handle_timeout", "service_actions", "server_bind", "server_activate",
         "get_request",
         "server_close")  # built servers (BIND, UDP, UNIX: port-a)
#: What an overridden hook does after it logged the call: ``f(server, hook, original, args)``.
#: "record": call the implementation's own; "deny": verify_request returns False;
#: "raise": raise an InjectedError; "swallow": return None without calling it.
HOOK_ACTIONS = {"record": _record_hook, "deny": _deny_hook,
                "raise": _raise_hook, "swallow": _swallow_hook}  # the last two: port-a


def subclass(base, name, namespace):
    """A subclass of ``base``, classic (Python 2 old-style) or not, like its base."""
    return type(base)(name, (base,), namespace)


def default_handler_base(class_name):
    datagram = "UDP" in class_name or "Datagram" in class_name
    return "DatagramRequestHandler" if datagram else "StreamRequestHandler"


# udp-connect: a datagram server's shared socket found connected --------------------------------
#: the event an instrumented handler logs when its datagram request's socket (the server's
#: shared one) has a peer: a connected SOCK_DGRAM socket receives datagrams only from that peer
#: (connect(2): "the only address from which datagrams are received"), so every other client's
#: datagrams are discarded by the kernel while it stays connected; a check that needs several
#: clients answered decides from this at once instead of waiting out its budget for replies
SHARED_SOCKET_CONNECTED = "shared_socket_connected"


def note_shared_socket(handler, log, where):
    """Log :data:`SHARED_SOCKET_CONNECTED` if ``handler``'s request is a datagram request
    ``(data, socket)`` whose socket has a peer (``getpeername()`` succeeds); ``where``: the phase
    edge it was seen at.  Only looks: never raises, never changes the socket."""
    request = getattr(handler, "request", None)
    if not isinstance(request, tuple) or len(request) != 2:
        return
    try:
        if request[1].getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) != socket.SOCK_DGRAM:
            return
        peer = request[1].getpeername()
    except Exception:  # unconnected (ENOTCONN), closed, or no socket at all: nothing to note
        return
    try:
        log.append(kind=SHARED_SOCKET_CONNECTED, where=where, peer=repr(peer)[:200],
                   client=repr(getattr(handler, "client_address", None))[:200],
                   request=getattr(handler, "_ssc_request", None))
    except Exception:  # a log that cannot be written loses the note, not the request
        pass
# end udp-connect ------------------------------------------------------------------------------


def instrumented(handler_base, behaviour, log, options=None, env=AGENT_ENV):
    """A subclass of ``handler_base`` recording its phases (``setup``/``handle``/
    ``finish`` edges in ``log``), with ``behaviour`` as its ``handle()`` body.
    ``options`` go to the behaviour (``recv_timeout``, ``hold_timeout``,
    ``message``, ``reply`` ...); every read has a timeout (``recv_timeout``,
    default the medium budget), so a handler never hangs on its client."""
    if behaviour not in BEHAVIOURS:
        raise env.error("bad_spec", "unknown behaviour %r; known: %s" % (behaviour, ", ".join(sorted(BEHAVIOURS))))
    body = BEHAVIOURS[behaviour]
    opts = dict(options or {})

    def record(self, phase, edge, exc=None, **extra):
        fields = {"exc": None, "exc_type": None}
        if exc is not None:
            fields = env.describe_exception(exc)
        fields.update(extra)
        log.append(kind="phase", phase=phase, edge=edge, request=self._ssc_request, behaviour=behaviour, **fields)

    def phase(self, name, call, **extra):
        self._ssc_record(name, "start", **extra)
        try:
            call()
        except BaseException as exc:
            self._ssc_record(name, "end", exc)
            raise
        self._ssc_record(name, "end")

    def setup(self):
        # setup() is the first method BaseRequestHandler.__init__ calls.
        # not uuid: Python 2's uuid import runs ldconfig, tens of ms in every forked child
        self._ssc_request = binascii.hexlify(os.urandom(8)).decode("ascii")
        note_shared_socket(self, log, "setup")  # udp-connect: connected before this request
        self._ssc_phase("setup", lambda: handler_base.setup(self), client=repr(getattr(self, "client_address", None)))

    def handle(self):
        def run():
            body(self, IO(self, opts.get("recv_timeout") or env.budget("medium")), opts)

        self._ssc_phase("handle", run)

    def finish(self):
        def run():
            handler_base.finish(self)
            note_shared_socket(self, log, "finish")  # udp-connect: before the finish phase's end edge

        self._ssc_phase("finish", run)

    namespace = {"setup": setup, "handle": handle, "finish": finish, "_ssc_log": log, "_ssc_env": env,
                 "_ssc_behaviour": behaviour, "_ssc_options": opts,
                 "_ssc_record": record, "_ssc_phase": phase, "__module__": __name__,
                 "__doc__": "%s with the %r behaviour, instrumented." % (handler_base.__name__, behaviour)}
    return subclass(handler_base, "Instrumented%s_%s" % (handler_base.__name__, behaviour), namespace)


def hook_wrapper(base, hook, action, log, env=AGENT_ENV):
    """``base.<hook>`` overridden: log the call, then do what ``action`` says."""
    if hook not in HOOKS or action not in HOOK_ACTIONS:
        raise env.error("bad_spec", "hook %r/%r is not in the vocabulary (%s; %s)"
                        % (hook, action, ", ".join(HOOKS), ", ".join(sorted(HOOK_ACTIONS))))
    if action in PROBE_HOOK_ACTIONS:  # observing actions log more than the call (port-b)
        return probe_hook(base, hook, action, log)
    original = getattr(base, hook)
    perform = HOOK_ACTIONS[action]

    def wrapper(self, *args):
        fields = {}
        if hook == "handle_error":  # the exception being handled (the stdlib prints its traceback)
            handled = sys.exc_info()[1]
            fields["handled"] = env.describe_exception(handled) if handled is not None else None
        keep_socket(self, hook, log)  # built servers (BIND, UDP, UNIX: port-a)
        log.append(kind="hook", hook=hook, action=action, args=[repr(a)[:200] for a in args], **fields)
        try:
            value = perform(self, hook, original, args)
        except BaseException as exc:
            log.append(kind="hook_return", hook=hook, **env.describe_exception(exc))
            raise
        log.append(kind="hook_return", hook=hook, exc=None, exc_type=None)
        return value

    wrapper.__name__ = hook
    return wrapper


def build_server(module, spec, log, env=AGENT_ENV):
    """The server ``spec`` describes, built from the implementation ``module``.

    ``spec`` (the protocol's ``serve`` spec): ``server_class`` (a name in
    ``module``, or ``Forking*``/``Threading*`` composed from mix-in and base),
    ``handler_base`` (default: Stream- or DatagramRequestHandler), ``behaviour``
    and ``options`` (:func:`instrumented`), ``attrs`` (class attributes),
    ``hooks`` (hook name -> action), ``family`` (inet, inet6, unix),
    ``directory`` (where an AF_UNIX path goes), ``bind_and_activate``.
    Handler and hook events go to ``log``.  Serving it is the caller's.
    """
    class_name = spec.get("server_class")
    if not isinstance(class_name, string_types) or not class_name:
        raise env.error("bad_spec", "server_class must be a class name")
    base = env.server_class(module, class_name)
    handler_base_name = spec.get("handler_base") or default_handler_base(class_name)
    handler_base = getattr(module, handler_base_name, None)
    if handler_base is None:
        raise env.error("missing_class", "%s has no %s" % (module.__name__, handler_base_name))
    if spec.get("probe") is not None:  # HANDLER, PIPELINE, DISCONNECT vocabulary (port-b)
        handler = probe_handler(handler_base, spec["probe"], log)
    else:
        handler = instrumented(handler_base, spec.get("behaviour") or "echo", log, spec.get("options"), env)
    namespace = dict(spec.get("attrs") or {})
    family = spec.get("family") or ("unix" if "Unix" in class_name else "inet")
    address = env.address(family, spec.get("directory"))
    if spec.get("address"):  # an explicit address (built servers, BIND, UDP, UNIX: port-a)
        address = spec_address(spec["address"], spec.get("directory"))
    if family == "inet6":
        namespace.setdefault("address_family", socket.AF_INET6)
    for hook, action in sorted((spec.get("hooks") or {}).items()):
        if hook in HOOKS and getattr(base, hook, None) is None:
            # the implementation lacks a documented method (API-020 owns that): a wrapper
            # would fail the build, or hide the absence; the server stays as it is, so what
            # the implementation does without it (its own AttributeError) is what is observed
            log.append(kind="hook_missing", hook=hook, action=action)
            continue
        namespace[hook] = hook_wrapper(base, hook, action, log, env)
    return env.construct(module, class_name, base, handler, address, namespace,
                         bool(spec.get("bind_and_activate", True)))


# =========================================================================== the implementation


class Subject(object):
    """The loaded implementation and what the record says about it."""

    def __init__(self, spec):
        self.spec = spec
        self.module, self.kind = self._load(spec)
        declared = getattr(self.module, "__socketserver_api__", None)
        if spec == "stdlib" and declared is None:
            self.api_version = list(sys.version_info[:2])
        elif declared is not None:
            self.api_version = [int(declared[0]), int(declared[1])]
        else:
            self.api_version = list(sys.version_info[:2])
        try:  # ext: the host reads a declaration with this same function
            self.extensions = declared_extensions(self.module)
        except ValueError as exc:
            raise RequestError("load_failed", str(exc))

    @staticmethod
    def _load(spec):
        import importlib
        if spec == "stdlib":
            for name in ("socketserver", "SocketServer"):
                try:
                    return importlib.import_module(name), "adapter"
                except ImportError:
                    continue
            raise RequestError("load_failed", "neither socketserver nor SocketServer can be imported")
        if spec.endswith(".py") or os.sep in spec:
            path = os.path.abspath(subject_path(spec))  # others: the subject's file name
            if not os.path.isfile(path):
                raise RequestError("load_failed", "no such file: %s" % path)
            import hashlib
            raw = path if PY2 else path.encode("utf-8", "surrogateescape")  # others: any file name
            name = "_ssconform_impl_" + hashlib.sha1(raw).hexdigest()[:12]
            if PY2:
                import imp
                return imp.load_source(name, path), "file"
            import importlib.util
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return module, "file"
        try:
            return importlib.import_module(spec), "module"
        except Exception as exc:
            failure = exc
        try:  # others: -I, -E or -S hid the kit's PYTHONPATH (reference_impl)
            module = import_from_kit(spec, failure)
        except Exception as exc:
            module, failure = None, exc
        if module is not None:
            return module, "module"
        exc = failure
        raise RequestError("load_failed", "cannot import %r: %s: %s" % (spec, type(exc).__name__, exc))

    def describe(self):
        module = self.module
        if self.spec == "stdlib":
            version = "%s %s" % (platform.python_implementation(), platform.python_version())
        else:
            version = str(getattr(module, "__version__", "unknown"))
        path = host_path(getattr(module, "__file__", None))  # others: as the host names it
        if path and path.endswith((".pyc", ".pyo")):  # Python 2 names the compiled file
            path = path[:-1]
        name = module.__name__.split(".")[-1]
        if self.kind == "adapter":
            name = self.spec
        elif self.kind == "file":  # as the host names a file implementation: its file's stem
            name = os.path.splitext(os.path.basename(self.spec))[0]
        return {"name": name,
                "spec": self.spec, "kind": self.kind, "module": module.__name__,
                "file": path, "version": version,
                "api_version": "%d.%d" % tuple(self.api_version), "extra": {},
                "extensions": self.extensions}


# --------------------------------------------------------------------------- introspection


def signature_of(function):
    """``{"params": [{"name", "kind", "default"?}]}`` or None when it cannot be read."""
    target = getattr(function, "__func__", function)
    params = []
    try:
        signature = getattr(inspect, "signature", None)
        if signature is not None:
            for parameter in signature(target).parameters.values():
                entry = {"name": parameter.name, "kind": parameter.kind.name if hasattr(parameter.kind, "name")
                         else str(parameter.kind)}
                if parameter.default is not parameter.empty:
                    entry["default"] = encode_value(parameter.default)
                params.append(entry)
            return {"params": params}
        spec = inspect.getargspec(target)
    except (TypeError, ValueError):
        return None
    defaults = list(spec.defaults or ())
    first_default = len(spec.args) - len(defaults)
    for index, name in enumerate(spec.args):
        entry = {"name": name, "kind": "POSITIONAL_OR_KEYWORD"}
        if index >= first_default:
            entry["default"] = encode_value(defaults[index - first_default])
        params.append(entry)
    if spec.varargs:
        params.append({"name": spec.varargs, "kind": "VAR_POSITIONAL"})
    if spec.keywords:
        params.append({"name": spec.keywords, "kind": "VAR_KEYWORD"})
    return {"params": params}


def encode_value(value):
    """A plain value as ``{"value": v}``; anything else as ``{"repr": ..., "type": ...}``."""
    if value is None or isinstance(value, (bool, float)) or isinstance(value, string_types):
        return {"value": jsonable(value)}
    if isinstance(value, integer_types):
        return {"value": int(value)}
    if isinstance(value, (tuple, list)) and all(v is None or isinstance(v, (bool, float) + integer_types + string_types)
                                                for v in value):
        return {"value": jsonable(list(value)), "tuple": isinstance(value, tuple)}
    return {"repr": jsonable(repr(value)), "type": type(value).__name__}


def describe_attribute(value):
    if isinstance(value, (staticmethod, classmethod)):
        return {"kind": type(value).__name__, "signature": signature_of(value.__func__)}
    if inspect.isclass(value):
        return {"kind": "class", "name": value.__name__, "module": getattr(value, "__module__", None)}
    if inspect.isfunction(value) or inspect.ismethod(value) or inspect.isbuiltin(value):
        return {"kind": "function", "signature": signature_of(value)}
    if isinstance(value, property):
        return {"kind": "property"}
    if inspect.ismodule(value):
        return {"kind": "module", "name": value.__name__}
    if callable(value):
        return {"kind": "callable", "type": type(value).__name__}
    described = encode_value(value)
    described["kind"] = "value"
    return described


SKIPPED = ("__dict__", "__weakref__", "__module__", "__doc__", "__qualname__")


def describe_class(cls):
    try:
        mro = inspect.getmro(cls)
    except Exception:
        mro = (cls,)
    attrs = {}
    for name, value in list(vars(cls).items()):
        if name in SKIPPED:
            continue
        attrs[name] = describe_attribute(value)
    return {"name": cls.__name__, "module": getattr(cls, "__module__", None),
            "bases": [{"name": b.__name__, "module": getattr(b, "__module__", None)} for b in cls.__bases__],
            "mro": [{"name": c.__name__, "module": getattr(c, "__module__", None)} for c in mro],
            "classic": PY2 and not isinstance(cls, type), "attrs": attrs}


def snapshot(subject):
    module = subject.module
    names = {}
    classes = {}
    for name, value in list(vars(module).items()):
        if name.startswith("__") and name not in ("__all__", "__version__", "__socketserver_api__",
                                                  "__socketserver_extensions__"):
            continue
        names[name] = describe_attribute(value)
        if inspect.isclass(value):
            classes[name] = describe_class(value)
    all_names = getattr(module, "__all__", None)
    return {"module": module.__name__, "file": host_path(getattr(module, "__file__", None)),  # others
            "all": None if all_names is None else [text_type(n) for n in all_names],
            "names": names, "classes": classes, "api_version": subject.api_version,
            "extensions": subject.extensions}


def fingerprint():
    """Interpreter, version, OS and capabilities, in the record's fingerprint shape."""
    import hashlib
    sysname = sys.platform
    osname = sysname
    for prefix, label in (("linux", "linux"), ("win32", "windows"), ("cygwin", "cygwin"), ("darwin", "macos"),
                          ("freebsd", "freebsd"), ("openbsd", "openbsd"), ("netbsd", "netbsd"), ("sunos", "solaris"),
                          ("aix", "aix")):
        if sysname.startswith(prefix):
            osname = label
            break
    reuse_port = False
    if hasattr(socket, "SO_REUSEPORT"):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            reuse_port = True
        except (OSError, socket.error):
            reuse_port = False
        finally:
            probe.close()
    try:
        import resource
        limits = [int(x) if x != resource.RLIM_INFINITY else None for x in resource.getrlimit(resource.RLIMIT_NOFILE)]
    except Exception:
        resource = None
        limits = None
    try:
        import sysconfig
        gil = "disabled" if sysconfig.get_config_var("Py_GIL_DISABLED") else "enabled"
    except Exception:
        gil = "unknown"
    if platform.python_implementation() != "CPython":
        gil = "unknown"
    selectors = None
    try:
        import selectors
    except ImportError:
        pass
    import select
    default_selector = selectors.DefaultSelector.__name__ if selectors is not None else None
    try:
        import multiprocessing
        start = multiprocessing.get_start_method(allow_none=True) if hasattr(multiprocessing, "get_start_method") else None
    except Exception:
        start = None
    if start is None:
        start = "fork" if osname != "windows" and osname != "macos" else "spawn"
    build = " ".join(platform.python_build())
    return {
        "os": osname, "os_release": platform.release(), "os_version": platform.version(),
        "machine": platform.machine(), "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(), "python_build": build, "gil": gil,
        "capabilities": {"fork": hasattr(os, "fork"), "af_unix": hasattr(socket, "AF_UNIX"),
                         "ipv6": bool(getattr(socket, "has_ipv6", False)), "reuse_port": reuse_port,
                         "signals": hasattr(os, "kill") and osname != "windows", "rlimit": resource is not None,
                         "poll": hasattr(select, "poll"), "simulated_absent": []},
        "selector": "PollSelector" if hasattr(select, "poll") else "SelectSelector",
        "default_selector": default_selector, "mp_start_method": start, "rlimit_nofile": limits,
        "hostname_hash": hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:16],
        "ci": None, "executable": sys.executable,
    }


# --------------------------------------------------------------------------- serving


WAIT_NAMES = ("select", "poll", "control", "accept", "recvfrom", "sleep", "wait")


def run_bounded(function, budget, name, decided=None):
    """Call ``function`` in a daemon thread; ``(returned, value, error)`` within ``budget``;
    ``decided``: a predicate that also ends the wait (serve-dead, :func:`wait_decided`)."""
    box = {}

    def target():
        try:
            box["value"] = function()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="ssc-agent:" + name)
    thread.daemon = True
    started = now()
    thread.start()
    if decided is None:
        thread.join(budget)
    else:
        wait_decided(thread, started + budget, decided)
    returned = not thread.is_alive()
    return returned, box.get("value"), box.get("error"), now() - started


def describe_error(exc):
    if exc is None:
        return None
    fields = describe_exception(exc)
    return fields


class Served(object):
    def __init__(self, server, thread, log, behaviour):
        self.server = server
        self.thread = thread
        self.log = log
        self.behaviour = behaviour
        self.serve_error = None


class Servers(object):
    """The servers this agent built, by id."""

    def __init__(self):
        self.served = {}
        self.counter = 0

    def build(self, subject, spec):
        log = EventLog(spec["log"])
        return build_server(subject.module, spec, log), log

    def serve(self, subject, spec):
        spec = native(spec)
        server, log = self.build(subject, spec)
        return self.start(server, log, spec)

    def start(self, server, log, spec):
        """Run ``serve_forever`` of a constructed ``server`` in a thread; its readiness."""
        ready = threading.Event()
        served = Served(server, None, log, spec.get("behaviour"))
        served.fds_before = open_fd_targets()  # the leak check at teardown (port-b)
        poll_interval = spec.get("poll_interval")

        def profile(frame, event, arg):
            name = None
            if event == "call":
                name = frame.f_code.co_name
            elif event == "c_call":
                name = getattr(arg, "__name__", None)
            if name in WAIT_NAMES:
                ready.set()
                sys.setprofile(None)

        def run():
            sys.setprofile(profile)
            try:
                if poll_interval is None:
                    server.serve_forever()
                else:
                    server.serve_forever(poll_interval)
            except BaseException as exc:
                served.serve_error = exc
            finally:
                sys.setprofile(None)
                ready.set()
                log.append(kind="server", event="loop_end")  # port-b: a loop that died is seen at once

        thread = threading.Thread(target=run, name="ssc-agent-serve")
        thread.daemon = True
        served.thread = thread
        thread.start()
        ready.wait(BUDGETS["long"])
        if served.serve_error is not None or not thread.is_alive():
            self._close(served)
            error = served.serve_error
            raise RequestError("serve_failed", "serve_forever ended before its loop ran: %r" % (error,))
        if not ready.is_set():
            self._close(served)
            raise RequestError("timeout", "serve_forever did not reach its selector within %.1fs" % BUDGETS["long"])
        self.counter += 1
        key = "s%d" % self.counter
        self.served[key] = served
        log.append(kind="server", event="ready", pid=os.getpid(), ref=remember(log, server))  # ref: port-b
        address = reply_address(server.server_address)
        return {"server": key, "address": address, "family": spec.get("family") or "inet",
                "pid": os.getpid(), "server_class": type(server).__mro__[1].__name__
                if hasattr(type(server), "__mro__") else spec.get("server_class")}

    @staticmethod
    def _close(served):
        run_bounded(served.server.server_close, BUDGETS["medium"], "server_close")

    def get(self, key):
        served = self.served.get(key)
        if served is None:
            raise RequestError("unknown_server", "no server %r" % (key,))
        return served

    def call(self, key, method, budget):
        served = self.get(key)
        if method not in CALLS:
            raise RequestError("bad_request", "method %r is not in the vocabulary (%s)" % (method, ", ".join(CALLS)))
        function = getattr(served.server, method)
        returned, value, error, duration = run_bounded(function, budget, method)
        return {"returned": returned, "value": jsonable(value), "error": describe_error(error),
                "duration": duration}

    def stop(self, key):
        served = self.served.pop(key, None)
        if served is None:
            raise RequestError("unknown_server", "no server %r" % (key,))
        return self._teardown(served)

    def _teardown(self, served):
        record = {"hung": [], "shutdown": 0.0}
        # None: built, never served (op probe_build, port-b); slow-serve: a loop that already
        # ended (died) is not shut down, as serve_in_thread's teardown does not: shutdown() would
        # wait for a loop that is gone (shutdown_waiters_stuck_on_exception: PIPELINE-009 TIMEOUT)
        if served.thread is not None and served.thread.is_alive():
            returned, _, error, duration = run_bounded(served.server.shutdown, BUDGETS["short"], "shutdown")
            record["shutdown"] = duration
            if not returned:
                record["hung"].append("shutdown()")
            served.thread.join(BUDGETS["short"])
            if served.thread.is_alive():
                record["hung"].append("serve_forever loop")
        forget_refs(served.log)
        returned, _, error, duration = run_bounded(served.server.server_close, BUDGETS["medium"], "server_close")
        record["server_close"] = duration
        if not returned:
            record["hung"].append("server_close()")
        record["leaked_fds"] = fd_leaks(served)  # port-b
        children = getattr(served.server, "active_children", None)
        record["active_children"] = sorted(int(p) for p in children) if children is not None else None
        record["serve_error"] = describe_error(served.serve_error)
        served.log.append(kind="server", event="teardown", error=None)
        return record

    def stop_all(self):
        for key in sorted(self.served):
            try:
                self.stop(key)
            except Exception:
                traceback.print_exc()


#: Server methods a ``call`` request may run.
CALLS = ("shutdown", "server_close", "handle_request", "serve_forever", "fileno", "service_actions",
         "handle_timeout", "server_activate")


# =========================================================================== built servers (BIND, UDP, UNIX: port-a)
#
# A check that constructs a server itself -- to see what the constructor raises (with its
# errno), which hooks it calls, what the socket looks like before and after server_bind(),
# server_activate() and server_close(), or to serve it only after such steps -- asks for it
# through five ops: ``build`` (build_server from a spec; a construction error is a result),
# ``invoke`` (one bounded call of a server method, ``listen()`` optionally recorded),
# ``inspect`` (attributes, socket facts and options), ``serve_built`` (``serve_forever`` on a
# built server) and ``discard`` (teardown or ``server_close``, forget).  For ``--impl`` runs the
# host calls the same functions in its own process (``conformance/tools/lab.py``).


#: Hooks whose ``self.socket`` a build keeps, so its ``fileno()`` after construction is a fact.
CONSTRUCTION_HOOKS = ("server_bind", "server_activate", "server_close")
#: Methods ``invoke`` may call, and the argument vocabulary.
LAB_CALLS = ("server_bind", "server_activate", "server_close", "handle_request", "fileno",
             "shutdown_request", "close_request")
LAB_ARGS = ("none", "own_socket_request")  # own_socket_request: (b"direct", server.socket)
#: SOL_SOCKET options ``inspect`` reads.
SOCKOPTS = ("SO_REUSEADDR", "SO_REUSEPORT", "SO_ACCEPTCONN", "SO_TYPE")


def keep_socket(server, hook, log):
    """A construction hook keeps ``self.socket`` in ``log.seen_sockets`` when the builder
    asked for it (a list there), so its ``fileno()`` after construction can be read."""
    seen = getattr(log, "seen_sockets", None)
    if seen is not None and hook in CONSTRUCTION_HOOKS:
        seen.append(getattr(server, "socket", None))


def spec_address(wanted, directory):
    """A spec's explicit ``address``: ``{"host", "port"}`` or ``{"path"}`` (in ``directory``)."""
    if "path" in wanted:
        return os.path.join(directory, wanted["path"])
    return (wanted["host"], int(wanted["port"]))


def wire_address(address):
    """A socket address as JSON: a tuple as a list, bytes as ``{"bytes": text}``."""
    if isinstance(address, tuple):
        return [wire_address(part) for part in address]
    if isinstance(address, bytes) and not PY2:
        return {"bytes": address.decode("utf-8", "surrogateescape")}
    return jsonable(host_path(address))  # an AF_UNIX path as the host names it (C locale)


def fileno_of(sock):
    """``sock.fileno()``, or the description of what it raised.

    Python 2's ``socket.close()`` swaps the object's ``_sock`` for a ``socket._closedsocket``,
    whose every method raises EBADF: such a socket is reported as -1, what ``fileno()`` of a
    closed socket returns from Python 3 on (Lib/socket.py of 2.7.18: ``_closedsocket``)."""
    closed_type = getattr(socket, "_closedsocket", None)
    if PY2 and closed_type is not None and isinstance(getattr(sock, "_sock", None), closed_type):
        return -1
    try:
        return sock.fileno()
    except Exception as exc:
        return {"error": describe_exception(exc)}


def read_quietly(read):
    """``read()``, or the description of what it raised."""
    try:
        return jsonable(read())
    except Exception as exc:
        return {"error": describe_exception(exc)}


def server_facts(server, attrs=(), sockopts=()):
    """Attributes, ``fileno()``, and the socket's descriptor, family, name and options."""
    sock = getattr(server, "socket", None)
    facts = {"server_address": wire_address(getattr(server, "server_address", None)),
             "server_fileno": fileno_of(server), "attrs": {}, "socket": None}
    for name in attrs:
        facts["attrs"][name] = jsonable(getattr(server, name, None))
    if sock is None:
        return facts
    described = {"fileno": fileno_of(sock), "family": read_quietly(lambda: sock.family),
                 "type": read_quietly(lambda: sock.type), "sockopts": {}}
    try:
        described["getsockname"] = wire_address(sock.getsockname())
    except Exception as exc:
        described["getsockname"] = {"error": describe_exception(exc)}
    for name in sockopts:
        if name not in SOCKOPTS:
            raise RequestError("bad_request", "socket option %r is not in the vocabulary (%s)"
                               % (name, ", ".join(SOCKOPTS)))
        if not hasattr(socket, name):
            described["sockopts"][name] = None
            continue
        try:
            described["sockopts"][name] = sock.getsockopt(socket.SOL_SOCKET, getattr(socket, name))
        except Exception as exc:
            described["sockopts"][name] = {"error": describe_exception(exc)}
    facts["socket"] = described
    return facts


class ListenSpy(object):
    """Stands in for ``server.socket`` and records ``listen`` calls (a socket has
    ``__slots__`` on Python 3: its methods cannot be patched on the instance)."""

    def __init__(self, sock, calls):
        self._sock = sock
        self._calls = calls

    def listen(self, *args):
        self._calls.append(list(args))
        return self._sock.listen(*args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def call_spying_listen(server, call):
    """``call(server)`` with ``server.socket`` replaced by a :class:`ListenSpy` meanwhile;
    ``(listen calls, what call returned)``.  The socket is put back whatever happens."""
    calls = []
    real = server.socket
    server.socket = ListenSpy(real, calls)
    try:
        result = call(server)
    finally:
        server.socket = real
    return calls, result


def lab_error(exc):
    """``describe_exception`` of what a built server raised, and whether it is an OSError
    (``EnvironmentError``: on Python 2 that includes ``socket.error`` and ``IOError``)."""
    if exc is None:
        return None
    described = describe_exception(exc)
    described["os_error"] = isinstance(exc, EnvironmentError)
    return described


def lab_args(server, args):
    if args in (None, "none"):
        return ()
    if args == "own_socket_request":
        return ((b"direct", server.socket),)
    raise RequestError("bad_request", "args %r are not in the vocabulary (%s)" % (args, ", ".join(LAB_ARGS)))


def socket_fds():
    """The descriptors of this process that are sockets (None where /proc or /dev/fd is absent)."""
    targets = open_fd_targets()
    if targets is None:
        return None
    return sorted(fd for fd, target in targets.items() if "socket" in target)


def plain_construction(module, class_name, directory):
    """What constructing ``class_name`` plainly (a fresh loopback address or socket path, the
    ``BaseRequestHandler``) raises, described; None when it constructs."""
    base = AGENT_ENV.server_class(module, class_name)
    if "Unix" in class_name:
        address = os.path.join(directory, "plain")
    else:
        address = ("127.0.0.1", 0)
    try:
        server = base(address, module.BaseRequestHandler)
    except Exception as exc:
        return describe_exception(exc)
    for close in (server.server_close, server.socket.close):
        try:
            close()
        except Exception:
            pass
    if "Unix" in class_name:
        try:
            os.unlink(address)
        except OSError:
            pass
    return None


def _read_for_respond(io, how):
    if how == "datagram":
        return io.datagram()
    if how == "line":
        return io.readline()
    if how == "eof":
        data = bytearray()
        for _ in iter_bounded(MAX_ITERATIONS):
            chunk = io.recv(65536)
            if not chunk:
                break
            data += chunk
        return bytes(data)
    return b""


def meet(log, request, count, budget, poll):
    """A rendezvous of ``count`` handlers through the event log (``arrive`` events): True when
    all arrived within ``budget`` (like ``threading.Barrier(count).wait(budget)``, across
    processes too)."""
    log.append(kind="arrive", request=request)
    deadline = now() + budget
    for _ in iter_bounded(MAX_ITERATIONS):
        if len([e for e in log.read() if e.get("kind") == "arrive"]) >= count:
            return True
        if now() >= deadline:
            return False
        time.sleep(poll)
    return False


REPLIES = ("echo", "fixed", "length", "prefix", "none")


def _respond(h, io, opts):
    """Read (``read``: ``datagram`` ``line`` ``eof`` ``none``; default: the datagram, or nothing
    on a stream), optionally meet ``meet`` handlers, log a ``respond`` event (client address, peer
    name, size, the first 200 bytes in hex, thread name), then reply (``reply``: ``echo``,
    ``fixed`` ``text``, ``length`` ``len=N``, ``prefix`` ``text`` + data, ``none``)."""
    log = h._ssc_log
    data = _read_for_respond(io, opts.get("read") or ("datagram" if io.dgram else "none"))
    peer = None
    if not io.dgram:
        try:
            peer = wire_address(io.sock.getpeername())
        except Exception as exc:
            peer = {"error": describe_exception(exc)}
    met = None
    if opts.get("meet"):
        env = h._ssc_env
        met = meet(log, h._ssc_request, int(opts["meet"]), float(opts.get("meet_timeout") or env.budget("short")),
                   env.budget("poll"))
    log.append(kind="respond", request=h._ssc_request, client_address=wire_address(h.client_address),
               peername=peer, nbytes=len(data), head=binascii.hexlify(data[:200]).decode("ascii"),
               thread=threading.current_thread().name, met=met)
    reply = opts.get("reply", "echo")
    text = (opts.get("text") or "").encode("utf-8")
    if reply not in REPLIES:
        raise h._ssc_env.error("bad_spec", "reply %r is not in the vocabulary (%s)" % (reply, ", ".join(REPLIES)))
    if reply == "none":
        return
    out = {"echo": data, "fixed": text, "length": ("len=%d" % len(data)).encode("ascii"),
           "prefix": text + data}[reply]
    io.send(out)


BEHAVIOURS["respond"] = _respond


class Built(object):
    def __init__(self, server, log, spec):
        self.server = server
        self.log = log
        self.spec = spec
        self.served = None  # the key of serve_built's Served


class Lab(object):
    """The built servers of this agent, by key (``b1``, ``b2`` ...)."""

    def __init__(self, servers):
        self.servers = servers
        self.built = {}
        self.counter = 0

    def get(self, key):
        try:
            return self.built[key]
        except (KeyError, TypeError):
            raise RequestError("unknown_server", "no built server %r" % (key,))

    def build(self, subject, spec, budget):
        spec = native(spec)
        log = EventLog(spec["log"])
        spec = dict(spec, behaviour=spec.get("behaviour") or "noop")
        wanted = spec.get("address") or {}
        if "like" in wanted:
            address = self.get(wanted["like"]).server.server_address
            spec["address"] = {"path": address} if isinstance(address, string_types) else {
                "host": address[0], "port": address[1]}
        AGENT_ENV.server_class(subject.module, spec.get("server_class"))  # missing_class as a refusal
        log.seen_sockets = []
        del INJECTED[:]
        before = socket_fds() if spec.get("count_fds") else None
        returned, server, error, _ = run_bounded(lambda: build_server(subject.module, spec, log), budget,
                                                 "constructor")
        if not returned:
            raise RequestError("timeout", "%s(...) did not return within %.1fs" % (spec["server_class"], budget))
        if isinstance(error, RequestError):
            raise error
        result = {"server": None, "error": lab_error(error),
                  "injected": bool(error is not None and any(error is exc for exc in INJECTED)),
                  "hook_sockets": [fileno_of(sock) for sock in log.seen_sockets if sock is not None],
                  "new_socket_fds": None, "plain_error": None}
        del INJECTED[:]
        if before is not None and error is not None:
            after = socket_fds()
            result["new_socket_fds"] = sorted(set(after) - set(before)) if after is not None else None
        if error is not None and spec.get("checked"):
            result["plain_error"] = plain_construction(subject.module, spec["server_class"], spec["directory"])
        log.seen_sockets = None
        if server is not None:
            self.counter += 1
            key = "b%d" % self.counter
            self.built[key] = Built(server, log, spec)
            result["server"] = key
        return result

    def invoke(self, key, method, args, spy_listen, budget):
        built = self.get(key)
        if method not in LAB_CALLS:
            raise RequestError("bad_request", "method %r is not in the vocabulary (%s)"
                               % (method, ", ".join(LAB_CALLS)))
        arguments = lab_args(built.server, args)

        def call(server):
            return run_bounded(lambda: getattr(server, method)(*arguments), budget, method)

        listened = None
        if spy_listen:
            listened, outcome = call_spying_listen(built.server, call)
        else:
            outcome = call(built.server)
        returned, value, error, duration = outcome
        return {"returned": returned, "value": jsonable(value), "error": lab_error(error),
                "duration": duration, "listen_calls": listened}

    def inspect(self, key, attrs, sockopts):
        return server_facts(self.get(key).server, attrs or (), sockopts or ())

    def serve(self, key):
        built = self.get(key)
        if built.served is not None:
            raise RequestError("bad_request", "built server %r is already served" % (key,))
        ready = self.servers.start(built.server, built.log, built.spec)
        built.served = ready["server"]
        ready["address"] = wire_address(built.server.server_address)  # bytes stay bytes
        return ready

    def discard(self, key, budget):
        built = self.built.pop(key, None)
        if built is None:
            raise RequestError("unknown_server", "no built server %r" % (key,))
        if built.served is not None and built.served in self.servers.served:
            return self.servers.stop(built.served)
        returned, _, error, duration = run_bounded(built.server.server_close, budget, "server_close")
        return {"hung": [] if returned else ["server_close()"], "server_close": duration,
                "error": lab_error(error)}

    def discard_all(self):
        for key in sorted(self.built):
            try:
                self.discard(key, BUDGETS["short"])
            except Exception:
                traceback.print_exc()


# =========================================================================== the loop


# --------------------------------------------------------------------------- the bench (port-c)
#
# SERVE, SHUTDOWN and THREADING checks drive one server's methods themselves:
# handle_request() with a timeout, serve_forever() several times, shutdown()
# before or after the loop, server_close() while a handler runs.  A *bench
# server* is built from a spec (``bench_build``) without being served; its
# hooks record named events (kind "record", the names of the checks'
# recorder: "service_actions", "handler", "hold" ...) with the subject's
# clock and thread; ``bench_start`` runs one of its methods in a thread of
# its own, which counts the selector waits the call makes (one per loop
# iteration, as harness.serving.servers.LoopCounter does) and notes when it
# first calls a function named ``wait`` (shutdown() waiting for the loop);
# ``bench_wait`` waits, bounded, for that call to end, wait or reach a count
# of waits, and reports it.

#: What a bench handler does after recording "handler" (conformance/tools/handlers.py ACTIONS).
BENCH_ACTIONS = ("returns", "replies", "echoes_to_eof", "waits_for_release", "shuts_down", "reads_replies",
                 "shuts_down_replies", "raises_on_request")
#: What a recorded bench hook does: record and call the implementation's ("record"), the
#: same recording the calling thread's token and id(request) ("record_request"), record
#: that only ("record_only"), return BENCH_SENTINEL ("sentinel"), just call it ("call").
BENCH_HOOK_ACTIONS = ("record", "record_request", "record_only", "sentinel", "call",
                      "close_on_release")  # ext: service_actions closes the server once released
#: Methods bench_start may run.
BENCH_METHODS = ("handle_request", "serve_forever", "shutdown", "server_close", "fileno", "__enter__", "__exit__")
#: Hooks a bench spec may record beyond the builder's HOOKS.
BENCH_EXTRA_HOOKS = ("server_close",)


class BenchMarker(Exception):
    """The exception a bench ``__exit__`` call is given (SHUTDOWN-009)."""
#: Exceptions a waits_for_release handler may raise after its release.
BENCH_EXCEPTIONS = {"SystemExit": SystemExit, "ValueError": ValueError}
BENCH_SELECT_CALLS = ("select", "poll", "control")
BENCH_WAIT_CALLS = ("select", "poll", "control", "accept", "_accept", "recvfrom", "recvfrom_into", "sleep", "wait")
#: Weak references to the threads reads_replies handlers ran in, by event log path (THREADING-008).
BENCH_THREADS = {}
#: The value a handle_timeout hook with the action "sentinel" returns.
BENCH_SENTINEL = ["bench sentinel"]


def bench_record(log, name, **info):
    return log.append(kind="record", name=name, **info)


def bench_released(log):
    return any(e.get("kind") == "record" and e.get("name") == "release" for e in log.read())


def bench_thread_facts():
    """conformance/tools/handlers.py thread_facts(): a token per Thread object, name, daemon, main."""
    thread = threading.current_thread()
    token = getattr(thread, "_ssc_token", None)
    if token is None:
        token = thread._ssc_token = binascii.hexlify(os.urandom(8)).decode("ascii")
    return {"token": token, "thread_name": thread.name, "daemon": thread.daemon,
            "main": isinstance(thread, threading._MainThread)}


def bench_handler(module, log, action, options):
    if action not in BENCH_ACTIONS:
        raise RequestError("bad_spec", "unknown bench action %r; known: %s" % (action, ", ".join(BENCH_ACTIONS)))
    opts = dict(options or {})
    exc_name = opts.get("exc")
    if exc_name is not None and exc_name not in BENCH_EXCEPTIONS:
        raise RequestError("bad_spec", "unknown exception %r; known: %s" % (exc_name, ", ".join(BENCH_EXCEPTIONS)))

    def handle(self):
        bench_record(log, "handler", client_address=repr(self.client_address))
        if action == "replies":
            self.request.sendall(opts.get("reply", "reply").encode("utf-8"))
        elif action == "echoes_to_eof":
            self.request.settimeout(BUDGETS["short"])
            data = bytearray()
            for _ in iter_bounded(10000):
                chunk = self.request.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.request.sendall(bytes(data))
        elif action == "waits_for_release":
            bench_record(log, "hold")
            deadline = now() + BUDGETS["short"]
            held = False
            for _ in iter_bounded(MAX_ITERATIONS):
                held = bench_released(log)
                if held or now() >= deadline:
                    break
                time.sleep(BUDGETS["poll"])
            bench_record(log, "handler_done", released=held)
            if exc_name is not None:
                raise BENCH_EXCEPTIONS[exc_name](opts.get("message", "bench handler"))
        elif action == "shuts_down":
            self.server.shutdown()
            bench_record(log, "shutdown_returned")
        elif action == "shuts_down_replies":
            self.request.recv(64)
            returned, _, error, _ = run_bounded(self.server.shutdown, BUDGETS["short"], "shutdown")
            result = "hung" if not returned else ("returned" if error is None else repr(error))
            bench_record(log, "shutdown_result", result=result)
            self.request.sendall(result.encode("utf-8"))
        elif action == "raises_on_request":
            payload = self.request.recv(64)
            bench_record(log, "handler_request", token=bench_thread_facts()["token"], request=id(self.request),
                         payload=payload.decode("latin-1"))
            if payload == b"raise":
                raise ValueError("handler failed on purpose")
            self.request.sendall(b"ok")
        elif action == "reads_replies":
            import weakref
            BENCH_THREADS.setdefault(log.path, []).append(weakref.ref(threading.current_thread()))
            bench_record(log, "handler_thread", **bench_thread_facts())
            self.request.recv(64)
            self.request.sendall(b"ok")

    base = module.BaseRequestHandler
    return subclass(base, "BenchHandler_" + action, {"handle": handle, "__module__": __name__})


def bench_hook(base, hook, action, log, fail_accept):
    original = getattr(base, hook, None)
    if original is None:
        return None  # this version has no such hook (service_actions before 3.3): nothing calls it
    state = {"left": int((fail_accept or {}).get("count", 0))}
    runs = list((fail_accept or {}).get("then") or [])  # ext: further runs of failures, each after a success

    def method(self, *args):
        if hook == "get_request" and runs and state["left"] <= 0:  # ext
            found = method_body(self, *args)
            state["left"] = int(runs.pop(0))  # returned: the next run of failures starts
            return found
        return method_body(self, *args)

    def method_body(self, *args):
        if hook == "get_request" and state["left"] > 0:
            state["left"] -= 1
            if fail_accept.get("accept_first"):
                request = original(self)[0]
                request.close()
            bench_record(log, "accept_failed")
            raise socket.error(int(fail_accept["errno"]), "simulated accept() failure")
        if action == "sentinel":
            return BENCH_SENTINEL  # instead of the implementation's (SERVE-002)
        if action == "close_on_release":  # ext: the loop's own call closes the server (EXT-004)
            bench_record(log, hook)
            if not state.get("closed") and bench_released(log):
                state["closed"] = True
                self.server_close()
                bench_record(log, "closed")
        if action == "record":
            bench_record(log, hook)
        elif action in ("record_request", "record_only"):
            bench_record(log, hook, token=bench_thread_facts()["token"], request=id(args[0]) if args else None)
            if action == "record_only":
                return None
        return original(self, *args)

    method.__name__ = hook
    return method


class BenchCall(object):
    """One method of a bench server running in a thread of its own (see above)."""

    def __init__(self, function, args, name, owner=None):
        self.owner = owner
        self.function = function
        self.args = args
        self.lock = threading.Condition()
        self.done = False
        self.value = None
        self.error = None
        self.started = None
        self.ended = None
        self.waits = 0
        self.waiting = False
        self.ident = None
        self.thread = threading.Thread(target=self.run, name="ssc-agent-bench:" + name)
        self.thread.daemon = True

    def profile(self, frame, event, arg):
        if event == "c_call":
            name = getattr(arg, "__name__", "")
            owner = getattr(arg, "__self__", None)
            if name == "poll" and (owner is None or inspect.ismodule(owner)):
                return  # select.poll() makes a poll object (PyPy: no __self__); its .poll() method waits
            caller = frame
        elif event == "call":
            name = frame.f_code.co_name
            caller = frame.f_back
        else:
            return
        if name == "wait" and not self.waiting:
            with self.lock:
                self.waiting = True
                self.lock.notify_all()
        if name in BENCH_SELECT_CALLS and not inside_wait(caller, BENCH_WAIT_CALLS):
            with self.lock:
                self.waits += 1
                self.lock.notify_all()

    def run(self):
        self.ident = threading.current_thread().ident
        sys.setprofile(self.profile)
        self.started = now()
        try:
            self.value = self.function(*self.args)
        except BaseException as exc:
            self.error = exc
        finally:
            sys.setprofile(None)
            with self.lock:
                self.ended = now()
                self.done = True
                self.lock.notify_all()

    def reached(self, until):
        if self.done:
            return True
        if until.get("waiting") and self.waiting:
            return True
        return until.get("waits") is not None and self.waits >= int(until["waits"])

    def state(self, until, budget):
        deadline = now() + budget
        with self.lock:
            for _ in iter_bounded(MAX_ITERATIONS):
                remaining = deadline - now()
                if self.reached(until) or remaining <= 0:
                    break
                self.lock.wait(min(remaining, 0.05))
            return {"done": self.done, "waiting": self.waiting, "waits": self.waits,
                    "value": jsonable(self.value), "sentinel": self.value is BENCH_SENTINEL,
                    "is_server": self.owner is not None and self.value is self.owner,
                    "error": describe_error(self.error), "error_class": type(self.error).__name__
                    if self.error is not None else None,
                    "error_mro": [c.__name__ for c in inspect.getmro(type(self.error))]
                    if self.error is not None else None, "started": self.started, "ended": self.ended,
                    "thread": {"ident": self.ident, "name": self.thread.name},
                    "clock": now()}  # agentwin: "running for a window" is judged on this clock


class Bench(object):
    """Bench servers and their calls, by id."""

    def __init__(self):
        self.servers = {}
        self.calls = {}
        self.counter = 0

    def build(self, subject, spec):
        spec = native(spec)
        module = subject.module
        class_name = spec.get("server_class") or "TCPServer"
        base = AGENT_ENV.server_class(module, class_name)
        log = EventLog(spec["log"])
        namespace = dict(spec.get("attrs") or {})
        namespace["__module__"] = __name__
        fail_accept = spec.get("fail_accept")
        hooks = dict(spec.get("hooks") or {})
        if fail_accept:
            hooks.setdefault("get_request", "call")
        for hook, action in sorted(hooks.items()):
            if hook not in HOOKS + BENCH_EXTRA_HOOKS or action not in BENCH_HOOK_ACTIONS:
                raise RequestError("bad_spec", "bench hook %r/%r is not in the vocabulary" % (hook, action))
            method = bench_hook(base, hook, action, log, fail_accept)
            if method is not None:
                namespace[hook] = method
        family = spec.get("family") or ("unix" if "Unix" in class_name else "inet")
        if family == "inet6":
            namespace.setdefault("address_family", socket.AF_INET6)
        cls = subclass(base, "Bench" + class_name, namespace)
        handler = bench_handler(module, log, spec.get("action") or "returns", spec.get("action_options"))
        server = cls(AGENT_ENV.address(family, spec.get("directory")), handler)
        if spec.get("socket_timeout") is not None:
            server.socket.settimeout(float(spec["socket_timeout"]))
        self.counter += 1
        key = "b%d" % self.counter
        self.servers[key] = server
        address = server.server_address
        if isinstance(address, bytes) and not PY2:
            address = address.decode("utf-8", "surrogateescape")
        elif not isinstance(address, tuple):
            address = host_path(address)  # an AF_UNIX path as the host names it
        return {"server": key, "address": list(address) if isinstance(address, tuple) else address,
                "pid": os.getpid()}

    def start(self, key, method, args):
        server = self.servers.get(key)
        if server is None:
            raise RequestError("unknown_server", "no bench server %r" % (key,))
        if method not in BENCH_METHODS:
            raise RequestError("bad_request", "bench method %r is not in the vocabulary (%s)"
                               % (method, ", ".join(BENCH_METHODS)))
        args = tuple(native(args or []))
        if method == "__exit__":  # an exception leaving a with block
            args = (BenchMarker, BenchMarker("bench __exit__"), None)
        call = BenchCall(getattr(server, method), args, method, owner=server)
        self.counter += 1
        ident = "c%d" % self.counter
        self.calls[ident] = call
        call.thread.start()
        return {"call": ident}

    def wait(self, ident, until, budget):
        call = self.calls.get(ident)
        if call is None:
            raise RequestError("unknown_server", "no bench call %r" % (ident,))
        return call.state(dict(until or {}), min(float(budget), BUDGETS["long"]))

    def socket_fileno(self, key):
        server = self.servers.get(key)
        if server is None:
            raise RequestError("unknown_server", "no bench server %r" % (key,))
        try:
            return {"fileno": server.socket.fileno(), "error": None}
        except (OSError, socket.error) as exc:  # Python 2: a closed socket's fileno() raises EBADF
            return {"fileno": None, "error": describe_error(exc),
                    "error_class": type(exc).__name__, "error_mro": [c.__name__ for c in inspect.getmro(type(exc))]}

    def has(self, key, name):
        server = self.servers.get(key)
        if server is None:
            raise RequestError("unknown_server", "no bench server %r" % (key,))
        return {"has": hasattr(server, native(name))}

    def forget(self, key):
        """Drop a server (the host closed it with bench_start server_close, or abandons it)."""
        server = self.servers.pop(key, None)
        if server is not None:
            run_bounded(server.server_close, BUDGETS["short"], "server_close")
        return {}



def reply_address(address):
    """A served server's address in a reply: a tuple as a list, bytes as text, an AF_UNIX path
    as the host names it (host_path)."""
    if isinstance(address, tuple):
        return list(address)
    if isinstance(address, bytes) and not PY2:
        return address.decode("utf-8", "surrogateescape")
    return host_path(address)


def spec_of(request, op):
    """The ``spec`` object of a request that builds a server: every such op needs one with a log path."""
    spec = request.get("spec")
    if not isinstance(spec, dict) or "log" not in spec:
        raise RequestError("bad_spec", "%s needs a spec object with a log path" % op)
    return spec


def inside_wait(frame, names):
    """Whether ``frame`` or one of its few callers is itself a wait call (one of ``names``): a
    selector's own ``poll()`` inside ``select()`` is one wait, not two.  The host's loop counter
    (harness.serving.servers.LoopCounter) uses this same function."""
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_code.co_name in names:
            return True
        frame = frame.f_back
    return False


class Agent(object):
    def __init__(self, channel):
        self.channel = channel
        self.subject = None
        self.servers = Servers()
        self.bench = Bench()  # port-c
        self.lab = Lab(self.servers)  # built servers (BIND, UDP, UNIX: port-a)

    def hello(self):
        return {"event": "hello", "protocol": PROTOCOL, "agent": AGENT, "pid": os.getpid(), "clock": CLOCK,
                "python": {"implementation": platform.python_implementation(),
                           "version": platform.python_version(), "executable": sys.executable},
                "ops": sorted(OPS)}

    def need_subject(self):
        if self.subject is None:
            raise RequestError("not_loaded", "send load first")
        return self.subject

    def op_ping(self, request):
        return {"clock": now()}

    def op_load(self, request):
        request = native(request)
        for name, value in (request.get("budgets") or {}).items():
            if name in BUDGETS:
                BUDGETS[name] = float(value)
        impl = request.get("impl") or "stdlib"
        if not isinstance(impl, string_types):
            raise RequestError("bad_request", "impl must be a string")
        self.subject = Subject(impl)
        return self.subject.describe()

    def op_snapshot(self, request):
        return snapshot(self.need_subject())

    def op_fingerprint(self, request):
        return fingerprint()

    def op_serve(self, request):
        return self.servers.serve(self.need_subject(), spec_of(request, "serve"))

    def op_call(self, request):
        budget = float(request.get("budget") or BUDGETS["short"])
        return self.servers.call(request.get("server"), request.get("method"), budget)

    def op_stop_server(self, request):
        return self.servers.stop(request.get("server"))

    # SERVE, SHUTDOWN, THREADING (port-c): the bench
    def op_bench_build(self, request):
        return self.bench.build(self.need_subject(), spec_of(request, "bench_build"))

    def op_bench_start(self, request):
        return self.bench.start(request.get("server"), request.get("method"), request.get("args"))

    def op_bench_wait(self, request):
        return self.bench.wait(request.get("call"), request.get("until"), request.get("wait") or 0)

    def op_bench_fileno(self, request):
        return self.bench.socket_fileno(request.get("server"))

    def op_bench_record(self, request):
        info = request.get("info") or {}
        bench_record(EventLog(native(request.get("log"))), native(request.get("name")), **native(info))
        return {"clock": now()}

    def op_bench_threads(self, request):
        """The reads_replies handler threads of a log: how many, still alive, still referenced
        after a gc.collect() (``collect``)."""
        import gc
        refs = BENCH_THREADS.get(native(request.get("log")), [])
        if request.get("collect"):
            gc.collect()
        threads = [ref() for ref in refs]
        return {"count": len(refs), "alive": sum(1 for t in threads if t is not None and t.is_alive()),
                "retained": sum(1 for t in threads if t is not None)}

    def op_bench_hasattr(self, request):
        return self.bench.has(request.get("server"), request.get("name"))

    def op_bench_forget(self, request):
        return self.bench.forget(request.get("server"))
    # ----------------------------------------------------------- built servers (BIND, UDP, UNIX: port-a)

    def op_build(self, request):
        return self.lab.build(self.need_subject(), spec_of(request, "build"), float(request.get("bound") or BUDGETS["short"]))

    def op_invoke(self, request):
        return self.lab.invoke(request.get("server"), request.get("method"), request.get("args"),
                               bool(request.get("spy_listen")), float(request.get("bound") or BUDGETS["short"]))

    def op_inspect(self, request):
        return self.lab.inspect(request.get("server"), native(request.get("attrs")), native(request.get("sockopts")))

    def op_serve_built(self, request):
        return self.lab.serve(request.get("server"))

    def op_discard(self, request):
        return self.lab.discard(request.get("server"), float(request.get("bound") or BUDGETS["short"]))

    #: exception types an op lets through instead of replying with them: none in an agent; in
    #: the host's process (harness.serving.spec_server.LocalAgent) the harness's own verdicts
    #: raised inside the implementation's call (a refusal of a function known not to return),
    #: which must reach the check's grading as themselves, not as the implementation's error
    passthrough = ()

    def dispatch(self, request):
        ident = request.get("id")
        op = request.get("op")
        handler = getattr(self, "op_" + op, None) if isinstance(op, string_types) and op in OPS else None
        try:
            if handler is None:
                raise RequestError("unknown_op", "unknown op %r; known: %s" % (op, ", ".join(sorted(OPS))))
            result = handler(request)
        except self.passthrough:  # in the host's process only (see passthrough)
            raise
        except RequestError as exc:
            return {"event": "reply", "id": ident, "ok": False,
                    "error": {"code": exc.code, "message": exception_text(exc), "type": "RequestError"}}
        except Exception as exc:
            return {"event": "reply", "id": ident, "ok": False,
                    "error": {"code": "exception", "type": type(exc).__name__, "message": exception_text(exc)[:2000],
                              "traceback": traceback.format_exc()[-4000:]}}
        return {"event": "reply", "id": ident, "ok": True, "result": result}

    def run(self, stdin):
        for _ in iter_bounded(MAX_REQUESTS):
            line = stdin.readline()
            if not line or line.strip() == b"stop":
                return "stop" if line else "stdin closed"
            if not line.strip():
                continue
            try:
                request = json.loads(line.decode("utf-8"))
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                self.channel.send({"event": "reply", "id": None, "ok": False,
                                   "error": {"code": "bad_request", "type": "ValueError",
                                             "message": "not a JSON object: %s" % exc}})
                continue
            if request.get("op") == "bye":
                self.channel.send({"event": "reply", "id": request.get("id"), "ok": True, "result": {}})
                return "bye"
            self.channel.send(self.dispatch(request))
        return "too many requests"



# =========================================================================== SERVE, SHUTDOWN, THREADING, FORKING (port-c)
#
# The forking lab: ``EXE agent.py --lab SPEC``, the subject's copy of
# conformance/children/forking_lab.py (its docstring is the theory; the
# events and the ready/teardown lines are the same, so the FORKING checks
# read either).  A forking server in a single-threaded process of the
# subject interpreter, apart from the host's clients: serve_forever (or a
# handle_request loop) runs in the main thread; os.waitpid is wrapped to
# log every reaped child with its exit status; close_request,
# shutdown_request and handle_error log the calling pid; service_actions
# logs each change of active_children and stops the loop (raises _LabStop)
# once stdin is readable; SIGINT raises _LabStop while serving (for a loop
# that never runs service_actions); an interval timer bounds the process.

LAB_SPEC_VERSION = 1
LAB_FOREIGN_STATUS = 7
LAB_EXIT_OK, LAB_EXIT_ERROR, LAB_EXIT_LIFETIME = 0, 2, 4


class _LabStop(BaseException):
    """Raised from service_actions (or SIGINT) to leave serve_forever, like Ctrl-C."""


def lab_exitcode(status):
    """``os.waitstatus_to_exitcode``, which Python before 3.9 lacks."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return None


def lab_stdin_readable(timeout=0.0):
    import select
    try:
        readable = select.select([sys.stdin], [], [], timeout)[0]
    except (OSError, ValueError, select.error):
        return True
    return bool(readable)


def lab_children(server):
    children = getattr(server, "active_children", None)
    return None if children is None else sorted(int(pid) for pid in children)


def lab_load(spec):
    """The implementation a lab in the agent serves: ``(module, api_version)``."""
    subject = Subject(spec["impl"])
    return subject.module, subject.api_version


#: slow-serve: the event the lab sends when its loop raised (the parent may end its check)
LAB_LOOP_ERROR = "loop_error"


def lab_serve(spec, send, proto_fd=None, load=lab_load, env=AGENT_ENV, log=None, guard=None):
    """Serve ``spec`` as the forking lab; the exit status.  The host's lab
    (conformance/children/forking_lab.py) runs this same function with its own
    ``load`` (the kit's adapters), ``env`` (harness.serving.instrument.HOST), ``log``
    and ``guard`` (a function giving a precondition the parent found, or None)."""
    import signal
    log = EventLog(spec["log"]) if log is None else log
    serving = [False]

    def on_stop_signal(signum, frame):
        if serving[0]:
            serving[0] = False
            raise _LabStop()

    signal.signal(signal.SIGINT, on_stop_signal)  # ignored unless serve_forever runs
    original_waitpid = os.waitpid
    original_fork = os.fork

    # fork-wait: every blocking waitpid() of the lab process is logged at its start and its end
    # ("waiting"/"waited", numbered), and the thread that serves is logged ("serving", below): a
    # check then sees at once a loop that cannot serve again before a held handler ends
    # (conformance/tools/forking_lab.py, loop_stuck)
    lab_process = os.getpid()
    blocking_waits = [0]

    def waitpid(pid, options):
        wait = None
        if not options & os.WNOHANG and os.getpid() == lab_process:
            blocking_waits[0] += 1
            wait = blocking_waits[0]
            log.append(kind="waiting", requested=pid, wait=wait)
        try:
            result = original_waitpid(pid, options)
        finally:
            if wait is not None:
                log.append(kind="waited", wait=wait)
        if result[0]:
            log.append(kind="reaped", child=result[0], requested=pid, exitcode=lab_exitcode(result[1]))
        return result

    def fork():  # Python < 3.7 has no os.register_at_fork: the child drops the protocol pipe here
        pid = original_fork()
        if pid == 0:
            try:
                os.close(proto_fd)
            except OSError:
                pass
        return pid

    os.waitpid = waitpid
    if proto_fd is not None and not hasattr(os, "register_at_fork"):
        os.fork = fork
    foreign = None
    if spec.get("foreign_child"):
        import select
        read_end, write_end = os.pipe()
        foreign = original_fork()
        if foreign == 0:  # the foreign child: exits at once, stays a zombie until reaped
            os._exit(LAB_FOREIGN_STATUS)
        os.close(write_end)
        if select.select([read_end], [], [], env.budget("short"))[0]:
            os.read(read_end, 1)
        os.close(read_end)
        log.append(kind="foreign", child=foreign)

    module, api = load(spec)
    lab_pid = os.getpid()
    class_name = spec["server_class"]
    base = env.server_class(module, class_name)
    handler_base_name = spec.get("handler_base") or default_handler_base(class_name)
    handler = instrumented(getattr(module, handler_base_name), spec["behaviour"], log, spec.get("options"), env)
    last = ["unset"]
    steal = [bool(spec.get("steal_first_child"))]

    def close_request(self, request):
        log.append(kind="call", method="close_request")
        return base.close_request(self, request)

    def shutdown_request(self, request):
        log.append(kind="call", method="shutdown_request")
        return base.shutdown_request(self, request)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        log.append(kind="call", method="handle_error", exc_type=type(exc).__name__ if exc else None)

    def steal_first(self):
        if steal[0]:
            current = lab_children(self)
            if current:  # reap the first child behind the server's back
                steal[0] = False
                pid, status = original_waitpid(current[0], 0)
                log.append(kind="stolen", child=pid, exitcode=lab_exitcode(status))

    def log_children(self):
        state = lab_children(self)
        if state != last[0]:
            last[0] = state
            log.append(kind="children", active=state)

    def service_actions(self):
        steal_first(self)
        base.service_actions(self)
        log_children(self)
        if lab_stdin_readable():
            raise _LabStop()

    def fileno(self):
        if os.getpid() == lab_pid and lab_stdin_readable():
            raise _LabStop()
        return base.fileno(self)

    forked = [0]  # slow-serve: requests this lab's server forked for (handle_request mode)

    def process_request(self, request, client_address):
        if os.getpid() == lab_pid:
            forked[0] += 1
        base.process_request(self, request, client_address)
        steal_first(self)
        log_children(self)

    def collect_children(self, *args, **kwargs):
        # FORKING-014 judges a collect_children() after the steal: it needs to know one ran
        log.append(kind="call", method="collect_children")
        return base.collect_children(self, *args, **kwargs)

    namespace = {"close_request": close_request, "shutdown_request": shutdown_request,
                 "handle_error": handle_error}
    if hasattr(base, "collect_children"):
        namespace["collect_children"] = collect_children
    if hasattr(base, "service_actions"):
        namespace["service_actions"] = service_actions
        # slow-serve: active_children is also observed after each fork, so FORKING-012/014 see
        # it without service_actions() (SERVE-005's), e.g. a loop that runs it only after requests
        namespace["process_request"] = process_request
    else:
        # Python 2's serve_forever has no service_actions (it came in 3.3, bpo-11109), so
        # nothing reaps while idle: the lab observes active_children after each fork
        # instead, and notices the stop request when the loop's select() asks for the
        # listening descriptor (serve_forever mode only; SIGINT remains the fallback)
        namespace["process_request"] = process_request
        if spec.get("mode", "serve_forever") == "serve_forever":
            namespace["fileno"] = fileno
    namespace.update(spec.get("attrs") or {})
    family = spec.get("family") or ("unix" if "Unix" in class_name else "inet")
    if family == "inet6":
        namespace.setdefault("address_family", socket.AF_INET6)
    server = env.construct(module, class_name, base, handler, env.address(family, spec["directory"]), namespace, True)
    log_children(server)  # the state before the first fork (slow-serve: not only from service_actions)
    log.append(kind="server", event="ready")
    log.append(kind="serving")  # fork-wait: this thread serves (loop_stuck)
    address = server.server_address
    # coll-bind: wire_address, so a bytes path arrives as bytes (it arrived as the text "b'/path'")
    send(event="ready", address=wire_address(address), pid=os.getpid(), foreign=foreign, api=list(api))

    error = None
    try:
        if spec.get("mode", "serve_forever") == "serve_forever":
            serving[0] = True
            try:
                server.serve_forever(env.budget("poll"))
            finally:
                serving[0] = False
        else:
            # slow-serve: handle_request() until ``requests`` were handled, bounded in calls and
            # time: one call may handle several (SERVE-009's) or none (SERVE-001's), and FORKING-010/013
            # judge max_children, not that
            deadline = time.time() + env.budget("short")
            for _ in range(int(spec.get("requests", 1)) * 1000):
                if forked[0] >= int(spec.get("requests", 1)) or time.time() > deadline:
                    break
                server.handle_request()
            if spec.get("final_timeout") is not None:  # one more call, meant to time out
                server.timeout = float(spec["final_timeout"])
                log.append(kind="server", event="final_request", active=lab_children(server))
                server.handle_request()
            log.append(kind="server", event="handled", active=lab_children(server))
            lab_stdin_readable(float(spec["lifetime"]))
    except _LabStop:
        pass
    except BaseException as exc:  # reported, then the teardown still runs
        error = "%s: %s" % (type(exc).__name__, exc)
        # slow-serve: told at once (server_close() may wait for held children first)
        send(event=LAB_LOOP_ERROR, error=error)
    log.append(kind="server_close", edge="start", active=lab_children(server))
    close_error = None
    try:
        server.server_close()
    except BaseException as exc:
        close_error = "%s: %s" % (type(exc).__name__, exc)
    log.append(kind="server_close", edge="end", active=lab_children(server))
    active_after_close = lab_children(server)
    for pid in active_after_close or ():  # slow-serve: children neither serving nor server_close()
        try:  # reaped (an exited one is a zombie): the lab reaps them, logged with their exit status
            waitpid(pid, os.WNOHANG)
        except OSError:
            pass
    foreign_state = None
    if foreign is not None:
        try:
            status = original_waitpid(foreign, 0)[1]
            foreign_state = {"reaped_by_lab": True, "exitcode": lab_exitcode(status)}
        except OSError:  # ECHILD: someone else reaped it
            foreign_state = {"reaped_by_lab": False, "exitcode": None}
    send(event="teardown", error=error, close_error=close_error, active_children=active_after_close,
         foreign=foreign_state, precondition=guard() if guard is not None else None)
    return LAB_EXIT_OK if error is None and close_error is None else LAB_EXIT_ERROR


def lab_main(argument):
    """``agent.py --lab SPEC``: one forking lab (see above); exits with os._exit."""
    import signal
    proto_fd = take_stdout()
    channel = Channel(proto_fd)

    def send(**fields):
        channel.send(fields)

    code = LAB_EXIT_ERROR
    try:
        spec = native(json.loads(argument))
        if spec.get("version") != LAB_SPEC_VERSION:
            raise ValueError("lab spec version %r, expected %d" % (spec.get("version"), LAB_SPEC_VERSION))
        for name, value in (spec.get("budgets") or {}).items():
            if name in BUDGETS:
                BUDGETS[name] = float(value)
        signal.signal(signal.SIGALRM, lambda *_: os._exit(LAB_EXIT_LIFETIME))
        signal.setitimer(signal.ITIMER_REAL, float(spec["lifetime"]))
        code = lab_serve(spec, send, proto_fd)
    except RequestError as exc:
        send(event="error", exc_type="UnsupportedFeature" if exc.code == "unsupported" else "RequestError",
             error=text_type(exc), capability="af_unix" if exc.code == "unsupported" else None,
             code=exc.code, precondition=None)
    except BaseException as exc:
        send(event="error", exc_type=type(exc).__name__, error=text_type(exc), capability=None,
             precondition=None, traceback=traceback.format_exc()[-2000:])
    sys.stderr.flush()
    os._exit(code)


OPS = ("ping", "load", "snapshot", "fingerprint", "serve", "call", "stop_server", "bye",
       # SERVE, SHUTDOWN, THREADING (port-c)
       "bench_build", "bench_start", "bench_wait", "bench_fileno", "bench_forget", "bench_record",
       "bench_threads", "bench_hasattr")
OPS += ("build", "invoke", "inspect", "serve_built", "discard")  # built servers (BIND, UDP, UNIX: port-a)


# =========================================================================== HANDLER, PIPELINE, DISCONNECT (port-b)
#
# The vocabulary of the HANDLER, PIPELINE and DISCONNECT checks, whose handlers
# observe themselves and whose hooks observe the request pipeline.
#
# * A *probe* handler (spec field ``probe``) runs, in each of ``setup``,
#   ``handle`` and ``finish``, a list of *steps* (:data:`PROBE_STEPS`: read a
#   line, write, close wfile, raise, read a fact such as ``gettimeout()``...),
#   or the base class's method when the probe names none.  ``{"first": [...],
#   "rest": [...]}`` gives the first request of the server other steps than
#   the later ones.  Every method call (``kind: "call"``/``"call_end"``) and
#   every step (``kind: "step"``, its ``value`` or exception) is an event.
#   ``"function": true`` makes the handler a plain function (any callable is
#   a RequestHandlerClass).
# * Observing hook actions (:data:`PROBE_HOOK_ACTIONS`) record each call with
#   its arguments *described* (:func:`describe_value`: bytes as hex, sockets
#   with fileno, name and peer, any object with ``ref`` = its ``id()``), and
#   ``handle_error`` with ``sys.exc_info()``; then call the implementation's
#   method, or return a fixed value, or capture what it prints.
# * Ops: ``probe_build`` (a server built from a spec, not served),
#   ``probe_invoke`` (a server method with arguments, values or ``{"ref": id}``
#   of an object described before, bounded), ``ref_call`` (``fileno()``... of a described
#   object), ``join`` (wait, bounded, for a served loop to end), ``run_handler``
#   (a probe handler instantiated directly on a datagram request, no server).
#
# Identity ("handle_error got the request the handler got") is compared by
# ``ref``: the objects stay referenced (:data:`REFS`) until their server stops.

#: described objects by log path, then id(), kept alive until their server stops
REFS = {}
#: sockets a probe keeps open past its request (``dup``), closed when the server stops
KEPT = {}
REFS_LOCK = threading.Lock()


def remember(log, value):
    with REFS_LOCK:
        REFS.setdefault(log.path, {})[id(value)] = value
    return id(value)


def forget_refs(log):
    with REFS_LOCK:
        REFS.pop(log.path, None)
        kept = KEPT.pop(log.path, [])
    for sock in kept:
        try:
            sock.close()
        except Exception:
            pass


def lookup_ref(log, ref):
    with REFS_LOCK:
        found = REFS.get(log.path, {})
        if ref not in found:
            raise RequestError("bad_request", "no object with ref %r" % (ref,))
        return found[ref]


def data_out(data):
    """Bytes (every ``str`` on Python 2) as JSON: ``{"hex": ...}``."""
    return {"hex": binascii.hexlify(bytes(data)).decode("ascii")}


def _attempt(function):
    try:
        return function()
    except Exception as exc:
        return {"exception": type(exc).__name__}


def describe_value(value, log=None, server=None, depth=0):
    """A JSON description of ``value``: plain values as they are, bytes as
    ``{"hex": ...}``, sequences as lists, exceptions with their type, and
    any other object as ``{"ref": id, "type"}`` (sockets also with
    ``fileno``, ``name``, ``peer``; ``is_server_socket`` when it is
    ``server.socket``)."""
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, integer_types):
        return int(value)
    if isinstance(value, (bytes, bytearray)):
        return data_out(value)
    if isinstance(value, text_type):
        return jsonable(value)
    if isinstance(value, (tuple, list)) and depth < 4:
        return [describe_value(item, log, server, depth + 1) for item in list(value)[:16]]
    if isinstance(value, BaseException):
        fields = describe_exception(value)
        fields["message"] = jsonable(text_type(value) if not PY2 else str(value))
        fields["ref"] = remember(log, value) if log is not None else id(value)
        return {"exception": fields}
    described = {"ref": remember(log, value) if log is not None else id(value), "type": type(value).__name__}
    if server is not None and value is getattr(server, "socket", None):
        described["is_server_socket"] = True
    if hasattr(value, "recv") and hasattr(value, "fileno"):
        described["socket"] = True
        described["fileno"] = describe_value(_attempt(value.fileno))
        described["name"] = describe_value(_attempt(value.getsockname)) if hasattr(value, "getsockname") else None
        described["peer"] = describe_value(_attempt(value.getpeername)) if hasattr(value, "getpeername") else None
    return described


class Boom(Exception):
    """A handler's ordinary exception, raised on purpose."""


#: What the ``raise`` step may raise, by name.
PROBE_EXCEPTIONS = {"Boom": Boom, "ValueError": ValueError, "SystemExit": SystemExit,
                    "KeyboardInterrupt": KeyboardInterrupt}


def _probe_state(h):
    state = getattr(h, "_ssc_state", None)
    if state is None:
        state = {"reads": []}
        h._ssc_state = state
    return state


def _budget(value):
    if isinstance(value, string_types):
        return BUDGETS[value]
    return value


def _step_read(h, data):
    _probe_state(h)["reads"].append(data)
    return data_out(data)


def _step_base(h, arg, base):
    try:
        base()
    finally:
        for name in (arg or {}).get("after", ()):
            h._ssc_log.append(kind="fact", fact=name, value=PROBE_FACTS[name](h))
    return None


def _step_pattern(size):
    return bytes(bytearray(range(256))) * (int(size) // 256)


def _step_textio(h, text):
    import io as io_module
    wrapper = io_module.TextIOWrapper(h.wfile, encoding="utf-8", write_through=True)
    try:
        written = wrapper.write(text_type(text))
        wrapper.flush()
    finally:
        wrapper.detach()  # wfile is finish()'s to close
    return written


def _step_dup(h, arg):
    with REFS_LOCK:
        KEPT.setdefault(h._ssc_log.path, []).append(h.request.dup())


def _step_raise(h, arg):
    raise PROBE_EXCEPTIONS[arg.get("type", "Boom")](arg.get("message", "raised on purpose"))


def _step_wrap_wfile(h, arg):
    h.wfile = RecordingWriter(h.wfile, h._ssc_log)


def _step_select(h, arg):
    import select
    readable, _, _ = select.select([h.request], [], [], BUDGETS["short"])
    return bool(readable)


class RecordingWriter(object):
    """Stands in for ``wfile``: logs write/flush/close and their exceptions (``kind: "wfile"``), changes nothing."""

    def __init__(self, inner, log):
        self._inner = inner
        self._log = log

    @property
    def closed(self):
        return self._inner.closed

    def _call(self, name, *args):
        try:
            value = getattr(self._inner, name)(*args)
        except BaseException as exc:
            self._log.append(kind="wfile", call=name, **describe_exception(exc))
            raise
        self._log.append(kind="wfile", call=name, exc=None, exc_type=None)
        return value

    def write(self, data):
        return self._call("write", data)

    def flush(self):
        return self._call("flush")

    def close(self):
        return self._call("close")

    def __getattr__(self, name):
        return getattr(self._inner, name)


def brepr(data):
    """``repr`` of bytes as Python 3 writes it (``b'...'``), also on Python 2."""
    text = repr(bytes(data))
    return "b" + text if PY2 and not text.startswith("b") else text


def _disconnect_send(log, rid, label, send):
    try:
        count = send()
    except EnvironmentError as exc:
        log.append(kind="send", request=rid, label=label, role="subject", **describe_exception(exc))
        return exc
    log.append(kind="send", request=rid, label=label, role="subject", nbytes=count, exc=None, exc_type=None)
    return None


def _text_bytes(text):
    return text if PY2 else text.encode("latin-1")


def _step_disconnect_stream(h, arg, base):
    """The DISCONNECT observer (harness.clients.disconnect) of a stream request: the first
    request (the *subject*) records each read until EOF or an error, replies twice, then
    re-raises the read error as a naive handler would; later ones (*probes*) echo."""
    log = h._ssc_log
    role = "subject" if h._ssc_index == 1 else "probe"
    rid = "%s-%x" % (role, id(h))
    sock = h.request
    sock.settimeout(BUDGETS["medium"])
    log.append(kind="start", request=rid, role=role)
    if role == "probe":
        for _ in iter_bounded(1000):
            data = sock.recv(65536)
            if not data:
                return None
            sock.sendall(data)
        return None
    first = None
    if arg["scenario"] == "unread_close":
        _disconnect_send(log, rid, "greeting", lambda: sock.send(_text_bytes(arg["greeting"])))
    if arg["scenario"] == "partial_send":
        try:
            line = h.rfile.readline(65536)
        except EnvironmentError as exc:
            log.append(kind="recv", request=rid, role=role, via="rfile.readline", **describe_exception(exc))
            first = exc
        else:
            log.append(kind="recv", request=rid, role=role, via="rfile.readline", result=brepr(line),
                       nbytes=len(line), line_complete=line.endswith(b"\n"), exc=None, exc_type=None)
    else:
        for index in iter_bounded(1000):
            try:
                data = sock.recv(65536)
            except EnvironmentError as exc:
                log.append(kind="recv", request=rid, role=role, index=index, **describe_exception(exc))
                first = exc
                break
            log.append(kind="recv", request=rid, role=role, index=index, result=brepr(data), nbytes=len(data),
                       exc=None, exc_type=None)
            if not data:
                break
    for label in ("send", "send_again"):  # after the disconnect the server tries to reply, twice
        if _disconnect_send(log, rid, label, lambda: sock.send(_text_bytes(arg["reply"]))) is not None:
            break
    log.append(kind="handler_end", request=rid, role=role, raising=type(first).__name__ if first else None)
    if first is not None:
        raise first
    return None


def _step_disconnect_dgram(h, arg, base):
    """The DISCONNECT observer of a datagram: the subject waits (bounded) until the host says
    its client is gone, then replies to the dead port; probes echo."""
    log = h._ssc_log
    role = "subject" if h._ssc_index == 1 else "probe"
    rid = "%s-%x" % (role, id(h))
    data, sock = h.request
    log.append(kind="start", request=rid, role=role)
    log.append(kind="recv", request=rid, role=role, result=brepr(data[:200]), nbytes=len(data),
               client=repr(h.client_address), exc=None, exc_type=None)
    if role == "probe":
        sock.sendto(data, h.client_address)
        return None
    if not log.wait_released("dead-port", BUDGETS["short"]):
        log.append(kind="release_timeout", request=rid)
    error = _disconnect_send(log, rid, "send", lambda: sock.sendto(_text_bytes(arg["reply"]), h.client_address))
    log.append(kind="handler_end", request=rid, role=role)
    if error is not None:
        raise error
    return None


def _step_backlog_observer(h, arg, base):
    """DISCONNECT-006's handler: a client the host named dead (``kind: "dead_client"``
    events) is observed until EOF or an error, which is re-raised; others are echoed."""
    log = h._ssc_log
    dead = [tuple(e.get("address") or ()) for e in log.read() if e.get("kind") == "dead_client"]
    address = tuple(h.client_address) if isinstance(h.client_address, (tuple, list)) else h.client_address
    role = "dead" if address in dead else "probe"
    sock = h.request
    sock.settimeout(BUDGETS["short"])
    log.append(kind="start", role=role, client=repr(h.client_address))
    for _ in iter_bounded(1000):
        try:
            data = sock.recv(65536)
        except EnvironmentError as exc:
            log.append(kind="recv", role=role, **describe_exception(exc))
            raise  # a naive handler: the server's handle_error runs
        log.append(kind="recv", role=role, result=brepr(data), exc_type=None)
        if not data:
            return None
        if role == "probe":
            sock.sendall(data)
    return None


#: step name -> function(handler, argument, base method) -> a described value (or None).
PROBE_STEPS = {
    "base": _step_base,  # the base class's setup()/finish(); arg {"after": [fact...]} read even if it raised
    "recv": lambda h, n, base: _step_read(h, h.request.recv(int(n or 65536))),
    "sendall": lambda h, text, base: h.request.sendall(text.encode("latin-1") if not PY2 else text),
    "readline": lambda h, arg, base: _step_read(h, h.rfile.readline()),
    "read": lambda h, arg, base: _step_read(h, h.rfile.read()),
    "write": lambda h, text, base: describe_value(h.wfile.write(text.encode("latin-1") if not PY2 else text)),
    "write_pattern": lambda h, size, base: describe_value(h.wfile.write(_step_pattern(size))),
    "write_reads": lambda h, sep, base: describe_value(h.wfile.write(
        (sep.encode("latin-1") if not PY2 else sep).join(_probe_state(h)["reads"]))),
    "close_wfile": lambda h, arg, base: h.wfile.close(),
    "settimeout": lambda h, budget, base: h.request.settimeout(_budget(budget)),
    "sndbuf": lambda h, size, base: h.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, int(size)),
    "wait_release": lambda h, token, base: h._ssc_log.wait_released(token, BUDGETS["short"]),
    "readable": lambda h, arg, base: _step_select(h, arg),
    "raise": lambda h, arg, base: _step_raise(h, arg or {}),
    "fact": lambda h, name, base: PROBE_FACTS[name](h),
    "textio": lambda h, text, base: describe_value(_step_textio(h, text)),
    "dup": lambda h, arg, base: _step_dup(h, arg),
    "wrap_wfile": lambda h, arg, base: _step_wrap_wfile(h, arg),
    "disconnect_stream": _step_disconnect_stream,  # arg {"scenario", "greeting", "reply"}
    "disconnect_dgram": _step_disconnect_dgram,  # arg {"reply"}
    "backlog_observer": _step_backlog_observer,
}


def _fact_attributes(h):
    missing = object()
    found = {}
    for name in ("request", "client_address", "server"):
        value = getattr(h, name, missing)
        found[name] = {"absent": True} if value is missing else describe_value(value, h._ssc_log)
    return found


def _fact_file(h, name):
    import io as io_module
    handle = getattr(h, name)
    fields = {"type": type(handle).__name__, "buffered_io": isinstance(handle, io_module.BufferedIOBase),
              "bytesio": isinstance(handle, io_module.BytesIO),
              "closed": describe_value(_attempt(lambda: handle.closed))}
    if name == "wfile":
        fields["writable"] = describe_value(_attempt(handle.writable)) if hasattr(handle, "writable") else None
        fields["fileno_matches"] = describe_value(_attempt(lambda: handle.fileno() == h.request.fileno()))
    return fields


def _fact_datagram_request(h):
    request = h.request
    is_pair = isinstance(request, tuple) and len(request) == 2
    return {"is_tuple": is_pair, "data": data_out(request[0]) if is_pair else None,
            "socket_is_server_socket": bool(is_pair and request[1] is getattr(h.server, "socket", None))}


#: fact name -> function(handler) -> a described value.
PROBE_FACTS = {
    "attributes": _fact_attributes,
    "peer": lambda h: describe_value(h.request.getpeername()),
    "gettimeout": lambda h: describe_value(h.request.gettimeout()),
    "nodelay": lambda h: describe_value(h.request.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)),
    "rfile": lambda h: _fact_file(h, "rfile"),
    "wfile": lambda h: _fact_file(h, "wfile"),
    "wfile_closed": lambda h: describe_value(_attempt(lambda: h.wfile.closed)),
    "datagram_request": _fact_datagram_request,
}

#: Class attributes a probe may set on its handler class.
PROBE_ATTRS = ("rbufsize", "wbufsize", "timeout", "disable_nagle_algorithm")


def _parse_steps(steps):
    parsed = []
    for step in steps or ():
        name, arg = (step, None) if isinstance(step, string_types) else (step[0], step[1] if len(step) > 1 else None)
        if name not in PROBE_STEPS or (name == "fact" and arg not in PROBE_FACTS):
            raise RequestError("bad_spec", "probe step %r is not in the vocabulary (%s; facts %s)"
                               % (step, ", ".join(sorted(PROBE_STEPS)), ", ".join(sorted(PROBE_FACTS))))
        parsed.append((name, arg))
    return parsed


def _parse_method(entry):
    if entry is None:
        return None
    if isinstance(entry, dict):  # a role the probe does not name runs the base class's method
        return dict((key, None if entry.get(key) is None else _parse_steps(entry[key])) for key in ("first", "rest"))
    steps = _parse_steps(entry)
    return {"first": steps, "rest": steps}


def probe_handler(handler_base, probe, log):
    """The handler class (or function) a ``probe`` spec describes (see the block's comment)."""
    if not isinstance(probe, dict):
        raise RequestError("bad_spec", "probe must be an object")
    methods = dict((name, _parse_method(probe.get(name))) for name in ("setup", "handle", "finish"))
    counter = [0]
    lock = threading.Lock()

    def index_of(h):
        index = getattr(h, "_ssc_index", None)
        if index is None:
            with lock:
                counter[0] += 1
                index = counter[0]
            h._ssc_index = index
        return index

    def run(h, method, base):
        index = index_of(h)
        h._ssc_log = log
        log.append(kind="call", at=method, request=index)
        entry = methods.get(method)
        try:
            chosen = None if entry is None else entry["first" if index == 1 else "rest"]
            if chosen is None:
                base()
            else:
                for name, arg in chosen:
                    try:
                        value = PROBE_STEPS[name](h, arg, base)
                    except BaseException as exc:
                        log.append(kind="step", at=method, request=index, step=name, exc_ref=id(exc),
                                   **describe_exception(exc))
                        raise
                    log.append(kind="step", at=method, request=index, step=name, arg=arg, value=value,
                               exc=None, exc_type=None)
        except BaseException as exc:
            log.append(kind="call_end", at=method, request=index, **describe_exception(exc))
            raise
        log.append(kind="call_end", at=method, request=index, exc=None, exc_type=None)

    if probe.get("function"):
        class Bare(object):
            pass

        def handler(sock, address, owner):  # positional use only: the documented names are not required
            h = Bare()
            h.request, h.client_address, h.server = sock, address, owner
            log.append(kind="function", args=[describe_value(a, log) for a in (sock, address, owner)])
            run(h, "handle", lambda: None)

        return handler

    def setup(self):
        run(self, "setup", lambda: handler_base.setup(self))

    def handle(self):
        run(self, "handle", lambda: handler_base.handle(self))

    def finish(self):
        run(self, "finish", lambda: handler_base.finish(self))

    namespace = {"setup": setup, "handle": handle, "finish": finish, "__module__": __name__}
    for name, value in (probe.get("attrs") or {}).items():
        if name not in PROBE_ATTRS:
            raise RequestError("bad_spec", "probe attribute %r is not one of %s" % (name, ", ".join(PROBE_ATTRS)))
        namespace[name] = _budget(value)
    return subclass(handler_base, "Probe%s" % handler_base.__name__, namespace)


#: Hook actions that observe: each call is logged (``kind: "hook"``, arguments
#: described, ``exc_info`` in handle_error) and its end (``kind: "hook_end"``).
#: ``observe`` then calls the implementation's method; ``observe_quiet`` returns
#: None without calling it; ``observe_accept``/``observe_deny`` return True/False;
#: ``observe_capture`` calls it with sys.stdout/sys.stderr captured (the texts are
#: in ``hook_end``); ``fail_once`` (get_request) accepts, closes the connection and
#: raises ``socket.error(ECONNABORTED)`` on its first call, then calls through;
#: ``hold_once`` waits (bounded) for a release with the hook's name as token on its
#: first call, then calls through (e.g. a connection reset while still in the backlog).
PROBE_HOOK_ACTIONS = ("observe", "observe_quiet", "observe_accept", "observe_deny", "observe_capture", "fail_once",
                      "hold_once")


def _observed_by_probe_hook(server, hook, original, args):  # pragma: no cover - never called
    raise AssertionError("hook_wrapper builds observing hooks with probe_hook")


HOOK_ACTIONS.update((name, _observed_by_probe_hook) for name in PROBE_HOOK_ACTIONS)


class Capture(object):
    def __init__(self):
        self.parts = []

    def write(self, text):
        if isinstance(text, bytes) and not isinstance(text, str):
            text = text.decode("utf-8", "replace")
        self.parts.append(text)

    def flush(self):
        pass

    def lines(self):
        """The text as lines (an event field is clipped, a list of lines keeps them): at most 64."""
        text = "".join(part if isinstance(part, str) else part.encode("utf-8") for part in self.parts) \
            if PY2 else "".join(self.parts)
        lines = text.splitlines()
        return lines if len(lines) <= 64 else lines[:32] + lines[-32:]


def probe_hook(base, hook, action, log):
    original = getattr(base, hook)
    state = {"failed": False}

    def wrapper(self, *args):
        fields = {"args": [describe_value(a, log, self) for a in args]}
        if hook == "handle_error":
            info = sys.exc_info()
            fields["exc_info"] = {"type": info[0].__name__ if info[0] is not None else None,
                                  "ref": id(info[1]) if info[1] is not None else None,
                                  "traceback": info[2] is not None,
                                  "os_error": isinstance(info[1], EnvironmentError)}
        log.append(kind="hook", hook=hook, action=action, **fields)
        capture = None
        try:
            if action == "observe_quiet":
                value = None
            elif action == "observe_accept":
                value = True
            elif action == "observe_deny":
                value = False
            elif action == "observe_capture":
                capture = (Capture(), Capture(), sys.stdout, sys.stderr)
                sys.stdout, sys.stderr = capture[0], capture[1]
                try:
                    value = original(self, *args)
                finally:
                    sys.stdout, sys.stderr = capture[2], capture[3]
            elif action == "hold_once" and not state["failed"]:
                state["failed"] = True
                log.append(kind="hold", hook=hook)
                log.append(kind="release_seen", hook=hook, released=log.wait_released(hook, BUDGETS["short"]))
                value = original(self, *args)
            elif action == "fail_once" and not state["failed"]:
                state["failed"] = True
                value = original(self, *args)
                value[0].close()
                import errno as errno_module
                raise socket.error(errno_module.ECONNABORTED, "injected accept failure")
            else:
                value = original(self, *args)
        except BaseException as exc:
            extra = {"stdout": capture[0].lines(), "stderr": capture[1].lines()} if capture else {}
            log.append(kind="hook_end", hook=hook, **dict(describe_exception(exc), **extra))
            raise
        extra = {"stdout": capture[0].lines(), "stderr": capture[1].lines()} if capture else {}
        log.append(kind="hook_end", hook=hook, value=describe_value(value, log, self), exc=None, exc_type=None,
                   **extra)
        return value

    wrapper.__name__ = hook
    return wrapper


#: Server methods an ``invoke`` request may run (with arguments).
INVOKE_METHODS = CALLS + ("get_request", "verify_request", "process_request", "finish_request",
                          "shutdown_request", "close_request")
#: Methods ``ref_call`` may run on a described object.
REF_METHODS = ("fileno", "getpeername", "getsockname", "close")


def _argument(log, value):
    if isinstance(value, dict) and "ref" in value:
        return lookup_ref(log, value["ref"])
    if isinstance(value, list):
        return tuple(_argument(log, item) for item in value)
    return value


def open_fd_targets():
    """This process's open descriptors -> what they point to (None: unknown), as the kit's leak check."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(directory):
            break
    else:
        return None
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    found = {}
    for name in names:
        if name.isdigit():
            try:
                found[int(name)] = os.readlink(os.path.join(directory, name))
            except OSError:
                continue  # closed since the listing (the listing's own descriptor)
    return found


def fd_leaks(served):
    """Descriptors opened while the server lived and still open after its server_close()."""
    before = getattr(served, "fds_before", None)
    if before is None:
        return []
    after = open_fd_targets() or {}
    if any(before.get(fd) != after[fd] for fd in after):
        # coll-handler: counted again after a collection, as the host's teardown does
        # (harness.serving.servers._new_fds): a socket only garbage holds is no leak
        import gc
        gc.collect()
        after = open_fd_targets() or {}
    return ["%d -> %s" % (fd, after[fd]) for fd in sorted(after) if before.get(fd) != after[fd]]


def _op_probe_build(self, request):
    spec = native(spec_of(request, "probe_build"))
    servers = self.servers
    server, log = servers.build(self.need_subject(), spec)
    servers.counter += 1
    key = "s%d" % servers.counter
    servers.served[key] = Served(server, None, log, spec.get("behaviour"))
    servers.served[key].fds_before = open_fd_targets()
    ref = remember(log, server)
    log.append(kind="server", event="built", ref=ref, pid=os.getpid())
    address = reply_address(server.server_address)
    return {"server": key, "address": address, "family": spec.get("family") or "inet", "pid": os.getpid(),
            "server_class": spec.get("server_class"), "ref": ref}


def _op_probe_invoke(self, request):
    served = self.servers.get(request.get("server"))
    method = request.get("method")
    if method not in INVOKE_METHODS:
        raise RequestError("bad_request", "method %r is not in the vocabulary (%s)"
                           % (method, ", ".join(INVOKE_METHODS)))
    args = [_argument(served.log, native(a)) for a in (request.get("args") or [])]
    function = getattr(served.server, method)
    limit = float(request.get("limit") or BUDGETS["short"])
    until = request.get("until")
    decided = hook_calls_reached(served.log, native(until)) if until else None  # serve-dead
    returned, value, error, duration = run_bounded(lambda: function(*args), limit, method, decided)
    answer = {"returned": returned, "value": describe_value(value, served.log, served.server),
              "error": describe_value(error, served.log) if error is not None else None, "duration": duration}
    if decided is not None:
        answer["decided"] = not returned and decided()
    return answer


# --------------------------------------------------------------------------- serve-dead: decisive waits
# ``probe_invoke`` with ``until`` = ``{"hook": name, "calls": n}``: the call is waited for until
# it returns, its ``limit`` passes, or the server's log holds ``n`` calls of the hook ``name``
# (``kind="hook"`` events) -- an observation that already decides the check (PIPELINE-004: a
# second get_request() in one handle_request() is a retry instead of the return the clause
# asks for); the answer's ``decided`` says that the wait ended on it.


def hook_calls_reached(log, until):
    """A predicate: ``log`` holds ``until["calls"]`` (default 1) calls of the hook ``until["hook"]``."""
    def reached():
        calls = [e for e in log.read() if e.get("kind") == "hook" and e.get("hook") == until.get("hook")]
        return len(calls) >= int(until.get("calls") or 1)
    return reached


def wait_decided(thread, deadline, decided):
    """Join ``thread`` until ``deadline`` (the agent's clock) or until ``decided()``, polled."""
    for _ in iter_bounded(MAX_ITERATIONS):
        left = deadline - now()
        if left <= 0 or not thread.is_alive() or decided():
            return
        thread.join(min(left, BUDGETS["poll"]))


def _op_ref_call(self, request):
    served = self.servers.get(request.get("server"))
    method = request.get("method")
    if method not in REF_METHODS:
        raise RequestError("bad_request", "method %r is not one of %s" % (method, ", ".join(REF_METHODS)))
    target = lookup_ref(served.log, request.get("ref"))
    if method == "fileno":
        found = fileno_of(target)
        if isinstance(found, dict):
            return {"value": None, "error": {"exception": found["error"]}}
        return {"value": found, "error": None}
    try:
        return {"value": describe_value(getattr(target, method)()), "error": None}
    except Exception as exc:
        return {"value": None, "error": describe_value(exc)}


def _op_join(self, request):
    served = self.servers.get(request.get("server"))
    if served.thread is not None:
        served.thread.join(float(request.get("limit") or BUDGETS["short"]))
    ended = served.thread is None or not served.thread.is_alive()
    error = served.serve_error
    return {"ended": ended, "serve_error": describe_value(error, served.log) if error is not None else None}


def _op_run_handler(self, request):
    """A handler class built from a probe, instantiated directly on a datagram request
    ``(data, socket)`` -- no server (``server`` is None) -- bounded."""
    spec = native(request.get("spec") or {})
    if "log" not in spec:
        raise RequestError("bad_spec", "run_handler needs a spec with a log path")
    module = self.need_subject().module
    base_name = spec.get("handler_base") or "DatagramRequestHandler"
    base = getattr(module, base_name, None)
    if base is None:
        raise RequestError("missing_class", "%s has no %s" % (module.__name__, base_name))
    log = EventLog(spec["log"])
    handler = probe_handler(base, spec.get("probe") or {}, log)
    data = binascii.unhexlify(native(request.get("data") or ""))
    client = tuple(native(request.get("client")))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        name = sock.getsockname()
        returned, _, error, duration = run_bounded(lambda: handler((data, sock), client, None),
                                                   float(request.get("limit") or BUDGETS["short"]), "handler")
    finally:
        sock.close()
        forget_refs(log)
    return {"returned": returned, "socket_name": describe_value(name),
            "error": describe_value(error) if error is not None else None, "duration": duration}


Agent.op_probe_build = _op_probe_build
Agent.op_run_handler = _op_run_handler
Agent.op_probe_invoke = _op_probe_invoke
Agent.op_ref_call = _op_ref_call
Agent.op_join = _op_join
OPS = OPS + ("probe_build", "probe_invoke", "ref_call", "join", "run_handler")


# =========================================================================== EXT: declared extensions (ext)
#
# The EXT checks verify promises an implementation declares beyond the contract
# (harness/core/extensions.toml).  Here: how a module declares them (the host's
# harness.core.extensions reads a declaration with this same function, then checks
# the names against its vocabulary), and two controls of the process the
# implementation runs in, in-process the check's own (the host calls these same
# functions), through the agent the subject's:
#
# * ``ext_socketpair`` (EXT-002): ``socket.socketpair`` raises EMFILE until switched
#   back, as when the process has no descriptors left for a pair;
# * ``ext_lateness_start`` / ``ext_lateness_result`` (EXT-001..003): a control thread
#   sleeps the given pauses one after another; how much later than their sum it woke
#   is the scheduler lateness of this process while the check ran, which the check's
#   timing window includes, so that load alone cannot decide an outcome.

#: The module attribute an implementation declares its extensions with.
EXTENSIONS_ATTRIBUTE = "__socketserver_extensions__"


def declared_extensions(module):
    """The names ``module.__socketserver_extensions__`` declares, sorted (empty when
    absent): any iterable of names, not a string (ValueError)."""
    names = getattr(module, EXTENSIONS_ATTRIBUTE, None)
    if names is None:
        return []
    if isinstance(names, string_types + (bytes,)):
        raise ValueError("%s.%s: declare a set of names, not the string %r"
                         % (getattr(module, "__name__", module), EXTENSIONS_ATTRIBUTE, names))
    return sorted(set(text_type(name) for name in names))


SOCKETPAIR = {"original": None}


def fail_socketpair(on):
    """While ``on``: ``socket.socketpair()`` of this process raises EMFILE; off: the original
    again.  Returns whether it was failing before."""
    was = SOCKETPAIR["original"] is not None
    if on and not was:
        SOCKETPAIR["original"] = getattr(socket, "socketpair", None)

        def socketpair(*args, **kwargs):
            raise socket.error(errno.EMFILE, "simulated: too many open files (socketpair)")

        socket.socketpair = socketpair
    elif not on and was:
        original = SOCKETPAIR["original"]
        SOCKETPAIR["original"] = None
        if original is None:
            del socket.socketpair
        else:
            socket.socketpair = original
    return was


class Lateness(object):
    """A control thread sleeping ``pauses`` one after another, started at once;
    :meth:`result` is how much later than their sum it woke (seconds, >= 0)."""

    def __init__(self, pauses):
        self.pauses = [float(p) for p in pauses][:1000]
        self.late = []
        self.thread = threading.Thread(target=self.run, name="ssc-ext:lateness")
        self.thread.daemon = True
        self.thread.start()

    def run(self):
        start = now()
        for pause in self.pauses:
            time.sleep(pause)
        self.late.append(max(0.0, now() - start - sum(self.pauses)))

    def result(self, wait):
        """The lateness, or None when the control has not woken within ``wait`` seconds."""
        self.thread.join(max(0.0, float(wait)))
        return round(self.late[0], 4) if self.late else None


def simulate_absent(environ=None):
    """``SSCONFORM_SIMULATE_ABSENT`` naming ``poll``: this process's ``selectors`` has no
    ``PollSelector`` and ``select`` no ``poll`` (EXT-004's select variants: CPython and the
    reference choose their selector when imported, so only a fresh process takes the
    ``SelectSelector`` path), as conformance/children/no_poll.py does in a host child."""
    absent = (environ if environ is not None else os.environ).get("SSCONFORM_SIMULATE_ABSENT", "")
    if "poll" not in [name.strip() for name in absent.split(",")]:
        return
    import select
    try:
        import selectors
    except ImportError:  # Python 2: SocketServer calls select.select itself
        selectors = None
    for module, name in ((selectors, "PollSelector"), (select, "poll")):
        if module is not None and hasattr(module, name):
            delattr(module, name)


#: Lateness controls by key, and how many were started.
LATENESS = {}
LATENESS_STARTED = [0]


def _op_ext_socketpair(self, request):
    return {"was_failing": fail_socketpair(bool(request.get("fail")))}


def _op_ext_lateness_start(self, request):
    pauses = request.get("pauses")
    if not isinstance(pauses, list) or not all(isinstance(p, (int, float)) and 0 <= p <= 60 for p in pauses):
        raise RequestError("bad_request", "pauses must be a list of seconds (0..60)")
    LATENESS_STARTED[0] += 1
    key = "l%d" % LATENESS_STARTED[0]
    LATENESS[key] = Lateness(pauses)
    return {"control": key}


def _op_ext_lateness_result(self, request):
    control = LATENESS.get(request.get("control"))
    if control is None:
        raise RequestError("unknown_server", "no lateness control %r" % (request.get("control"),))
    late = control.result(min(float(request.get("wait") or 0), BUDGETS["long"]))
    if late is not None:
        LATENESS.pop(request.get("control"), None)
    return {"late": late}


Agent.op_ext_socketpair = _op_ext_socketpair
Agent.op_ext_lateness_start = _op_ext_lateness_start
Agent.op_ext_lateness_result = _op_ext_lateness_result
OPS = OPS + ("ext_socketpair", "ext_lateness_start", "ext_lateness_result")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    simulate_absent()  # ext: before the implementation is imported
    if argv[:1] == ["--lab"]:  # SERVE, SHUTDOWN, THREADING, FORKING (port-c): the forking lab
        lab_main(argv[1])
    lifetime = 1800.0
    if "--lifetime" in argv:
        lifetime = float(argv[argv.index("--lifetime") + 1])
    channel = Channel(take_stdout())

    def watchdog():
        time.sleep(lifetime)
        sys.stderr.write("subject agent: lifetime of %.0fs expired\n" % lifetime)
        os._exit(4)

    guard = threading.Thread(target=watchdog, name="ssc-agent-lifetime")
    guard.daemon = True
    guard.start()
    agent = Agent(channel)
    channel.send(agent.hello())
    stdin = sys.stdin if PY2 else sys.stdin.buffer
    reason = agent.run(stdin)
    agent.servers.stop_all()
    agent.lab.discard_all()
    channel.send({"event": "goodbye", "reason": reason})
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
