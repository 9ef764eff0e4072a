"""BROKEN: request_queue_size is SOMAXCONN before the 3.15 API"""
import socket as _socket
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-011',)

TCPServer.request_queue_size = _socket.SOMAXCONN + 1  # noqa: F821
