"""BROKEN: a datagram request is only the data; the handler takes the socket from the server."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# get_request() returns no socket with the data: PIPELINE-013 owns the request's shape, and
# every check needing a datagram server ends PRECONDITION_FAILED naming it; HANDLER-014
# builds the handler itself from a (data, socket) request, which this setup() mishandles
BREAKS = {"PIPELINE-013": "FAIL", "HANDLER-013": "PRECONDITION_FAILED", "HANDLER-014": "ERROR"}


def get_request(self):
    return self.socket.recvfrom(self.max_packet_size)


def setup(self):
    import io

    self.packet, self.socket = self.request, self.server.socket
    self.rfile = io.BytesIO(self.packet)
    self.wfile = io.BytesIO()


UDPServer.get_request = get_request  # noqa: F821
DatagramRequestHandler.setup = setup  # noqa: F821
