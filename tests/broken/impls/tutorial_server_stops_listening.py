"""BROKEN: TCPServer.shutdown_request closes the listening socket along with the request
(self.socket mistaken for the request), so no second client is ever served."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: SERVE-007's clause (serve_forever() handles requests until shutdown()) is this defect: the probes
#: find the listener closed after one request, and every later loop of TCPServer, UnixStreamServer
#: and their Threading* kinds ends PRECONDITION_FAILED naming SERVE-007, the tutorial's included;
#: PIPELINE-006's clause (after a handler exception the listening socket stays open) is violated too
BREAKS = {"SERVE-007": "FAIL", "PIPELINE-006": "FAIL", "TUTORIAL-001": "PRECONDITION_FAILED",
          "TUTORIAL-002": "PRECONDITION_FAILED", "TUTORIAL-003": "PRECONDITION_FAILED"}

_shutdown_request = TCPServer.shutdown_request


def shutdown_request(self, request):
    _shutdown_request(self, request)
    self.socket.close()  # BROKEN


TCPServer.shutdown_request = shutdown_request
