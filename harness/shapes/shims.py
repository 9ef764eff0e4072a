"""The mechanisms an OS shape is made of: one function per kind of difference.

Theory of operation
-------------------
A shape's data file (``windows.toml``, ``macos.toml``) lists its shims, each
with a ``kind`` and the parameters of that kind; this module holds the code
for each kind and nothing about any particular OS.  :data:`KINDS` maps a
kind to its function, called as ``function(**parameters)``.

Three rules keep a shaped run honest:

* **Surface, not plumbing.**  The interpreter's own runtime plumbing
  (``subprocess``, ``selectors`` ...), which on the real OS has a native
  implementation of its own, is imported *before* the shims run (the data
  file's ``preimport``), so it keeps working; everything imported later --
  the implementation under test, the harness, the checks -- sees the shaped
  surface.  Where a stdlib or pytest function branches on ``sys.platform``
  (which stays ``linux``) instead of on a capability, a ``plumbing`` shim
  gives it the behaviour the real OS has (``Popen.kill`` terminates the
  process; pytest's user id is unknown).
* **Never invent a socket observation.**  A shim may refuse, fail or
  reshape what Linux reported (an RST in the backlog makes ``accept()`` fail,
  a full AF_UNIX backlog refuses), but a socket error still carries the
  errno Linux gave it, and a shim never reports an event Linux did not see.
* **Keep the originals.**  What a shim removes is kept in :data:`REAL`
  (``"signal.SIGKILL"`` -> value), for plumbing shims only.
"""

from __future__ import annotations

import errno
import importlib
import os
import stat
import sys
import time
import types
from typing import Any, Callable, Dict, Iterable, List, Optional

#: originals of what was removed or replaced, keyed "module.name"
REAL: Dict[str, Any] = {}


def _module(name: str) -> Any:
    return importlib.import_module(name)


class _Plain:
    """A replacement for a module function that, like the builtin it replaces, is not a
    descriptor: stored as a class attribute (3.9's ``pathlib._NormalAccessor.open = os.open``)
    it is not bound to the instance."""

    def __init__(self, function: Callable[..., Any], original: Any = None):
        self.function = function
        self.__wrapped__ = original

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<shaped {getattr(self.__wrapped__, '__name__', self.function.__name__)}>"


# --------------------------------------------------------------------------- names


def remove(module: str, names: Iterable[str] = (), prefix: str = "", keep: Iterable[str] = (), **_: Any) -> None:
    """Delete ``names`` (and every name starting with ``prefix`` except ``keep``) from ``module``
    and from its ``__all__``."""
    mod = _module(module)
    doomed = set(names)
    if prefix:
        doomed |= {name for name in vars(mod) if name.startswith(prefix) and name not in set(keep)}
    exported = getattr(mod, "__all__", None)
    for name in sorted(doomed):
        if hasattr(mod, name):
            REAL[f"{module}.{name}"] = getattr(mod, name)
            delattr(mod, name)
        if isinstance(exported, list) and name in exported:  # socket.__all__ is built at import
            exported.remove(name)


def block_import(modules: Iterable[str], **_: Any) -> None:
    """Make ``import NAME`` raise ModuleNotFoundError, as for a module the OS does not build."""
    import importlib.abc

    blocked = frozenset(modules)

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
            if fullname in blocked:
                raise ModuleNotFoundError(f"No module named {fullname!r} (simulated OS shape)", name=fullname)
            return None

    for name in blocked:
        REAL[name] = sys.modules.pop(name, None)  # preimported plumbing keeps its own reference
    sys.meta_path.insert(0, Blocked())


def selectors_follow_select(**_: Any) -> None:
    """Drop the selector classes whose ``select`` primitive is gone; pick
    ``DefaultSelector`` in the order ``selectors`` itself uses."""
    import select
    import selectors

    needs = {"EpollSelector": "epoll", "DevpollSelector": "devpoll", "KqueueSelector": "kqueue",
             "PollSelector": "poll"}
    for cls, primitive in needs.items():
        if hasattr(selectors, cls) and not hasattr(select, primitive):
            REAL[f"selectors.{cls}"] = getattr(selectors, cls)
            delattr(selectors, cls)
    for name in ("EpollSelector", "DevpollSelector", "KqueueSelector", "PollSelector", "SelectSelector"):
        if hasattr(selectors, name):
            selectors.DefaultSelector = getattr(selectors, name)  # type: ignore[misc]
            break


