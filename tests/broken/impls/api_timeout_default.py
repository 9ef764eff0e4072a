"""BROKEN: BaseServer.timeout defaults to 30 seconds"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-012',)

BaseServer.timeout = 30  # noqa: F821
