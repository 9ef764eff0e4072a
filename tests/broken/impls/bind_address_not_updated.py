"""BROKEN: server_bind() does not store the bound address: port 0 stays 0."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: BIND-011 reads server_address after binding too (an IPv6 server keeps its port 0 2-tuple)
BREAKS = ("BIND-003", "BIND-004", "BIND-011")


_server_bind = TCPServer.server_bind


def server_bind(self):
    requested = self.server_address
    _server_bind(self)
    self.server_address = requested  # BROKEN: getsockname() is forgotten


TCPServer.server_bind = server_bind