def select_sockets_only(fd_setsize: int, **_: Any) -> None:
    """``select.select`` accepts only sockets, at most ``fd_setsize`` per list."""
    import select

    real = select.select

    def _fileno(obj: Any) -> int:
        return obj if isinstance(obj, int) else obj.fileno()

    def shaped_select(rlist, wlist, xlist, timeout=None):  # type: ignore[no-untyped-def]
        for group in (rlist, wlist, xlist):
            items = list(group)
            if len(items) > fd_setsize:
                raise ValueError("too many file descriptors in select()")
            for obj in items:
                try:
                    mode = os.fstat(_fileno(obj)).st_mode
                except OSError:
                    continue  # a closed descriptor: let the real call report it
                if not stat.S_ISSOCK(mode):
                    raise OSError(errno.ENOTSOCK, os.strerror(errno.ENOTSOCK))
        return real(rlist, wlist, xlist, timeout)

    REAL["select.select"] = real
    select.select = _Plain(shaped_select, real)


# --------------------------------------------------------------------------- clocks


def _clock_info(name: str, resolution: float, implementation: str) -> None:
    real = time.get_clock_info
    previous = getattr(time.get_clock_info, "_ssc_overrides", {})
    overrides = dict(previous, **{name: (resolution, implementation)})

    def get_clock_info(clock: str) -> Any:
        info = real(clock)  # type: ignore[arg-type]
        if clock in overrides:
            resolution_, implementation_ = overrides[clock]
            info = types.SimpleNamespace(**vars(info))
            info.resolution, info.implementation = resolution_, implementation_
        return info

    plain = _Plain(get_clock_info, real)
    plain._ssc_overrides = overrides  # type: ignore[attr-defined]
    time.get_clock_info = plain


def coarse_clock(clock: str, step_ns: int, implementation: str, **_: Any) -> None:
    """``time.<clock>()`` and ``<clock>_ns()`` advance in steps of ``step_ns``.

    Windows before 3.13: https://docs.python.org/3/whatsnew/3.13.html#time (gh-88494, gh-63207)."""
    real_ns: Callable[[], int] = getattr(time, clock + "_ns")
    REAL[f"time.{clock}_ns"] = real_ns

    def clock_ns() -> int:
        return real_ns() // step_ns * step_ns

    def clock_s() -> float:
        return clock_ns() / 1e9

    setattr(time, clock + "_ns", _Plain(clock_ns, real_ns))
    setattr(time, clock, _Plain(clock_s, getattr(time, clock)))
    _clock_info(clock, step_ns / 1e9, implementation)


def process_offset_clock(clock: str, **_: Any) -> None:
    """``time.<clock>()`` counts from this process's start, so two processes
    started apart disagree (a forked child inherits its parent's offset).

    Before 3.10 (bpo-37205): https://docs.python.org/3/library/time.html#time.perf_counter."""
    real_ns: Callable[[], int] = getattr(time, clock + "_ns")
    REAL[f"time.{clock}_ns"] = real_ns
    offset = real_ns()

    def clock_ns() -> int:
        return real_ns() - offset

    setattr(time, clock + "_ns", _Plain(clock_ns, real_ns))
    setattr(time, clock, _Plain(lambda: clock_ns() / 1e9, getattr(time, clock)))


# --------------------------------------------------------------------------- files


def append_by_seek(**_: Any) -> None:
    """Descriptors opened with ``O_APPEND`` write by "seek to the end, then write":
    two steps another writer can come between (the C runtime's emulation,
    https://learn.microsoft.com/en-us/cpp/c-runtime-library/reference/write)."""
    real_open, real_write, real_close = os.open, os.write, os.close
    appending = set()

    def shaped_open(path, flags, mode=0o777, *, dir_fd=None):  # type: ignore[no-untyped-def]
        fd = real_open(path, flags & ~os.O_APPEND, mode, dir_fd=dir_fd)
        if flags & os.O_APPEND:
            appending.add(fd)
        return fd

    def shaped_write(fd, data):  # type: ignore[no-untyped-def]
        if fd in appending:
            os.lseek(fd, 0, os.SEEK_END)
            time.sleep(0)  # the gap between the two steps, as wide as one thread switch
        return real_write(fd, data)

    def shaped_close(fd):  # type: ignore[no-untyped-def]
        appending.discard(fd)
        return real_close(fd)

    REAL.update({"os.open": real_open, "os.write": real_write, "os.close": real_close})
    os.open = _Plain(shaped_open, real_open)  # type: ignore[assignment]
    os.write = _Plain(shaped_write, real_write)  # type: ignore[assignment]
    os.close = _Plain(shaped_close, real_close)  # type: ignore[assignment]


# --------------------------------------------------------------------------- sockets


