"""Where servers listen: loopback addresses and private AF_UNIX paths.

Theory of operation
-------------------
The kit only ever talks on loopback (``127.0.0.1``, ``::1``) with port 0,
or on AF_UNIX paths inside directories it created with mode 0700.  This
module is the single place that decides those addresses.

Families are named by strings, ``"inet"``, ``"inet6"`` and ``"unix"``
(:data:`FAMILIES`), because the names travel in JSON (server process
specs, records) and because ``socket.AF_UNIX`` does not exist on Windows.
:func:`socket_family` maps a name to the ``socket`` constant and refuses a
family the platform lacks with :class:`UnsupportedFeature`.  It asks
:func:`harness.core.capabilities.caps` and never ``sys.platform``, so
simulated absence takes the Windows branch here too.

AF_UNIX paths are limited by ``sun_path``: 107 bytes on Linux, 103 on
macOS and the BSDs.  macOS puts ``$TMPDIR`` under ``/var/folders/...``
(about 50 characters), so :func:`private_dir` creates its directory under
``/tmp`` when the default temporary directory is long.  :func:`unix_address`
refuses a path over the limit with a message naming the limit, instead of
the kernel's terse ``AF_UNIX path too long``.

Directories made by :func:`private_dir` are remembered while they exist
(:func:`live_private_dirs`): the leak check of :mod:`harness.serving.servers` looks
in them for socket files nobody removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import sys
import tempfile
import threading
import warnings
from typing import Iterator, List, Optional, Set, Tuple, Union

from harness.core.capabilities import caps

#: Family names the kit knows, in report order.
FAMILIES = ("inet", "inet6", "unix")

#: Capability that gates each family (``None``: always available).
_FAMILY_CAPABILITY = {"inet": None, "inet6": "ipv6", "unix": "af_unix"}

_LOOPBACK = {"inet": "127.0.0.1", "inet6": "::1"}

#: A default temporary directory longer than this makes private_dir use /tmp.
LONG_TMPDIR = 32


class UnsupportedFeature(Exception):
    """The platform (or the simulation) lacks what a request needs.

    ``capability`` names the missing :mod:`harness.core.capabilities` entry so a
    caller can turn this into the UNSUPPORTED outcome.
    """

    def __init__(self, message: str, capability: Optional[str] = None):
        super().__init__(message)
        self.capability = capability


class UnixPathTooLong(ValueError):
    """An AF_UNIX path does not fit the platform's ``sun_path``."""


def sun_path_limit(platform: Optional[str] = None) -> int:
    """Longest filesystem path (bytes, without the NUL) AF_UNIX accepts."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux"):
        return 107
    # macOS and the BSDs have sun_path[104]; unknown systems get the
    # stricter limit so a path that works here works there.
    return 103


def _check_name(family: str) -> str:
    if family not in _FAMILY_CAPABILITY:
        raise ValueError(f"unknown address family {family!r}; known: {', '.join(FAMILIES)}")
    return family


def family_name(family: Union[str, int]) -> str:
    """``"inet"``/``"inet6"``/``"unix"`` for a name or a ``socket.AF_*`` value."""
    if isinstance(family, str):
        return _check_name(family)
    if family == socket.AF_INET:
        return "inet"
    if family == socket.AF_INET6:
        return "inet6"
    if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
        return "unix"
    raise ValueError(f"unsupported address family {family!r}")


def supported(family: str) -> bool:
    """Whether this platform (and the simulation) offers ``family``."""
    capability = _FAMILY_CAPABILITY[_check_name(family)]
    return capability is None or caps().has(capability)


def require(family: str) -> None:
    """Raise :class:`UnsupportedFeature` when ``family`` is not available."""
    family = _check_name(family)
    if not supported(family):
        capability = _FAMILY_CAPABILITY[family]
        raise UnsupportedFeature(
            f"address family {family!r} is not available on this platform "
            f"(capability {capability!r} is absent)",
            capability,
        )


def socket_family(family: Union[str, int]) -> int:
    """The ``socket.AF_*`` constant for a family name (refusing absent ones)."""
    name = family_name(family)
    require(name)
    if name == "inet":
        return socket.AF_INET
    if name == "inet6":
        return socket.AF_INET6
    return socket.AF_UNIX  # type: ignore[attr-defined,no-any-return]


def family_for_class(class_name: str) -> str:
    """The family a socketserver class name implies (``Unix*`` -> ``"unix"``)."""
    return "unix" if "Unix" in class_name else "inet"


def is_datagram_class(class_name: str) -> bool:
    """Whether a socketserver class name is a datagram server."""
    return "UDP" in class_name or "Datagram" in class_name


def loopback(family: str) -> Tuple[str, int]:
    """``('127.0.0.1', 0)`` or ``('::1', 0)``: port 0, always."""
    name = family_name(family)
    if name == "unix":
        raise ValueError("AF_UNIX has no loopback address; use unix_address(private_dir)")
    require(name)
    return (_LOOPBACK[name], 0)


# --------------------------------------------------------------------------- private dirs

_live: Set[str] = set()
_live_lock = threading.Lock()


def live_private_dirs() -> List[str]:
    """Directories made by :func:`private_dir` that still exist."""
    with _live_lock:
        return sorted(_live)


def _temp_base() -> Optional[str]:
    default = tempfile.gettempdir()
    if os.name == "posix" and len(default) > LONG_TMPDIR and os.path.isdir("/tmp"):
        return "/tmp"
    return None


class PrivateDirError(OSError):
    """A private directory could not be removed."""


def socket_files(directory: str) -> List[str]:
    """AF_UNIX socket files directly inside ``directory``."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        path = os.path.join(directory, name)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                found.append(path)
        except FileNotFoundError:
            continue
    return sorted(found)


