"""BROKEN: BaseServer has no verify_request"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-020',)

del BaseServer.verify_request  # noqa: F821
