"""BROKEN: UnixDatagramServer creates a SOCK_STREAM socket (socket_type inherited from the stream class)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UNIX-002", "UNIX-008")


UnixDatagramServer.socket_type = socket.SOCK_STREAM  # noqa: F821
