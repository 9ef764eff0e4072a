"""BROKEN: TCPServer.shutdown_request() closes the socket itself and never calls close_request()."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("PIPELINE-001", "PIPELINE-012")


def shutdown_request(self, request):
    try:
        request.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    request.close()  # BROKEN: close_request() is skipped


TCPServer.shutdown_request = shutdown_request
