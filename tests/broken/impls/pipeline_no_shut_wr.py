"""BROKEN: TCPServer.shutdown_request() only closes: no shutdown(SHUT_WR)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("PIPELINE-002",)


def shutdown_request(self, request):
    self.close_request(request)  # BROKEN: no SHUT_WR


TCPServer.shutdown_request = shutdown_request
