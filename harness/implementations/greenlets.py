"""Adapters for the alternative implementations: gevent, eventlet, eventlet's green module, ``future``.

Theory of operation
-------------------
None of these ships a socketserver of its own that could simply be
imported; each gets its API in a different way, and each adapter says so:

``gevent``
    ``gevent.monkey.patch_all()``, then the standard library's
    ``socketserver`` unchanged.  Sockets, ``select.poll``, threads, ``os.fork``
    and ``os.waitpid`` are gevent's afterwards.
``eventlet``
    ``eventlet.monkey_patch()``, then the standard library's module.  eventlet
    deletes the poll-based selectors, so ``_ServerSelector`` becomes a
    hub-backed ``SelectSelector``.
``eventlet_green``
    ``eventlet.green.SocketServer`` *without* global patching: a copy of the
    module whose ``socket``/``select``/``threading`` are green, but whose
    ``selectors`` are the real ones.  Its ``serve_forever()`` therefore
    blocks the only OS thread in a real ``poll()`` -- a real bug (see
    docs/alternatives.md); the checks end as TIMEOUTs.
``future``
    ``future.backports.socketserver``, a frozen copy of CPython 3.3's module.
    It declares API level 3.3, so VERSION checks expect 3.3 behaviour; the
    REQUIRED checks that encode later behaviour (context manager,
    ``shutdown_request`` on a refused request, ``block_on_close``...) fail,
    which is what the kit is for.

Bootstrap.  Monkey-patching is only complete when it happens before any
other module imports ``socket``, ``threading`` or ``select``: a module that
ran ``from socket import socket`` earlier keeps the real class.  The
``gevent`` and ``eventlet`` adapters therefore declare a ``bootstrap``
(:func:`patch_gevent`, :func:`patch_eventlet`) that ``python -m
harness.implementations.launch`` runs first in the process, before pytest is imported.
The bootstrap notes which of those modules were already imported (normally
none) and the adapter's ``extra`` reports it (``preimported``) along with
``monkey_patched`` and the library versions, so the record says what was
actually tested.

``load()`` of a patching adapter never patches: the CLI resolves every
adapter in its own process just to describe it.  But inside a pytest process
that was not bootstrapped (``pytest --impl gevent`` typed by hand), loading
refuses with a message naming the right command, because the results would
describe a half-patched mix rather than gevent.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Dict

from .base import ApiVersion, Implementation

#: Modules whose presence before patching means the patch may be incomplete.
WATCHED = ("socket", "select", "selectors", "threading", "ssl", "socketserver", "subprocess")

#: Set by a bootstrap: {"library": name, "preimported": [...]}.
BOOTSTRAPPED: Dict[str, object] = {}


def _preimported() -> list:
    return [name for name in WATCHED if name in sys.modules]


def _dist_version(name: str) -> str:
    """The installed distribution version of ``name`` (without importing it)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except Exception:
        return "unknown"


# ------------------------------------------------------------- bootstraps --


def patch_gevent() -> None:
    """Bootstrap for ``gevent``: ``gevent.monkey.patch_all()`` before anything else."""
    before = _preimported()
    from gevent import monkey

    monkey.patch_all()
    BOOTSTRAPPED.update(library="gevent", preimported=before)


def patch_eventlet() -> None:
    """Bootstrap for ``eventlet``: ``eventlet.monkey_patch()`` before anything else."""
    before = _preimported()
    with warnings.catch_warnings():
        # "Eventlet is deprecated ..." on every import: known, and not ours to show.
        warnings.simplefilter("ignore")
        import eventlet

    eventlet.monkey_patch()
    BOOTSTRAPPED.update(library="eventlet", preimported=before)


# ------------------------------------------------------------- patch state --


def gevent_patched() -> bool:
    if "gevent.monkey" not in sys.modules:
        return False
    monkey = sys.modules["gevent.monkey"]
    return all(monkey.is_module_patched(name) for name in ("socket", "select", "threading"))


def eventlet_patched() -> bool:
    if "eventlet.patcher" not in sys.modules:
        return False
    patcher = sys.modules["eventlet.patcher"]
    return all(patcher.is_monkey_patched(name) for name in ("socket", "select", "thread"))


