"""BROKEN: get_request returns None for an empty datagram, which kills the serving loop (TypeError)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UDP-006",)


def get_request(self):
    data, client_addr = self.socket.recvfrom(self.max_packet_size)
    if not data:
        return None
    return (data, self.socket), client_addr


UDPServer.get_request = get_request  # noqa: F821
