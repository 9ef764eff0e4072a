"""BROKEN: UDPServer derives from BaseServer directly, not from TCPServer"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: UnixDatagramServer keeps the old UDPServer as its base, so it no longer derives from the
#: module's UDPServer: API-008's clause
BREAKS = ('API-007', 'API-008')

_body = {k: v for k, v in vars(TCPServer).items() if k not in ("__dict__", "__weakref__")}  # noqa: F821
_body.update({k: v for k, v in vars(UDPServer).items() if k not in ("__dict__", "__weakref__")})  # noqa: F821
UDPServer = type("UDPServer", (BaseServer,), _body)  # noqa: F821
