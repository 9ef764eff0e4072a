"""BROKEN: UDPServer reads datagrams with a 32-byte buffer (max_packet_size 32), truncating them."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("CONCURRENCY-004", "CONCURRENCY-005", "CONCURRENCY-006", "API-013", "UDP-009")

UDPServer.max_packet_size = 32  # BROKEN: documented 8192
