"""BROKEN: servers always create AF_INET sockets, ignoring address_family."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: every Unix server and every IPv6 server fails to construct too: UNIX-001, UNIX-002 and BIND-011
#: observe it, and the checks that need such a server end PRECONDITION_FAILED naming them
BREAKS = ("UDP-011", "UNIX-001", "UNIX-002", "BIND-011")


_init = TCPServer.__init__  # noqa: F821


def __init__(self, server_address, RequestHandlerClass, bind_and_activate=True):
    self.address_family = socket.AF_INET  # noqa: F821
    _init(self, server_address, RequestHandlerClass, bind_and_activate)


TCPServer.__init__ = __init__  # noqa: F821
