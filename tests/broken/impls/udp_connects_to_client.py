"""BROKEN: datagram replies connect() the shared server socket to the client, which then filters everyone else."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: the server socket answers only its first client afterwards: UDP-009 (every datagram of several
#: clients is answered and reaches its sender), CONCURRENCY-005 (handlers reply through the shared
#: socket to their own clients) and CONCURRENCY-006 (forked children reply through the inherited
#: socket), and UDP-010 (the next client is served) each find the shared socket connected
#: (getpeername()) after their first replies, before the other clients send
#: (conformance/tools/shared_socket.py); CONCURRENCY-004 then ends PRECONDITION_FAILED naming UDP-009.
#: UDP-008 (three held handlers reply to their own clients) may still pass: its replies can all
#: leave before the first connect()
BREAKS = ("UDP-010", "UDP-009", "CONCURRENCY-005", "CONCURRENCY-006")


def finish(self):
    self.socket.connect(self.client_address)
    self.socket.send(self.wfile.getvalue())


DatagramRequestHandler.finish = finish  # noqa: F821
