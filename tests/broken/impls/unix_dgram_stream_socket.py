"""BROKEN: UnixDatagramServer creates a SOCK_STREAM socket (socket_type inherited from the stream class)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: no datagram client can reach it: the probes find that a plain UnixDatagramServer does not
#: answer where UDPServer does (UNIX-002 owns it), and every check that serves a Unix datagram
#: server, the threading one of UNIX-008 too, ends PRECONDITION_FAILED naming UNIX-002
BREAKS = {"UNIX-002": "FAIL", "UNIX-008": "PRECONDITION_FAILED"}


UnixDatagramServer.socket_type = socket.SOCK_STREAM  # noqa: F821
