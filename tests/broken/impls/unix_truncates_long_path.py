"""BROKEN: a path longer than sun_path is silently truncated to fit instead of raising."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UNIX-006",)


import os as _os  # noqa: E402

_server_bind = TCPServer.server_bind  # noqa: F821


#: below every OS's sun_path (108 bytes on Linux, 104 on macOS), so the truncation shows everywhere
_FITS = 100


def server_bind(self):
    path = _os.fsencode(self.server_address)
    if len(path) > _FITS:
        self.server_address = _os.fsdecode(path[:_FITS])
    _server_bind(self)


UnixStreamServer.server_bind = server_bind  # noqa: F821
UnixDatagramServer.server_bind = server_bind  # noqa: F821
