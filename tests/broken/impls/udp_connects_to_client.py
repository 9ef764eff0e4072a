"""BROKEN: datagram replies connect() the shared server socket to the client, which then filters everyone else."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: the server socket answers only its first client afterwards: UDP-009 (every datagram of several
#: clients is answered and reaches its sender), UDP-008 and CONCURRENCY-005 (handlers reply through
#: the shared socket to their own clients) and CONCURRENCY-006 (forked children reply through the
#: inherited socket) each see the other clients go unanswered
BREAKS = ("UDP-010", "UDP-009", "UDP-008", "CONCURRENCY-005", "CONCURRENCY-006")


def finish(self):
    self.socket.connect(self.client_address)
    self.socket.send(self.wfile.getvalue())


DatagramRequestHandler.finish = finish  # noqa: F821
