"""BROKEN: UDPServer.server_activate() calls listen() like TCPServer."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: no UDPServer constructs at all: BIND-001 (construction) sees it too, and the checks that need
#: a datagram server end PRECONDITION_FAILED naming it
BREAKS = ("BIND-006", "BIND-001", "UNIX-002")  # UnixDatagramServer inherits server_activate()


UDPServer.server_activate = TCPServer.server_activate  # BROKEN: datagram sockets cannot listen
