"""BROKEN: UnixStreamServer/UnixDatagramServer.server_close() unlinks the socket path."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: UNIX-004's clause is this defect (server_close() does not unlink); UNIX-005's, that a failed
#: bind on a live path leaves the existing server undisturbed: the failed server's own
#: server_close() unlinks the live server's path (and no stale path survives a close to test)
BREAKS = ("BIND-017", "UNIX-004", "UNIX-005")


def _unlinking_close(base):
    def server_close(self):
        base.server_close(self)
        try:
            os.unlink(self.server_address)  # BROKEN: the path is removed
        except OSError:
            pass

    return server_close


if hasattr(socket, "AF_UNIX"):
    UnixStreamServer.server_close = _unlinking_close(TCPServer)
    UnixDatagramServer.server_close = _unlinking_close(UDPServer)
