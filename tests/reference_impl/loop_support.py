"""Spies on ``reference_impl``'s serving loop, shared by its loop tests.

Theory of operation
-------------------
Whether ``shutdown()`` is immediate can only be judged once the loop is
already blocked in ``select``, so :class:`SelectSpy` replaces the selector
class ``_base`` uses with a subclass that signals "about to select" (and
can run a hook at that point).  :func:`shutdown_seconds` times one bounded
``shutdown()`` from a helper thread.  Used by ``test_refimpl_loop.py`` (the
loop's documented behaviour) and ``test_extensions.py`` (the reference's
promises beyond the standard library).
"""

from __future__ import annotations

import threading
import time

from harness.core import timeouts
from reference_impl import _base


class SelectSpy:
    """Replaces ``_base.ServerSelector``; reports each entry into ``select``."""

    def __init__(self, monkeypatch):
        self.entered = threading.Event()
        self.hook = None
        spy = self
        real = _base.ServerSelector

        class Spy(real):
            def select(self, timeout=None):
                if spy.hook is not None:
                    hook, spy.hook = spy.hook, None
                    hook()
                spy.entered.set()
                return super().select(timeout)

        monkeypatch.setattr(_base, "ServerSelector", Spy)

    def wait_entered(self, what="serve_forever to block in select"):
        timeouts.wait_event(self.entered, timeouts.short(), what)
        self.entered.clear()


def shutdown_seconds(server, in_thread):
    """How long one ``shutdown()`` took (bounded by ``short()``)."""
    started = time.monotonic()
    in_thread(server.shutdown).result(timeouts.short(), "shutdown() to return")
    return time.monotonic() - started
