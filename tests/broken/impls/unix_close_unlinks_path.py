"""BROKEN: server_close() of AF_UNIX servers unlinks the socket path."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UNIX-004",)


import os as _os  # noqa: E402

_server_close = TCPServer.server_close  # noqa: F821


def server_close(self):
    _server_close(self)
    try:
        _os.unlink(self.server_address)
    except OSError:
        pass


UnixStreamServer.server_close = server_close  # noqa: F821
UnixDatagramServer.server_close = server_close  # noqa: F821
