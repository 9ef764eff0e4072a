"""BROKEN: allow_reuse_port is True (and present below the 3.11 API)"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-017',)

TCPServer.allow_reuse_port = True  # noqa: F821
