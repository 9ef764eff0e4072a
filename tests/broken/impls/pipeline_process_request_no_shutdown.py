"""BROKEN: BaseServer.process_request() runs the handler but never calls shutdown_request()."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("PIPELINE-001", "PIPELINE-002", "PIPELINE-012")


def process_request(self, request, client_address):
    self.finish_request(request, client_address)  # BROKEN: no shutdown_request()


BaseServer.process_request = process_request
