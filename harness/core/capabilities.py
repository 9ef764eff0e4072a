"""Capability probes: what this interpreter and OS can do, decided once.

Theory of operation
-------------------
Everything POSIX-only in the kit (``os.fork``, ``AF_UNIX``, signals,
``SO_REUSEPORT``, ``resource``) is guarded by a capability probed here and
nowhere else: code asks ``caps().fork``, never ``sys.platform``.  Windows
and macOS run only on CI runners we cannot use interactively, so the
guarded code paths must be correct by construction, and that is tested by
*simulating absence*: the environment variable
``SSCONFORM_SIMULATE_ABSENT=fork,af_unix,...`` (or :func:`simulate_absent`
in tests) makes the probes answer "absent" as Windows would, and the
harness then takes exactly the branches it takes on Windows.

Probes are cheap but some open sockets (IPv6, SO_REUSEPORT), so results are
cached; :func:`reset` clears the cache (tests, after changing the
simulation).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
from typing import Dict, Iterator, Optional

ENV_VAR = "SSCONFORM_SIMULATE_ABSENT"

#: Names accepted by the simulation, with a one-line meaning each.
KNOWN = {
    "fork": "os.fork exists (Forking* servers, killed-client scenario via fork)",
    "af_unix": "socket.AF_UNIX exists (Unix* servers)",
    "ipv6": "an AF_INET6 socket can bind ::1",
    "reuse_port": "socket.SO_REUSEPORT exists and can be set",
    "signals": "POSIX signals (SIGKILL, SIGUSR1) can be sent to a process",
    "rlimit": "the resource module can read and raise RLIMIT_NOFILE",
    "poll": "select.poll exists",
}


@dataclasses.dataclass(frozen=True)
class Capabilities:
    fork: bool
    af_unix: bool
    ipv6: bool
    reuse_port: bool
    signals: bool
    rlimit: bool
    poll: bool
    simulated_absent: tuple

    def as_dict(self) -> Dict[str, object]:
        data = dataclasses.asdict(self)
        data["simulated_absent"] = list(self.simulated_absent)
        return data

    def has(self, name: str) -> bool:
        if name not in KNOWN:
            raise KeyError(f"unknown capability {name!r}; known: {', '.join(sorted(KNOWN))}")
        return bool(getattr(self, name))


_cache: Optional[Capabilities] = None
_override: Optional[frozenset] = None
#: others: what the subject of a run (``--subject-python``) lacks.  The implementation
#: runs there, so no check may expect of it what its interpreter cannot do; not a
#: simulation (``simulated_absent`` does not list these): see :func:`limit_to_subject`.
_subject_absent: frozenset = frozenset()


def simulated() -> frozenset:
    """The capabilities currently simulated as absent."""
    if _override is not None:
        return _override
    raw = os.environ.get(ENV_VAR, "")
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = names - set(KNOWN)
    if unknown:
        raise ValueError(
            f"{ENV_VAR}: unknown capability {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(KNOWN))}"
        )
    return names


def _probe_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def _probe_reuse_port() -> bool:
    if not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return True
    except OSError:
        return False


def _probe_rlimit() -> bool:
    try:
        import resource  # noqa: F401  (POSIX only)
    except ImportError:
        return False
    return hasattr(resource, "RLIMIT_NOFILE")


def _probe_signals() -> bool:
    import signal

    return hasattr(signal, "SIGKILL") and hasattr(os, "kill") and sys.platform != "win32"


def probe() -> Capabilities:
    """Probe now, ignoring the cache, honouring the simulation."""
    absent = simulated()
    found = {
        "fork": hasattr(os, "fork"),
        "af_unix": hasattr(socket, "AF_UNIX"),
        "ipv6": _probe_ipv6(),
        "reuse_port": _probe_reuse_port(),
        "signals": _probe_signals(),
        "rlimit": _probe_rlimit(),
        "poll": hasattr(__import__("select"), "poll"),
    }
    for name in absent | _subject_absent:
        found[name] = False
    return Capabilities(simulated_absent=tuple(sorted(absent)), **found)


def limit_to_subject(capabilities: Dict[str, object]) -> None:
    """From now on, :func:`caps` also answers "absent" for what the subject's
    fingerprint ``capabilities`` says it lacks (others: a subject without os.fork
    failed API-002 "Forking* names given os_fork=True" on the host's word)."""
    global _subject_absent
    _subject_absent = frozenset(name for name in KNOWN if capabilities.get(name) is False)
    reset()


def caps() -> Capabilities:
    """The cached capabilities of this process."""
    global _cache
    if _cache is None:
        _cache = probe()
    return _cache


def reset() -> None:
    global _cache
    _cache = None


@contextlib.contextmanager
def simulate_absent(*names: str) -> Iterator[Capabilities]:
    """Within the block, :func:`caps` reports ``names`` as absent.

    Also exported through the environment so that subprocesses started in
    the block (server processes, pytest runs) see the same simulation.
    """
    global _override
    unknown = set(names) - set(KNOWN)
    if unknown:
        raise KeyError(f"unknown capability {', '.join(sorted(unknown))}")
    saved_override, saved_env = _override, os.environ.get(ENV_VAR)
    _override = frozenset(names)
    os.environ[ENV_VAR] = ",".join(sorted(names))
    reset()
    try:
        yield caps()
    finally:
        _override = saved_override
        if saved_env is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved_env
        reset()
