"""Which check owns a behaviour the harness itself relies on, and how to say it is broken.

Theory of operation
-------------------
To run a check, the harness relies on a few behaviours of the implementation
under test: ``serve_forever()`` must reach its selector (the loop is
running), and ``shutdown()`` must return and stop the loop, so that the
server can be torn down.  Each of these behaviours is *owned* by one check,
which judges it (:data:`OWNERS`).  When the behaviour is broken, only its
owner may FAIL or TIMEOUT for it.  Any other check that cannot proceed
without it ends **PRECONDITION_FAILED**, naming the owner (as wpt's
PRECONDITION_FAILED does), and it ends so at once: :class:`Latch` remembers
for the rest of the process, keyed by the implementation's function, that
the behaviour is broken, so later checks do not each wait out the budget
again.  Server processes (:mod:`harness.processes.server_process`) share what
was found through a file named by :data:`ENV_VAR`, which the pytest plugin
creates for its run (children inherit the environment): each line is one
finding, appended with one ``write`` on an ``O_APPEND`` descriptor.  Keys are
the functions' module, qualified name, file and first line, which are the
same in every process that loaded the implementation.

The pytest plugin grades :class:`PreconditionFailed` as PRECONDITION_FAILED,
except in the owning check itself, where it stays what it would have been
(TIMEOUT for a bound that ran out, FAIL otherwise).  A PRECONDITION_FAILED
does not fail a run on its own when its owner ended FAIL, TIMEOUT or ERROR in
the same run (the owner already does); it does when the owner passed or was
not run, so a selection (``--check``) without the owner cannot hide the
defect (:func:`harness.core.outcomes.is_bad`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple

#: names the file shared by the processes of one run (see the module docstring)
ENV_VAR = "SSCONFORM_LATCH_FILE"

#: behaviour -> (the check that owns it, what it is, in words)
OWNERS: Dict[str, Tuple[str, str]] = {
    "serve_forever_waits": ("SERVE-007", "serve_forever() reaches its selector and serves"),
    "shutdown_returns": ("SHUTDOWN-001", "shutdown() stops serve_forever() and returns"),
    "loop_stops": ("SHUTDOWN-001", "serve_forever() returns once shutdown() was called"),
    "core_names": ("API-001", "the classes every platform provides exist"),
    "forking_names": ("API-002", "the Forking* classes exist where os.fork does"),
    "unix_names": ("API-003", "the Unix* classes exist where AF_UNIX does"),
}


class PreconditionFailed(Exception):
    """A check cannot proceed because a behaviour another check owns is broken."""

    def __init__(self, behaviour: str, detail: str, timed_out: bool = False):
        owner, words = OWNERS[behaviour]
        super().__init__(f"precondition {owner} ({words}) is broken: {detail}")
        self.behaviour = behaviour
        self.prerequisite = owner
        self.detail = detail
        self.timed_out = timed_out  # in the owning check this is a TIMEOUT, else a FAIL


class MissingClass(PreconditionFailed, AttributeError):
    """A server class the check needs is missing (and cannot be composed from
    its mix-in and base), although the platform supports it.  Also an
    ``AttributeError``, so code that treats a missing optional class as
    UNSUPPORTED keeps doing so."""

    def __init__(self, name: str, detail: str):
        behaviour = "forking_names" if name.startswith("Forking") else (
            "unix_names" if name.startswith("Unix") else "core_names")
        PreconditionFailed.__init__(self, behaviour, detail)


def _describe(function: Any) -> str:
    code = getattr(function, "__code__", None)
    where = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}@{where}"


def function_key(obj: Any, *names: str) -> Tuple[str, ...]:
    """The implementation's functions behind ``obj.<name>`` (class attributes), for
    :class:`Latch`: a hung ``shutdown()`` is keyed by ``shutdown`` *and*
    ``serve_forever``, since either may be the broken one."""
    return tuple(f"{name}={_describe(getattr(type(obj), name, None))}" for name in names)


class Latch:
    """Behaviours found broken in this process: key -> what was seen the first time."""

    def __init__(self) -> None:
        self._lock: Any = None
        self._seen: Dict[str, str] = {}

    def _guard(self) -> Any:
        # made on first use: this module is imported before gevent/eventlet patch
        # threading (harness.processes.server_process), so it must not import it at import time
        if self._lock is None:
            import threading

            self._lock = threading.Lock()
        return self._lock

    @staticmethod
    def _path() -> Optional[str]:
        return os.environ.get(ENV_VAR) or None

    def set(self, behaviour: str, key: Tuple[str, ...], detail: str) -> None:
        name = "|".join((behaviour,) + key)
        with self._guard():
            if name in self._seen:
                return
            self._seen[name] = detail
            path = self._path()
            if path:
                line = (json.dumps({"key": name, "detail": detail}) + "\n").encode("utf-8")
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                except OSError:
                    return  # sharing is an optimisation: this process still knows
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)

    def get(self, behaviour: str, key: Tuple[str, ...]) -> Optional[str]:
        name = "|".join((behaviour,) + key)
        with self._guard():
            if name not in self._seen:
                self._load()
            return self._seen.get(name)

    def _load(self) -> None:
        path = self._path()
        if not path:
            return
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return
        for line in lines:
            try:
                found = json.loads(line)
                self._seen.setdefault(str(found["key"]), str(found["detail"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line still being written by another process

    def clear(self) -> None:
        with self._guard():
            self._seen.clear()


#: the process-wide latch used by :mod:`harness.serving.servers`
LATCH = Latch()

__all__ = ("ENV_VAR", "LATCH", "OWNERS", "Latch", "MissingClass", "PreconditionFailed", "function_key")
