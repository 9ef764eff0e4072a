"""BROKEN: UnixStreamServer.address_family is AF_INET"""
import socket as _socket
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: an AF_INET socket cannot bind a path: no UnixStreamServer serves (UNIX-001's clause), and the
#: checks that serve one end PRECONDITION_FAILED naming it
BREAKS = ('API-025', 'UNIX-001')

UnixStreamServer.address_family = _socket.AF_INET  # noqa: F821
