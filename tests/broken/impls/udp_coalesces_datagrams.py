"""BROKEN: get_request drains the socket and keeps only the newest pending datagram."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UDP-009",)


def get_request(self):
    data, client_addr = self.socket.recvfrom(self.max_packet_size)
    self.socket.setblocking(False)
    try:
        for _ in range(1000):
            data, client_addr = self.socket.recvfrom(self.max_packet_size)
    except BlockingIOError:
        pass
    finally:
        self.socket.setblocking(True)
    return (data, self.socket), client_addr


UDPServer.get_request = get_request  # noqa: F821
