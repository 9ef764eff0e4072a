"""BROKEN: server_close() raises when the server is already closed."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-015", "SHUTDOWN-008")


import errno as _errno  # noqa: E402


def server_close(self):
    if self.socket.fileno() == -1:
        raise OSError(_errno.EBADF, "server already closed")  # BROKEN: not idempotent
    self.socket.close()


TCPServer.server_close = server_close
