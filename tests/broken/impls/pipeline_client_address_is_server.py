"""BROKEN: TCPServer.get_request() returns the server's address instead of the client's."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("PIPELINE-007", "PIPELINE-011", "PIPELINE-013", "PIPELINE-014", "PIPELINE-016")


def get_request(self):
    request, _client_address = self.socket.accept()
    return request, self.server_address  # BROKEN: wrong address


TCPServer.get_request = get_request