def _wrap_socket_method(name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    import socket

    real = getattr(socket.socket, name)
    REAL.setdefault(f"socket.socket.{name}", real)
    setattr(socket.socket, name, make(real))


def accept_fails_for_reset(**_: Any) -> None:
    """A TCP connection reset while queued makes ``accept()`` fail with
    ConnectionResetError (the errno is Linux's ECONNRESET) instead of
    returning it; Linux's own evidence of the reset is ``getpeername()``'s ENOTCONN.
    WSAECONNRESET: https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-accept."""
    import socket

    def make(real):  # type: ignore[no-untyped-def]
        def accept(self):  # type: ignore[no-untyped-def]
            conn, address = real(self)
            if self.family in (socket.AF_INET, getattr(socket, "AF_INET6", None)) and self.type == socket.SOCK_STREAM:
                try:
                    conn.getpeername()
                except OSError as exc:
                    if exc.errno == errno.ENOTCONN:
                        conn.close()
                        raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET)) from None
            return conn, address

        return accept

    _wrap_socket_method("accept", make)


def _is_unix(sock: Any, kind: Optional[int] = None) -> bool:
    import socket

    family = REAL.get("socket.AF_UNIX", getattr(socket, "AF_UNIX", None))
    return family is not None and sock.family == family and (kind is None or sock.type == kind)


def unix_full_backlog_refuses(**_: Any) -> None:
    """An AF_UNIX stream connect to a full listen queue fails at once with
    ECONNREFUSED, blocking or not (Linux: EAGAIN, or a blocking wait).  macOS: unix(4),
    connect(2), https://developer.apple.com/library/archive/documentation/Darwin/Reference/ManPages/man2/connect.2.html."""
    import socket

    def attempt(real_connect_ex, sock, address) -> int:  # type: ignore[no-untyped-def]
        timeout = sock.gettimeout()
        if timeout == 0.0:
            code = real_connect_ex(sock, address)
        else:
            sock.setblocking(False)
            try:
                code = real_connect_ex(sock, address)
            finally:
                sock.settimeout(timeout)
        return errno.ECONNREFUSED if code in (errno.EAGAIN, errno.EWOULDBLOCK) else code

    real_connect_ex = socket.socket.connect_ex

    def make_connect(real):  # type: ignore[no-untyped-def]
        def connect(self, address):  # type: ignore[no-untyped-def]
            if not _is_unix(self, socket.SOCK_STREAM):
                return real(self, address)
            code = attempt(real_connect_ex, self, address)
            if code:
                raise OSError(code, os.strerror(code))  # OSError picks the subclass from the errno

        return connect

    def make_connect_ex(real):  # type: ignore[no-untyped-def]
        def connect_ex(self, address):  # type: ignore[no-untyped-def]
            if not _is_unix(self, socket.SOCK_STREAM):
                return real(self, address)
            return attempt(real, self, address)

        return connect_ex

    _wrap_socket_method("connect", make_connect)
    _wrap_socket_method("connect_ex", make_connect_ex)


def unix_path_max(sun_path: int, **_: Any) -> None:
    """AF_UNIX paths of ``sun_path`` bytes or more are refused as CPython refuses them."""

    def too_long(self, address) -> bool:  # type: ignore[no-untyped-def]
        return (_is_unix(self) and isinstance(address, (str, bytes))
                and len(os.fsencode(address)) >= sun_path)

    def make(real):  # type: ignore[no-untyped-def]
        def method(self, *args):  # type: ignore[no-untyped-def]
            if args and too_long(self, args[-1]):
                raise OSError("AF_UNIX path too long")
            return real(self, *args)

        return method

    for name in ("bind", "connect", "connect_ex", "sendto"):
        _wrap_socket_method(name, make)


def unix_dgram_max(max_bytes: int, **_: Any) -> None:
    """An AF_UNIX datagram above ``max_bytes`` fails with EMSGSIZE."""
    import socket

    def make(real):  # type: ignore[no-untyped-def]
        def method(self, data, *args):  # type: ignore[no-untyped-def]
            if _is_unix(self, socket.SOCK_DGRAM) and len(memoryview(data).cast("B")) > max_bytes:
                raise OSError(errno.EMSGSIZE, os.strerror(errno.EMSGSIZE))
            return real(self, data, *args)

        return method

    for name in ("send", "sendto", "sendall"):
        _wrap_socket_method(name, make)


