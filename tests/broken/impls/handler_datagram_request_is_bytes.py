"""BROKEN: a datagram request is only the data; the handler takes the socket from the server."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-013",)


def get_request(self):
    return self.socket.recvfrom(self.max_packet_size)


def setup(self):
    import io

    self.packet, self.socket = self.request, self.server.socket
    self.rfile = io.BytesIO(self.packet)
    self.wfile = io.BytesIO()


UDPServer.get_request = get_request  # noqa: F821
DatagramRequestHandler.setup = setup  # noqa: F821
