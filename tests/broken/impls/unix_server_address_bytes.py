"""BROKEN: AF_UNIX servers report server_address as bytes, not the path string."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: UNIX-001 and UNIX-002 (each: server_address is the bound path, of its kind), UNIX-006 (an accepted
#: path is reported untruncated, as itself)
BREAKS = ("UNIX-001", "UNIX-002", "UNIX-006")


import os as _os  # noqa: E402

_server_bind = TCPServer.server_bind  # noqa: F821


def server_bind(self):
    _server_bind(self)
    self.server_address = _os.fsencode(self.server_address)


UnixStreamServer.server_bind = server_bind  # noqa: F821
UnixDatagramServer.server_bind = server_bind  # noqa: F821
