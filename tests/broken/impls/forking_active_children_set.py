"""BROKEN: active_children starts as an empty set shared by the class, not None."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-012", "API-015")


ForkingMixIn.active_children = set()  # noqa: F821
