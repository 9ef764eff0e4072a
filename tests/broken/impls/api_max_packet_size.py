"""BROKEN: UDPServer.max_packet_size defaults to 4096"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-013',)

UDPServer.max_packet_size = 4096  # noqa: F821
