"""BROKEN: TCPServer.allow_reuse_address defaults to True"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-010',)

TCPServer.allow_reuse_address = True  # noqa: F821
