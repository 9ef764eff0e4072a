"""BROKEN: datagram replies go to the client of the most recent request (per-request state on the server)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: CONCURRENCY-005: its clause is that threading datagram replies go "to the right client"
BREAKS = ("THREADING-011", "UDP-008", "CONCURRENCY-005")


_process_request = ThreadingMixIn.process_request  # noqa: F821


def process_request(self, request, client_address):
    self.last_client_address = client_address
    _process_request(self, request, client_address)


def finish(self):
    self.socket.sendto(self.wfile.getvalue(), getattr(self.server, "last_client_address", self.client_address))


ThreadingMixIn.process_request = process_request  # noqa: F821
DatagramRequestHandler.finish = finish  # noqa: F821
