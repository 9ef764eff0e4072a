"""BROKEN: ForkingMixIn.max_children defaults to 10"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-015',)

ForkingMixIn.max_children = 10  # noqa: F821
