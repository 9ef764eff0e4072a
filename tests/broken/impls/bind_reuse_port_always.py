"""BROKEN: server_bind() always sets SO_REUSEPORT, so a second server can share a live port."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-008", "BIND-010")
REQUIRES = ('reuse_port',)  # the breakage shows only where SO_REUSEPORT exists


_server_bind = TCPServer.server_bind


def server_bind(self):
    if hasattr(socket, "SO_REUSEPORT") and self.address_family != getattr(socket, "AF_UNIX", None):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # BROKEN: unconditional
    _server_bind(self)


TCPServer.server_bind = server_bind
