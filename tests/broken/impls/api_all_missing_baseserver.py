"""BROKEN: BaseServer is missing from __all__ (as in 2.7 and the 3.3-era backport)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("API-001", "API-005")

__all__ = [name for name in __all__ if name != "BaseServer"]  # noqa: F821
