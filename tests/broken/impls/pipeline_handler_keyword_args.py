"""BROKEN: finish_request() passes keyword arguments, so only handlers with the stdlib's parameter names work."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("PIPELINE-011", "HANDLER-015")


def finish_request(self, request, client_address):
    # BROKEN: keyword arguments
    self.RequestHandlerClass(request=request, client_address=client_address, server=self)


BaseServer.finish_request = finish_request
