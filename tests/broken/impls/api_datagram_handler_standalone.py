"""BROKEN: DatagramRequestHandler does not derive from BaseRequestHandler"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-023',)

_body = {k: v for k, v in vars(BaseRequestHandler).items() if k not in ("__dict__", "__weakref__")}  # noqa: F821
_body.update({k: v for k, v in vars(DatagramRequestHandler).items() if k not in ("__dict__", "__weakref__")})  # noqa: F821
DatagramRequestHandler = type("DatagramRequestHandler", (object,), _body)
