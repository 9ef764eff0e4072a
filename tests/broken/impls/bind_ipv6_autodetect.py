"""BROKEN: an AF_INET server silently switches to AF_INET6 for an IPv6 literal."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-012",)


_server_bind = TCPServer.server_bind


def server_bind(self):
    host = self.server_address[0] if isinstance(self.server_address, tuple) else ""
    if self.socket.family == socket.AF_INET and ":" in str(host):
        # BROKEN: guesses the family instead of raising
        self.socket.close()
        self.socket = socket.socket(socket.AF_INET6, self.socket_type)
    _server_bind(self)


TCPServer.server_bind = server_bind
