"""The platform fingerprint: every fact about *where* a run happened.

Theory of operation
-------------------
A conformance result means little without the platform it was observed on:
the same check legitimately differs between Linux and Windows, between a
free-threaded and a GIL build, between ``fork`` and ``spawn``.  Every record
therefore carries this fingerprint, and the report groups and labels cells
by it; expectations (``harness.results.expectations``) match their ``when``
conditions against it.

Each fact is read without changing anything: the multiprocessing start
method is read with ``allow_none=True`` and, when unset, the platform
default is reported *without* fixing it (calling ``get_context()`` would);
``RLIMIT_NOFILE`` is read only when :func:`harness.core.capabilities.caps` says
the ``resource`` module is usable (so a simulated Windows run reports
``null`` exactly as Windows would).  Facts that cannot be known are
``null`` or ``"unknown"``, never guessed.

Privacy: the hostname is never stored in clear; ``hostname_hash`` is a
truncated SHA-256 of it, enough to tell "same machine" in a merged report.
CI metadata comes only from GitHub Actions' documented variables and is
``null`` elsewhere.

A run under an OS shape (:mod:`harness.shapes`) adds ``simulated``:
``{"shape": "windows", "on": "linux", "shims": [...]}``.  ``os`` stays the OS
the run really happened on.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import socket
import sys
import sysconfig
from typing import Any, Dict, List, Mapping, Optional

from harness import shapes
from harness.core import capabilities

#: sys.platform prefixes -> the OS names used in records and expectations.
_OS_NAMES = (
    ("linux", "linux"),
    ("win32", "windows"),
    ("cygwin", "cygwin"),
    ("darwin", "macos"),
    ("freebsd", "freebsd"),
    ("openbsd", "openbsd"),
    ("netbsd", "netbsd"),
    ("dragonfly", "dragonfly"),
    ("sunos", "solaris"),
    ("aix", "aix"),
    ("emscripten", "emscripten"),
    ("wasi", "wasi"),
)

#: multiprocessing's default start method on Python 3.9-3.13, when unset.
_DEFAULT_START = {"linux": "fork", "freebsd": "fork", "openbsd": "fork", "netbsd": "fork",
                  "macos": "spawn", "windows": "spawn"}

#: GitHub Actions variable -> key of the ``ci`` object.
GITHUB_VARIABLES = (
    ("RUNNER_OS", "runner_os"),
    ("RUNNER_ARCH", "runner_arch"),
    ("ImageOS", "image"),
    ("ImageVersion", "image_version"),
    ("GITHUB_WORKFLOW", "workflow"),
    ("GITHUB_RUN_ID", "run_id"),
    ("GITHUB_JOB", "job"),
    ("GITHUB_REPOSITORY", "repository"),
    ("GITHUB_SHA", "sha"),
)


def os_name(platform_string: Optional[str] = None) -> str:
    """``sys.platform`` normalised: linux, windows, macos, freebsd, ..."""
    raw = platform_string if platform_string is not None else sys.platform
    for prefix, name in _OS_NAMES:
        if raw.startswith(prefix):
            return name
    return re.sub(r"\d+$", "", raw) or "unknown"


def gil_state() -> str:
    """``enabled``/``disabled`` where knowable, else ``unknown``."""
    probe = getattr(sys, "_is_gil_enabled", None)
    if probe is not None:
        try:
            return "enabled" if probe() else "disabled"
        except Exception:
            return "unknown"
    if platform.python_implementation() == "CPython" and not sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "enabled"
    return "unknown"


def python_build() -> str:
    number, date = platform.python_build()
    return f"{number}, {date} ({platform.python_compiler()})"


def selector_names() -> Dict[str, Optional[str]]:
    """socketserver's own selector class and selectors.DefaultSelector."""
    names: Dict[str, Optional[str]] = {"selector": None, "default_selector": None}
    try:
        import socketserver

        chosen = getattr(socketserver, "_ServerSelector", None)
        names["selector"] = getattr(chosen, "__name__", None)
    except Exception:
        pass
    try:
        import selectors

        names["default_selector"] = selectors.DefaultSelector.__name__
    except Exception:
        pass
    return names


def start_method() -> Optional[str]:
    """The multiprocessing start method in force, or the default it would use; never sets it."""
    try:
        import multiprocessing
        import multiprocessing.context as mp_context
    except Exception:
        return None
    try:
        current = multiprocessing.get_start_method(allow_none=True)
    except Exception:
        current = None
    if current:
        return current
    # DefaultContext keeps the platform default in a private attribute;
    # reading it does not fix the context (get_context() would).
    default = getattr(getattr(mp_context, "_default_context", None), "_default_context", None)
    name = getattr(default, "_name", None)
    if isinstance(name, str):
        return name
    return _DEFAULT_START.get(os_name())


def rlimit_nofile() -> Optional[List[Optional[int]]]:
    """``[soft, hard]`` of RLIMIT_NOFILE (``null`` for unlimited), or ``None`` where absent."""
    if not capabilities.caps().rlimit:
        return None
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, AttributeError, OSError, ValueError):
        return None
    infinity = getattr(resource, "RLIM_INFINITY", -1)
    return [None if soft == infinity else int(soft), None if hard == infinity else int(hard)]


def hostname_hash(hostname: Optional[str] = None) -> str:
    name = hostname if hostname is not None else socket.gethostname()
    return hashlib.sha256(("ssconform-host:" + name).encode("utf-8", "replace")).hexdigest()[:16]


def ci_metadata(env: Optional[Mapping[str, str]] = None) -> Optional[Dict[str, Any]]:
    """GitHub Actions facts when running there, else ``None``."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS", "").lower() != "true":
        return None
    data: Dict[str, Any] = {"provider": "github-actions"}
    for variable, key in GITHUB_VARIABLES:
        value = env.get(variable)
        data[key] = value if value else None
    return data


def fingerprint(impl=None, env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The fingerprint of this process (record shape, ``fingerprint`` object).

    ``impl`` (a :class:`~harness.implementations.LoadedImplementation`)
    adds ``impl_extra``: versions of what it runs on (gevent, eventlet).
    ``env`` replaces ``os.environ`` for the CI metadata (tests).
    """
    data: Dict[str, Any] = {
        "os": os_name(),
        "os_release": platform.release(),
        "os_version": platform.version(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
        "python_build": python_build(),
        "gil": gil_state(),
        "capabilities": capabilities.caps().as_dict(),
    }
    data.update(selector_names())
    data["mp_start_method"] = start_method()
    data["rlimit_nofile"] = rlimit_nofile()
    data["hostname_hash"] = hostname_hash()
    data["ci"] = ci_metadata(env)
    shaped = shapes.active()
    if shaped is not None:
        data["simulated"] = {"shape": shaped["shape"], "on": shaped["on"], "shims": shaped["shims"]}
    if impl is not None:
        data["impl_extra"] = {str(k): str(v) for k, v in dict(getattr(impl, "extra", {}) or {}).items()}
    return data


__all__ = ["fingerprint", "os_name", "gil_state", "ci_metadata", "rlimit_nofile", "start_method",
           "selector_names", "hostname_hash", "GITHUB_VARIABLES"]
