"""BROKEN: UnixStreamServer.address_family is AF_INET"""
import socket as _socket
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-025',)

UnixStreamServer.address_family = _socket.AF_INET  # noqa: F821
