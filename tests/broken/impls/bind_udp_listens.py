"""BROKEN: UDPServer.server_activate() calls listen() like TCPServer."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-006",)


UDPServer.server_activate = TCPServer.server_activate  # BROKEN: datagram sockets cannot listen
