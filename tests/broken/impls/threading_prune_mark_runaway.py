"""BROKEN: threads are pruned amortised, but the next prune waits for 2 ** alive threads.

Sequential requests keep few threads alive at each prune, so the list
stays short (THREADING-008 passes); after a burst of concurrent requests
the mark runs away and finished threads pile up (bpo-37193).
"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("THREADING-013",)


def append(self, thread):
    if thread.daemon:
        return
    if len(self) >= getattr(self, "_mark", 8):
        self.reap()
        self._mark = max(8, 2 ** len(self))
    list.append(self, thread)


_Threads.append = append  # noqa: F821
