"""BROKEN: bind_and_activate=False is ignored: the constructor always binds and listens."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-002",)


def __init__(self, server_address, RequestHandlerClass, bind_and_activate=True):
    BaseServer.__init__(self, server_address, RequestHandlerClass)
    self.socket = socket.socket(self.address_family, self.socket_type)
    try:
        self.server_bind()  # BROKEN: whatever bind_and_activate says
        self.server_activate()
    except BaseException:
        self.server_close()
        raise


TCPServer.__init__ = __init__
