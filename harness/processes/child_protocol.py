"""The child's side of the harness's JSON-lines process protocol.

Theory of operation
-------------------
Several harness programs run the implementation under test in a child
process and talk to it over pipes (:mod:`harness.processes.server_process`,
:mod:`harness.bench.bench_server`, the forking and shutdown checks' helpers).
They share three needs, met here once:

* :func:`bootstrap` runs the adapter's monkey-patching entry point (gevent,
  eventlet) *before* anything imports ``socket``, ``threading`` or
  ``select``, so the child measures the patched library and not a
  half-patched mix.  This module therefore imports only ``contextlib``,
  ``json``, ``os`` and ``sys``.
* :func:`take_stdout` keeps the real stdout as a private descriptor for the
  protocol and points fd 1 (and ``sys.stdout``) at stderr, so whatever the
  implementation prints cannot corrupt a protocol line.  Forked children
  close that descriptor (``os.register_at_fork``) so a handler process
  cannot hold the parent's pipe open.
* :func:`interrupt_on_stop_signals` makes SIGTERM and, on Windows,
  SIGBREAK (what ``CTRL_BREAK_EVENT`` is delivered as) raise
  ``KeyboardInterrupt`` like SIGINT does, so a child stopped by the
  supervisor (:mod:`harness.processes.supervisor`) ends its work the way
  Ctrl-C ends it -- pytest then writes the record of the checks that ended --
  instead of dying at once (the default action of both).
* :class:`Protocol` writes one JSON object per line with ``os.write`` in a
  loop (a short write is finished, never dropped), bypassing Python's
  buffered streams, which a patched ``sys.stdout`` might replace.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Callable


def bootstrap(impl_spec: str) -> bool:
    """Run the adapter's bootstrap (monkey-patching) of ``impl_spec``, if it
    has one; whether it had one.  An unknown spec has none: resolving it
    later reports the error properly."""
    try:
        from harness.implementations import get_adapter

        adapter = get_adapter(impl_spec)
    except Exception:
        return False
    if not adapter.bootstrap:
        return False
    import importlib

    module_name, _, attribute = adapter.bootstrap.partition(":")
    getattr(importlib.import_module(module_name), attribute)()
    return True


def interrupt_on_stop_signals() -> Callable[[], None]:
    """SIGTERM and SIGBREAK (where they exist) raise ``KeyboardInterrupt``, unless
    someone already handles or ignores them; returns the function that restores
    the previous handlers.  Main thread only (elsewhere nothing changes)."""
    import signal
    import threading

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGBREAK"):  # SIGBREAK: Windows only
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            with contextlib.suppress(OSError, ValueError):
                if signal.getsignal(signum) == signal.SIG_DFL:
                    previous[signum] = signal.signal(signum, signal.default_int_handler)

    def restore() -> None:
        for signum, handler in previous.items():
            with contextlib.suppress(OSError, ValueError):
                signal.signal(signum, handler)

    return restore


class Protocol:
    """JSON lines written to one descriptor."""

    def __init__(self, fd: int):
        self.fd = fd

    def send(self, **fields: Any) -> None:
        line = (json.dumps(fields, sort_keys=True, default=repr) + "\n").encode("utf-8")
        view = memoryview(line)
        while view:
            view = view[os.write(self.fd, view):]


def take_stdout() -> int:
    """Keep the real stdout for the protocol; point fd 1 at stderr.

    Returns the protocol descriptor, closed in every forked child."""
    sys.stdout.flush()
    proto = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if hasattr(os, "register_at_fork"):
        def close_in_child() -> None:
            with contextlib.suppress(OSError):
                os.close(proto)

        os.register_at_fork(after_in_child=close_in_child)
    return proto