def socketpair_over_tcp(**_: Any) -> None:
    """``socket.socketpair()`` without AF_UNIX: a connected pair of loopback TCP
    sockets, made as CPython makes it where the OS has no socketpair()."""
    import socket

    def socketpair(family=None, type=socket.SOCK_STREAM, proto=0):  # type: ignore[no-untyped-def]
        family = socket.AF_INET if family is None else family
        host = "::1" if family == getattr(socket, "AF_INET6", None) else "127.0.0.1"
        if family not in (socket.AF_INET, getattr(socket, "AF_INET6", None)) or type != socket.SOCK_STREAM:
            raise ValueError("Only AF_INET and AF_INET6 SOCK_STREAM socket pairs are supported here")
        listener = socket.socket(family, type, proto)
        try:
            listener.bind((host, 0))
            listener.listen()
            client = socket.socket(family, type, proto)
            try:
                client.setblocking(False)
                try:
                    client.connect(listener.getsockname()[:2])
                except (BlockingIOError, InterruptedError):
                    pass
                client.setblocking(True)
                server, _address = listener.accept()
            except BaseException:
                client.close()
                raise
        finally:
            listener.close()
        if server.getpeername()[:2] != client.getsockname()[:2]:  # another process raced us
            server.close()
            client.close()
            raise ConnectionError("Unexpected peer connection")
        return server, client

    REAL["socket.socketpair"] = socket.socketpair
    socket.socketpair = _Plain(socketpair, socket.socketpair)


# --------------------------------------------------------------------------- limits and processes


def nofile_limit(soft: int, open_max: int, **_: Any) -> None:
    """Start with a soft RLIMIT_NOFILE of ``soft``; refuse a soft limit above
    ``open_max`` (or unlimited) with the ValueError CPython raises for EINVAL."""
    import resource

    real_set = resource.setrlimit
    current, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = soft if hard == resource.RLIM_INFINITY else min(soft, hard)
    real_set(resource.RLIMIT_NOFILE, (wanted, hard))

    def setrlimit(which, limits):  # type: ignore[no-untyped-def]
        new_soft = limits[0]
        if which == resource.RLIMIT_NOFILE and (new_soft == resource.RLIM_INFINITY or new_soft > open_max):
            raise ValueError("current limit exceeds maximum limit")
        return real_set(which, limits)

    REAL["resource.setrlimit"] = real_set
    resource.setrlimit = _Plain(setrlimit, real_set)


def spawn_default(**_: Any) -> None:
    """multiprocessing starts processes with ``spawn`` unless told otherwise."""
    import multiprocessing.context as context

    context._default_context = context.DefaultContext(context._concrete_contexts["spawn"])  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- plumbing


def popen_kill_terminates(**_: Any) -> None:
    """``Popen.kill()`` ends the process (TerminateProcess), not through a
    signal name the shaped ``signal`` module no longer has."""
    import subprocess

    sigkill = REAL.get("signal.SIGKILL", 9)

    def kill(self):  # type: ignore[no-untyped-def]
        self.send_signal(sigkill)

    subprocess.Popen.kill = kill  # type: ignore[method-assign]


def _after_import(module: str, patch: Callable[[Any], None]) -> None:
    """Run ``patch(module)`` now if ``module`` is imported, else right after it is."""
    if sys.modules.get(module) is not None:
        patch(sys.modules[module])
        return
    import importlib.abc
    import importlib.machinery

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
            if fullname != module:
                return None
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None:
                return spec
            real_exec = spec.loader.exec_module

            def exec_module(mod):  # type: ignore[no-untyped-def]
                real_exec(mod)
                patch(mod)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, Finder())


def unknown_user_id(**_: Any) -> None:
    """pytest asks ``os.getuid()`` on every platform but win32; without it the
    user id is unknown (``None``), as pytest has it on Windows.  Windows sets
    ``USERNAME`` in every process, which is where ``getpass.getuser()`` finds
    the name there; it is set here too when no such variable is."""
    names = ("LOGNAME", "USER", "LNAME", "USERNAME")
    getuid = REAL.get("os.getuid")
    if getuid is not None and not any(os.environ.get(name) for name in names):
        try:
            import pwd

            os.environ["USERNAME"] = pwd.getpwuid(getuid()).pw_name
        except (ImportError, KeyError):
            pass
    _after_import("_pytest.compat", lambda mod: setattr(mod, "get_user_id", lambda: None))
    _after_import("_pytest.tmpdir", lambda mod: setattr(mod, "get_user_id", lambda: None)
                  if hasattr(mod, "get_user_id") else None)


#: kind -> mechanism
KINDS: Dict[str, Callable[..., None]] = {
    "remove": remove,
    "block_import": block_import,
    "selectors_follow_select": selectors_follow_select,
    "select_sockets_only": select_sockets_only,
    "coarse_clock": coarse_clock,
    "process_offset_clock": process_offset_clock,
    "append_by_seek": append_by_seek,
    "accept_fails_for_reset": accept_fails_for_reset,
    "unix_full_backlog_refuses": unix_full_backlog_refuses,
    "unix_path_max": unix_path_max,
    "unix_dgram_max": unix_dgram_max,
    "socketpair_over_tcp": socketpair_over_tcp,
    "nofile_limit": nofile_limit,
    "spawn_default": spawn_default,
    "popen_kill_terminates": popen_kill_terminates,
    "unknown_user_id": unknown_user_id,
}

__all__: List[str] = ["KINDS", "REAL"]
