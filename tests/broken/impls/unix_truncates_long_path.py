"""BROKEN: a path longer than sun_path is silently truncated to fit instead of raising."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UNIX-006",)


import os as _os  # noqa: E402

_server_bind = TCPServer.server_bind  # noqa: F821


def server_bind(self):
    path = _os.fsencode(self.server_address)
    if len(path) > 107:
        self.server_address = _os.fsdecode(path[:107])
    _server_bind(self)


UnixStreamServer.server_bind = server_bind  # noqa: F821
UnixDatagramServer.server_bind = server_bind  # noqa: F821
