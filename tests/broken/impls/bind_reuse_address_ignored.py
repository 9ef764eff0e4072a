"""BROKEN: server_bind() never sets SO_REUSEADDR, whatever allow_reuse_address says."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-007", "BIND-009")


def server_bind(self):
    # BROKEN: no SO_REUSEADDR
    if getattr(self, "allow_reuse_port", False) and hasattr(socket, "SO_REUSEPORT"):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    self.socket.bind(self.server_address)
    self.server_address = self.socket.getsockname()


TCPServer.server_bind = server_bind
