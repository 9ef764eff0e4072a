"""BROKEN: the constructor always creates an AF_INET socket, ignoring address_family."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: no IPv6 server binds: BIND-011 (TCP) and UDP-011 (a UDPServer with address_family = AF_INET6
#: serves on ::1) both see the AF_INET socket refuse ('::1', 0)
BREAKS = ("BIND-011", "UDP-011")


def __init__(self, server_address, RequestHandlerClass, bind_and_activate=True):
    BaseServer.__init__(self, server_address, RequestHandlerClass)
    family = socket.AF_INET if self.address_family == socket.AF_INET6 else self.address_family
    self.socket = socket.socket(family, self.socket_type)  # BROKEN: AF_INET6 becomes AF_INET
    if bind_and_activate:
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise


TCPServer.__init__ = __init__
