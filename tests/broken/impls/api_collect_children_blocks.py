"""BROKEN: collect_children blocks by default"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-024',)

_collect = ForkingMixIn.collect_children  # noqa: F821


def _blocking_collect(self, *, blocking=True):
    return _collect(self, blocking=blocking)


ForkingMixIn.collect_children = _blocking_collect  # noqa: F821
