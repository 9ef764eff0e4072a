"""OS shapes: a Linux interpreter reshaped the way Windows or macOS is documented to differ.

Theory of operation
-------------------
The kit's Windows and macOS cells run only on CI runners.  To exercise
their code paths here, a *shape* removes from, or changes in, a Linux
interpreter exactly what the other OS's documentation says differs:
``os.fork`` and ``AF_UNIX`` gone, a 15.625 ms monotonic clock, ``accept()``
failing for a connection reset in the backlog, and so on.  Each difference
is one *shim*: an entry of the shape's data file (``windows.toml``,
``macos.toml`` next to this module) naming the mechanism (a kind from
:mod:`harness.shapes.shims`), its parameters, the Python versions it
applies to, and the public source that documents it.  The knowledge lives in
the data files; this package holds only the mechanism.

A shape must take effect before anything else is imported, in every process
of a run.  :func:`env_for` gives the environment that does that:
``SSCONFORM_OS_SHAPE=NAME`` and this package's ``boot`` directory first on
``PYTHONPATH``, whose ``sitecustomize`` calls :func:`apply_from_env` while
the interpreter starts.  Children inherit the environment, so server
processes, forking labs and helper scripts are shaped too.  A process that
finds ``SSCONFORM_OS_SHAPE`` set but was started without the boot directory
(``SSCONFORM_OS_SHAPE=windows python -m pytest``) restarts itself with it
(:func:`ensure_process_shaped`, called first thing by the pytest plugin).

:func:`active` says which shape this process runs under; the fingerprint
records it as ``simulated`` and the report gives such runs their own columns,
"Windows (simulated on Linux)", never merged with a real OS.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Tuple

from harness.core import tomlfile

ENV_VAR = "SSCONFORM_OS_SHAPE"
_REEXEC_VAR = "SSCONFORM_OS_SHAPE_RESTARTED"

HERE = os.path.dirname(os.path.abspath(__file__))
#: the directory whose ``sitecustomize`` applies the shape at interpreter start
BOOT_DIR = os.path.join(HERE, "boot")

_active: Optional[Dict[str, Any]] = None
#: the modules imported when the shape was applied: the interpreter's plumbing
_plumbing: frozenset = frozenset()


class ShapeError(ValueError):
    """An unknown shape or a malformed shape file."""


def available() -> List[str]:
    """The shapes that have a data file."""
    return sorted(name[:-5] for name in os.listdir(HERE) if name.endswith(".toml"))


def _version(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in str(text).split("."))


def load(name: str) -> Dict[str, Any]:
    """The parsed data file of shape ``name``."""
    if name not in available():
        raise ShapeError(f"unknown OS shape {name!r}; known: {', '.join(available())}")
    path = os.path.join(HERE, name + ".toml")
    with open(path, "rb") as handle:
        data = tomlfile.tomllib.load(handle)
    from harness.shapes.shims import KINDS

    for shim in data.get("shim", []):
        missing = {"id", "kind", "source", "why"} - set(shim)
        if missing:
            raise ShapeError(f"{path}: shim {shim.get('id', '?')!r} lacks {', '.join(sorted(missing))}")
        if shim["kind"] not in KINDS:
            raise ShapeError(f"{path}: shim {shim['id']!r} has unknown kind {shim['kind']!r}")
    data["file"] = path
    return data


def applies(shim: Mapping[str, Any], version: Tuple[int, ...] = tuple(sys.version_info[:2])) -> bool:
    """Whether ``shim`` applies to Python ``version`` (its ``python_before`` / ``python_from``)."""
    if "python_before" in shim and version >= _version(shim["python_before"]):
        return False
    return not ("python_from" in shim and version < _version(shim["python_from"]))


_ARG_KEYS = {"id", "kind", "source", "why", "python_before", "python_from"}


def apply(name: str) -> Dict[str, Any]:
    """Reshape this interpreter as shape ``name``; returns what :func:`active` will say."""
    global _active, _plumbing
    if _active is not None:
        if _active["shape"] != name:
            raise ShapeError(f"this process is already shaped as {_active['shape']!r}")
        return _active
    import importlib

    from harness.shapes.shims import KINDS

    data = load(name)
    for module in data.get("preimport", []):
        importlib.import_module(module)
    for module in data.get("preimport_optional", []):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    applied = []
    for shim in data.get("shim", []):
        if not applies(shim):
            continue
        KINDS[shim["kind"]](**{k: v for k, v in shim.items() if k not in _ARG_KEYS})
        applied.append(shim["id"])
    from harness.results.fingerprint import os_name

    _active = {"shape": name, "title": data.get("title", name), "on": os_name(), "shims": applied}
    _plumbing = frozenset(sys.modules)
    return _active


def apply_from_env() -> Optional[Dict[str, Any]]:
    """Apply the shape ``SSCONFORM_OS_SHAPE`` names, if any."""
    name = os.environ.get(ENV_VAR, "").strip()
    return apply(name) if name else None


def active() -> Optional[Dict[str, Any]]:
    """``{"shape", "title", "on", "shims"}`` of this process's shape, or ``None``."""
    return None if _active is None else dict(_active, shims=list(_active["shims"]))


def plumbing() -> frozenset:
    """Modules already imported when the shape was applied (empty without a shape): an
    implementation's bootstrap (gevent's patching) comes after them, not before everything."""
    return _plumbing


def env_for(name: Optional[str], env: Optional[MutableMapping[str, str]] = None) -> Dict[str, str]:
    """``env`` (default ``os.environ``) made to start shape ``name`` in every child."""
    result = dict(os.environ if env is None else env)
    if not name:
        return result
    if name not in available():
        raise ShapeError(f"unknown OS shape {name!r}; known: {', '.join(available())}")
    result[ENV_VAR] = name
    parts = [p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p and p != BOOT_DIR]
    result["PYTHONPATH"] = os.pathsep.join([BOOT_DIR] + parts)
    return result


def unshaped_env(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``env`` (default ``os.environ``) without a shape: for third-party tools (tox, nox)
    that choose their POSIX code by ``sys.platform``, which a shape leaves ``linux``."""
    result = dict(os.environ if env is None else env)
    result.pop(ENV_VAR, None)
    result.pop(_REEXEC_VAR, None)
    parts = [p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p and p != BOOT_DIR]
    if parts:
        result["PYTHONPATH"] = os.pathsep.join(parts)
    else:
        result.pop("PYTHONPATH", None)
    return result


def _command_line() -> List[str]:
    orig = getattr(sys, "orig_argv", None)  # 3.10+
    if orig:
        return [sys.executable] + list(orig[1:])
    argv0 = sys.argv[0]
    if os.path.basename(argv0) == "__main__.py":  # python -m PACKAGE (3.9)
        return [sys.executable, "-m", os.path.basename(os.path.dirname(argv0))] + sys.argv[1:]
    return [sys.executable] + sys.argv


def ensure_process_shaped() -> None:
    """If ``SSCONFORM_OS_SHAPE`` is set but this process was not shaped at
    start, restart it (same command line) with the boot directory in place."""
    name = os.environ.get(ENV_VAR, "").strip()
    if not name or _active is not None:
        return
    if os.environ.get(_REEXEC_VAR):
        raise ShapeError(f"{ENV_VAR}={name}: restarted with {BOOT_DIR} on PYTHONPATH, still not shaped")
    env = env_for(name)
    env[_REEXEC_VAR] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, _command_line(), env)


__all__ = ["ENV_VAR", "BOOT_DIR", "ShapeError", "available", "load", "applies", "apply", "apply_from_env",
           "active", "plumbing", "env_for", "unshaped_env", "ensure_process_shaped"]
