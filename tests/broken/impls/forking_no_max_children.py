"""BROKEN: collect_children never waits at max_children: serve_forever forks without limit."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-002", "FORKING-013")


_collect_children = ForkingMixIn.collect_children  # noqa: F821


def collect_children(self, *, blocking=False):
    limit = self.max_children
    self.max_children = float("inf")
    try:
        _collect_children(self, blocking=blocking)
    finally:
        self.max_children = limit


ForkingMixIn.collect_children = collect_children  # noqa: F821
