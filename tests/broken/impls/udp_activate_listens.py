"""BROKEN: UDPServer.server_activate calls listen() like TCPServer (fails: EOPNOTSUPP)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UDP-001", "UDP-007")


UDPServer.server_activate = TCPServer.server_activate  # noqa: F821
