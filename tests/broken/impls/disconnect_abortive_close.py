"""BROKEN: TCPServer closes each request abortively (SO_LINGER 0 "to avoid TIME_WAIT"): RST, not FIN."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib
import struct as _struct

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("PIPELINE-002",)


def shutdown_request(self, request):
    try:
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _struct.pack("ii", 1, 0))  # BROKEN
    except OSError:
        pass
    self.close_request(request)


TCPServer.shutdown_request = shutdown_request
