"""BROKEN: UDPServer reads up to 65535 bytes whatever max_packet_size says."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UDP-002", "UDP-003")


def get_request(self):
    data, client_addr = self.socket.recvfrom(65535)
    return (data, self.socket), client_addr


UDPServer.get_request = get_request  # noqa: F821
