"""BROKEN: the constructor does not close the socket when server_bind()/server_activate() fails (bpo-22435)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-013", "BIND-014")


def __init__(self, server_address, RequestHandlerClass, bind_and_activate=True):
    BaseServer.__init__(self, server_address, RequestHandlerClass)
    self.socket = socket.socket(self.address_family, self.socket_type)
    if bind_and_activate:
        self.server_bind()  # BROKEN: no server_close() on failure
        self.server_activate()


TCPServer.__init__ = __init__
