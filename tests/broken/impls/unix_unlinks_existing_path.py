"""BROKEN: server_bind removes whatever is at the path before binding (steals a live server's path)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UNIX-005",)


import os as _os  # noqa: E402

_server_bind = TCPServer.server_bind  # noqa: F821


def server_bind(self):
    try:
        _os.unlink(self.server_address)
    except OSError:
        pass
    _server_bind(self)


UnixStreamServer.server_bind = server_bind  # noqa: F821
UnixDatagramServer.server_bind = server_bind  # noqa: F821
