"""BROKEN: the constructor calls server_activate() before server_bind()."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: UnixStreamServer inherits the constructor: UNIX-001 sees it fail too; so does BIND-011 (an
#: AF_INET6 TCPServer on ('::1', 0) constructs), whose server cannot listen before it binds
BREAKS = ("BIND-001", "UNIX-001", "BIND-011")


def __init__(self, server_address, RequestHandlerClass, bind_and_activate=True):
    BaseServer.__init__(self, server_address, RequestHandlerClass)
    self.socket = socket.socket(self.address_family, self.socket_type)
    if bind_and_activate:
        try:
            self.server_activate()  # BROKEN: listens before binding
            self.server_bind()
        except BaseException:
            self.server_close()
            raise


TCPServer.__init__ = __init__
