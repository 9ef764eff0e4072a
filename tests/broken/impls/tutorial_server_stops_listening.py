"""BROKEN: TCPServer.shutdown_request closes the listening socket along with the request
(self.socket mistaken for the request), so no second client is ever served."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("TUTORIAL-001", "TUTORIAL-002", "TUTORIAL-003")

_shutdown_request = TCPServer.shutdown_request


def shutdown_request(self, request):
    _shutdown_request(self, request)
    self.socket.close()  # BROKEN


TCPServer.shutdown_request = shutdown_request
