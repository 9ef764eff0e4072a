"""BROKEN: TCPServer.get_request() returns the server's address instead of the client's."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# the probes find the handler's client_address is not the connection's peer: the checks that read
# it in a handler (HANDLER-004, PIPELINE-010, UNIX-003, BIND-018) end PRECONDITION_FAILED naming PIPELINE-013
BREAKS = {"PIPELINE-007": "FAIL", "PIPELINE-011": "FAIL", "PIPELINE-013": "FAIL", "PIPELINE-014": "FAIL",
          "PIPELINE-016": "FAIL", "HANDLER-004": "PRECONDITION_FAILED"}


def get_request(self):
    request, _client_address = self.socket.accept()
    return request, self.server_address  # BROKEN: wrong address


TCPServer.get_request = get_request
