"""Start the suite in a process whose implementation must be bootstrapped first.

Theory of operation
-------------------
gevent and eventlet replace ``socket``, ``threading``, ``select`` and
friends by monkey-patching, which only works if it happens before anything
imports those modules.  pytest imports plenty of them while it starts, so
for an adapter with a ``bootstrap`` the CLI does not run ``python -m
pytest`` but::

    python -m harness.implementations.launch IMPL -- <pytest arguments>

This module imports only what the adapter declaration needs (the
``harness.implementations`` registry, which imports no networking module),
calls the bootstrap callable (``"module:function"``) through
:func:`harness.processes.child_protocol.bootstrap`, and only then imports
pytest -- through :func:`importlib.import_module` inside :func:`run`, so the
import happens after patching.  That is the one place where ``harness``
touches pytest, and it is deliberate: ``harness`` never imports pytest at
module level, and this module is only ever executed as ``__main__`` in a
process that is going to run pytest anyway.

``python -m harness.implementations.launch --describe SPEC...`` prints, as JSON, what the
CLI needs to know about an interpreter it does not run in itself (``ssconform
run --python EXE``): per spec the implementation facts or the
ImplementationError text, whether a bootstrap is needed, the platform
fingerprint, and whether the ``ssconform`` pytest11 entry point is registered
in that interpreter's environment.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, Dict, List, Optional

PYTEST11_NAME = "ssconform"


def plugin_registered() -> bool:
    """Whether pytest in this environment will load the ``ssconform`` plugin by itself:
    the pytest11 entry point is registered and autoloading is not disabled."""
    import os
    from importlib import metadata

    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False

    try:
        eps = metadata.entry_points()
        # A version test rather than hasattr(eps, "select") (3.10 added it):
        # the same split, and one a type checker can follow.
        if sys.version_info >= (3, 10):
            group = eps.select(group="pytest11")
        else:  # Python 3.9: a plain dict of group -> list
            group = eps.get("pytest11", [])
    except Exception:
        return False
    return any(ep.name == PYTEST11_NAME for ep in group)


def missing_requirements() -> List[str]:
    """Distributions the suite needs that this interpreter cannot import."""
    import importlib.util

    return [name for name in ("pytest", "jsonschema") if importlib.util.find_spec(name) is None]


def describe(spec: str) -> Dict[str, Any]:
    """Facts about ``spec`` in this interpreter (never raises for a bad spec)."""
    from harness.implementations import ImplementationError, resolve
    from harness.results.fingerprint import fingerprint

    try:
        impl = resolve(spec)
    except ImplementationError as exc:
        return {"spec": spec, "implementation": None, "error": str(exc), "bootstrap": None,
                "fingerprint": fingerprint()}
    bootstrap = impl.adapter.bootstrap if impl.adapter is not None else None
    return {"spec": spec, "implementation": impl.describe(), "error": None, "bootstrap": bootstrap,
            "fingerprint": fingerprint(impl)}


def run(impl_name: str, pytest_args: List[str]) -> int:
    """Bootstrap ``impl_name`` (:func:`harness.processes.child_protocol.bootstrap`, the one
    bootstrap of every child), then run pytest with ``pytest_args`` in this process."""
    from harness.processes.child_protocol import bootstrap

    bootstrap(impl_name)
    pytest = importlib.import_module("pytest")  # after patching, on purpose
    return int(pytest.main(list(pytest_args)))


USAGE = (
    "usage: python -m harness.implementations.launch IMPL -- PYTEST_ARGS...\n"
    "       python -m harness.implementations.launch --describe SPEC..."
)


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--describe"]:
        info = {"plugin_registered": plugin_registered(), "python": sys.executable,
                "missing": missing_requirements(),
                "implementations": [describe(spec) for spec in args[1:]]}
        print(json.dumps(info))
        return 0
    if len(args) < 2 or args[1] != "--" or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    return run(args[0], args[2:])


if __name__ == "__main__":
    raise SystemExit(main())
