"""BROKEN: __all__ lists a name the module does not define"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-006',)

__all__ = list(__all__) + ["ThreadingSCTPServer"]  # noqa: F821, F822
