"""BROKEN: server_close() of AF_UNIX servers unlinks the socket path."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: as bind_unix_unlinks: BIND-017's clause is UNIX-004's (server_close() does not unlink), and
#: UNIX-005's, that a failed bind on a live path leaves the existing server undisturbed: the failed
#: server's own server_close() removes the live server's path (its stale variant ends
#: PRECONDITION_FAILED naming UNIX-004: a close leaves no stale path to bind)
BREAKS = ("UNIX-004", "BIND-017", "UNIX-005")


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
