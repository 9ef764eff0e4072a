"""BROKEN: UnixStreamServer derives from BaseServer directly"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-008',)

_body = {k: v for k, v in vars(TCPServer).items() if k not in ("__dict__", "__weakref__")}  # noqa: F821
_body.update({k: v for k, v in vars(UnixStreamServer).items() if k not in ("__dict__", "__weakref__")})  # noqa: F821
UnixStreamServer = type("UnixStreamServer", (BaseServer,), _body)  # noqa: F821
