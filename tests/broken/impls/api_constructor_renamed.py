"""BROKEN: TCPServer's constructor parameters are renamed"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-022',)

_init = TCPServer.__init__  # noqa: F821


def _renamed_init(self, address, handler, bind_and_activate=True):
    _init(self, address, handler, bind_and_activate)


TCPServer.__init__ = _renamed_init  # noqa: F821