def unlink_quietly(path: str) -> None:
    """Remove a file the kit made (a socket path, a temporary file), if it is still there.

    For teardown and error paths: a failure here must not hide the error being handled.
    """
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_tree(path: str) -> List[str]:
    problems: List[str] = []

    def record(func, failed, exc):  # pragma: no cover - exercised only on failure
        if not isinstance(exc, FileNotFoundError):
            problems.append(f"{getattr(func, '__name__', func)}({failed!r}): {exc}")

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=record)
    else:
        shutil.rmtree(path, onerror=lambda func, failed, info: record(func, failed, info[1]))
    if os.path.exists(path) and not problems:
        problems.append(f"{path} still exists after rmtree")
    return problems


@contextlib.contextmanager
def private_dir(prefix: str = "ssc-") -> Iterator[str]:
    """A fresh directory with mode 0700 and a short path, removed on exit.

    If it cannot be removed, :class:`PrivateDirError` is raised, unless the
    block is already raising, in which case a warning is issued instead so
    the original error is not masked.
    """
    path = tempfile.mkdtemp(prefix=prefix, dir=_temp_base())
    if os.name == "posix":
        os.chmod(path, 0o700)
    with _live_lock:
        _live.add(path)
    failed = False
    try:
        yield path
    except BaseException:
        failed = True
        raise
    finally:
        with _live_lock:
            _live.discard(path)
        problems = _remove_tree(path)
        if problems:
            message = f"cannot remove private directory {path}: " + "; ".join(problems)
            if failed:
                warnings.warn(message, RuntimeWarning, stacklevel=3)
            else:
                raise PrivateDirError(message)


def unix_address(directory: str, name: str = "s") -> str:
    """``directory/name``, refused when AF_UNIX is absent or the path is too long."""
    require("unix")
    if os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"socket name {name!r} must not contain a path separator")
    path = os.path.join(directory, name)
    limit = sun_path_limit()
    size = len(os.fsencode(path))
    if size > limit:
        raise UnixPathTooLong(
            f"AF_UNIX path {path!r} is {size} bytes; this platform allows at most {limit} "
            f"(sun_path). Use a shorter directory (harness.core.addresses.private_dir uses /tmp "
            f"when TMPDIR is long)"
        )
    return path


def server_address_for(family: str, directory: Optional[str] = None, name: str = "s"):
    """A bindable server address: loopback port 0, or a path in ``directory``."""
    name_ = family_name(family)
    if name_ == "unix":
        if directory is None:
            raise ValueError("an AF_UNIX server address needs a directory from private_dir()")
        return unix_address(directory, name)
    return loopback(name_)
