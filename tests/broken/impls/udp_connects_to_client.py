"""BROKEN: datagram replies connect() the shared server socket to the client, which then filters everyone else."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UDP-010",)


def finish(self):
    self.socket.connect(self.client_address)
    self.socket.send(self.wfile.getvalue())


DatagramRequestHandler.finish = finish  # noqa: F821