class NotBootstrapped(RuntimeError):
    """A patching adapter loaded in a pytest process that was not patched first."""


def _refuse_half_patched(name: str, patched: bool) -> None:
    if patched or "_pytest" not in sys.modules:
        return
    raise NotBootstrapped(
        f"{name} must patch the process before pytest imports socket/threading/select; "
        f"run `ssconform run --impl {name}` or `python -m harness.implementations.launch {name} -- <pytest args>` "
        f"instead of `pytest --impl {name}`"
    )


def _stdlib_socketserver():
    return importlib.import_module("socketserver")


def _load_gevent():
    import gevent  # noqa: F401 - an ImportError here names the missing extra

    _refuse_half_patched("gevent", gevent_patched())
    return _stdlib_socketserver()


def _import_eventlet():
    with warnings.catch_warnings():
        # EventletDeprecationWarning (a plain Warning) on every first import.
        warnings.simplefilter("ignore")
        return importlib.import_module("eventlet")


def _load_eventlet():
    _import_eventlet()
    _refuse_half_patched("eventlet", eventlet_patched())
    return _stdlib_socketserver()


def _load_eventlet_green():
    _import_eventlet()
    return importlib.import_module("eventlet.green.SocketServer")


def _load_future():
    return importlib.import_module("future.backports.socketserver")


# ------------------------------------------------------------------ facts --


def _patch_facts(library: str, patched: bool) -> Dict[str, str]:
    facts = {"monkey_patched": "yes" if patched else "no"}
    if BOOTSTRAPPED.get("library") == library:
        facts["preimported"] = ",".join(BOOTSTRAPPED.get("preimported") or []) or "none"  # type: ignore[arg-type]
    return facts


def _gevent_extra() -> Dict[str, str]:
    facts = {"gevent": _dist_version("gevent"), "greenlet": _dist_version("greenlet")}
    facts.update(_patch_facts("gevent", gevent_patched()))
    return facts


def _eventlet_extra() -> Dict[str, str]:
    facts = {"eventlet": _dist_version("eventlet"), "greenlet": _dist_version("greenlet")}
    facts.update(_patch_facts("eventlet", eventlet_patched()))
    return facts


def _eventlet_green_extra() -> Dict[str, str]:
    return {"eventlet": _dist_version("eventlet"), "greenlet": _dist_version("greenlet"),
            "monkey_patched": "yes" if eventlet_patched() else "no"}


def _future_extra() -> Dict[str, str]:
    return {"future": _dist_version("future")}


def _version_of(dist: str):
    def version(module) -> str:
        return _dist_version(dist)

    return version


def _api_33(module) -> ApiVersion:
    return (3, 3)


GEVENT = Implementation(
    name="gevent",
    description="gevent.monkey.patch_all() + the standard library's socketserver",
    load=_load_gevent,
    version=_version_of("gevent"),
    bootstrap="harness.implementations.greenlets:patch_gevent",
    extra=_gevent_extra,
)

EVENTLET = Implementation(
    name="eventlet",
    description="eventlet.monkey_patch() + the standard library's socketserver",
    load=_load_eventlet,
    version=_version_of("eventlet"),
    bootstrap="harness.implementations.greenlets:patch_eventlet",
    extra=_eventlet_extra,
)

EVENTLET_GREEN = Implementation(
    name="eventlet_green",
    description="eventlet.green.SocketServer without global patching (green socket/select/threading, "
    "real selectors)",
    load=_load_eventlet_green,
    version=_version_of("eventlet"),
    extra=_eventlet_green_extra,
)

FUTURE = Implementation(
    name="future",
    description="future.backports.socketserver: a frozen copy of CPython 3.3's module",
    load=_load_future,
    api_version=_api_33,
    version=_version_of("future"),
    extra=_future_extra,
)

ADAPTERS = {adapter.name: adapter for adapter in (GEVENT, EVENTLET, EVENTLET_GREEN, FUTURE)}


__all__ = ["GEVENT", "EVENTLET", "EVENTLET_GREEN", "FUTURE", "ADAPTERS", "BOOTSTRAPPED", "WATCHED",
           "NotBootstrapped", "patch_gevent", "patch_eventlet", "gevent_patched", "eventlet_patched"]
