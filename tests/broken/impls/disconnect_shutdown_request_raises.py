"""BROKEN: TCPServer.shutdown_request lets shutdown(SHUT_WR)'s OSError escape (ENOTCONN after a reset)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# the probes find a client that resets during its handler ending the loop (TCPServer) or leaving its
# request open (ThreadingTCPServer): every other check that then fails ends PRECONDITION_FAILED naming
# DISCONNECT-002 (DISCONNECT-003's next client, a scenario's leaked request)
BREAKS = {"DISCONNECT-002": "FAIL", "DISCONNECT-003": "PRECONDITION_FAILED"}


def shutdown_request(self, request):
    request.shutdown(socket.SHUT_WR)  # BROKEN: "some platforms may raise ENOTCONN here"
    self.close_request(request)


TCPServer.shutdown_request = shutdown_request
