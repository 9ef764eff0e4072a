"""BROKEN: ThreadingTCPServer lists its mix-in after the server class"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: its ThreadingTCPServer runs BaseServer.process_request: no thread per request, which
#: THREADING-001's clause promises; the other Threading* classes list the mix-in first and serve
BREAKS = ('API-009', 'THREADING-001')

class ThreadingTCPServer(TCPServer, ThreadingMixIn):  # noqa: F821
    pass
