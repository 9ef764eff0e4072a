"""BROKEN: allow_reuse_port (API 3.11) is accepted but never sets SO_REUSEPORT."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-010",)


#: claims the 3.11 API on every interpreter, so BIND-010 expects SO_REUSEPORT
__socketserver_api__ = (3, 11)


def server_bind(self):
    if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # BROKEN: allow_reuse_port is ignored
    self.socket.bind(self.server_address)
    self.server_address = self.socket.getsockname()


TCPServer.allow_reuse_port = False
TCPServer.server_bind = server_bind
