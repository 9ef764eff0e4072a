"""BROKEN: UDPServer's own process_request() connect()s the shared socket to the client after the
handler, so every later client's datagrams are discarded by the kernel (connect(2): a connected
datagram socket receives only from its peer).  No handler sees the socket connected while its own
request runs; the probes' served datagram request finds it (datagram_socket_unconnected)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: UDP-009 (every client answered), UDP-010 and DISCONNECT-009[UDPServer] (the next client served,
#: after a vanished one) are what a connected socket breaks; CONCURRENCY-004 needs every client
#: answered to judge serialisation: it names UDP-009.  Threading*/Forking* datagram servers have a
#: process_request() of their own, and are not broken.
BREAKS = {"UDP-009": "FAIL", "UDP-010": "FAIL", "DISCONNECT-009": "FAIL", "CONCURRENCY-004": "PRECONDITION_FAILED"}


def process_request(self, request, client_address):
    self.finish_request(request, client_address)
    self.socket.connect(client_address)  # BROKEN: the shared socket now only hears this client
    self.shutdown_request(request)


UDPServer.process_request = process_request
