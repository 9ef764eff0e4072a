"""BROKEN: UDPServer.close_request closes the request's socket, which is the shared server socket."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: DISCONNECT-009 sees the next datagram client go unserved; the probes find the closed socket
#: once (UDP-004 owns it), and every later datagram server of this class is refused naming it
BREAKS = {"UDP-004": "FAIL", "DISCONNECT-009": "PRECONDITION_FAILED"}

UDPServer.close_request = lambda self, request: request[1].close()  # BROKEN: UDPServer.close_request must leave the shared socket open
