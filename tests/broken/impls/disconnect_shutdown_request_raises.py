"""BROKEN: TCPServer.shutdown_request lets shutdown(SHUT_WR)'s OSError escape (ENOTCONN after a reset)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("DISCONNECT-002",)


def shutdown_request(self, request):
    request.shutdown(socket.SHUT_WR)  # BROKEN: "some platforms may raise ENOTCONN here"
    self.close_request(request)


TCPServer.shutdown_request = shutdown_request
