"""BROKEN: finish_request() passes the listening socket as the handler's server argument."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# the probes find the handler's server is not the server: the checks that use it in a handler
# (HANDLER-004/013, SHUTDOWN-010, THREADING-012) end PRECONDITION_FAILED naming PIPELINE-014
BREAKS = {"PIPELINE-011": "FAIL", "PIPELINE-014": "FAIL", "HANDLER-015": "FAIL", "HANDLER-004": "PRECONDITION_FAILED"}


def finish_request(self, request, client_address):
    self.RequestHandlerClass(request, client_address, self.socket)  # BROKEN: not the server


BaseServer.finish_request = finish_request
