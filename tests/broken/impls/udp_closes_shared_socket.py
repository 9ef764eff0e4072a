"""BROKEN: UDPServer.close_request closes the request's socket, which is the shared server socket."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UDP-004",)


UDPServer.close_request = lambda self, request: request[1].close()  # noqa: F821
