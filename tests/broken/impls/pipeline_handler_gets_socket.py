"""BROKEN: finish_request() passes the listening socket as the handler's server argument."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("PIPELINE-011", "PIPELINE-014", "HANDLER-015")


def finish_request(self, request, client_address):
    self.RequestHandlerClass(request, client_address, self.socket)  # BROKEN: not the server


BaseServer.finish_request = finish_request
