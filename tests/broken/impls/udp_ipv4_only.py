"""BROKEN: servers always create AF_INET sockets, ignoring address_family."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UDP-011",)


_init = TCPServer.__init__  # noqa: F821


def __init__(self, server_address, RequestHandlerClass, bind_and_activate=True):
    self.address_family = socket.AF_INET  # noqa: F821
    _init(self, server_address, RequestHandlerClass, bind_and_activate)


TCPServer.__init__ = __init__  # noqa: F821
