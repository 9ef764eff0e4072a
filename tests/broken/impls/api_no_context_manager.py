"""BROKEN: servers are not context managers"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-019',)

del BaseServer.__enter__  # noqa: F821
