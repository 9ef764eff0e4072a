"""The check side's one in-memory event recorder.

Theory of operation
-------------------
Hooks overridden in a subclass of the implementation's server, handlers
built by a check, and the check's own threads call ``recorder.add(name,
**info)``; the check then waits (bounded, event-driven: a condition
variable, never a sleep) for a predicate over what was recorded, or reads
the events back in the one total order in which they happened:

* :meth:`Recorder.count`, :meth:`Recorder.names`, :meth:`Recorder.infos`
  and :meth:`Recorder.first` read the events;
* :meth:`Recorder.before` answers "did ``a`` happen before ``b``", which
  is how an order of steps ("server_close returned only after the handler
  ended") is proved: by the order of events, not by how long anything took;
* :meth:`Recorder.wait` raises :class:`~harness.core.timeouts.HarnessTimeout`
  when the predicate does not come true within its budget,
  :meth:`Recorder.reached` answers instead of raising (for a check that
  turns "it did not happen" into an observation).

Every event gets ``t`` (:func:`harness.core.clock.now`) and ``thread`` unless
given.  Events beyond :attr:`Recorder.MAX_EVENTS` are only counted, so a
spinning serving loop (tens of thousands of ``service_actions`` calls) costs
no memory; counts stay exact.

The recorder lives in one process.  Events that must cross a process
boundary (handlers in a forking server's children) go to
:class:`harness.serving.instrument.EventLog`, a file; :mod:`conformance.tools.event_log`
queries it.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from harness.core import clock, timeouts
from harness.core.timeouts import HarnessTimeout


class Recorder:
    """Named events from hooks, handlers and threads, in the order they happened."""

    #: events beyond this many are only counted (a spinning loop must not
    #: exhaust memory); counts stay exact.
    MAX_EVENTS = 10_000

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self.events: List[Tuple[str, Dict[str, Any]]] = []
        self.counts: Dict[str, int] = {}

    def add(self, name: str, **info: Any) -> None:
        info.setdefault("t", clock.now())
        info.setdefault("thread", threading.get_ident())
        with self._cond:
            self.counts[name] = self.counts.get(name, 0) + 1
            if len(self.events) < self.MAX_EVENTS:
                self.events.append((name, info))
            self._cond.notify_all()

    def count(self, name: str) -> int:
        with self._cond:
            return self.counts.get(name, 0)

    def names(self, *only: str) -> List[str]:
        """The names of the events, in order (only those in ``only`` if given)."""
        with self._cond:
            return [name for name, _ in self.events if not only or name in only]

    def infos(self, name: str) -> List[Dict[str, Any]]:
        with self._cond:
            return [info for event, info in self.events if event == name]

    def first(self, name: str) -> Optional[Dict[str, Any]]:
        found = self.infos(name)
        return found[0] if found else None

    def before(self, first: str, second: str) -> bool:
        """Both happened and the first ``first`` came before the first ``second``."""
        names = self.names()
        return first in names and second in names and names.index(first) < names.index(second)

    def wait(self, predicate: Callable[[Recorder], Any], budget: float, what: str) -> None:
        """Block until ``predicate(self)`` is true; HarnessTimeout after ``budget``."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout=budget):
                raise HarnessTimeout(what, budget)

    def reached(self, predicate: Callable[[Recorder], Any], budget: float) -> bool:
        """Like :meth:`wait`, but answers instead of raising."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self), timeout=budget))

    def wait_count(self, name: str, n: int, budget: Optional[float] = None) -> None:
        budget = timeouts.short() if budget is None else budget
        self.wait(lambda r: r.count(name) >= n, budget, f"{n} x {name}")


__all__ = ["Recorder"]
