"""BROKEN: ThreadingTCPServer lists its mix-in after the server class"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-009',)

class ThreadingTCPServer(TCPServer, ThreadingMixIn):  # noqa: F821
    pass
