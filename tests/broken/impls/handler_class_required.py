"""BROKEN: the server refuses a RequestHandlerClass that is not a BaseRequestHandler subclass."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: PIPELINE-011's clause is that any callable is accepted as RequestHandlerClass: it sees the
#: function refused too
BREAKS = ("HANDLER-015", "PIPELINE-011")


_init = BaseServer.__init__  # noqa: F821


def __init__(self, server_address, RequestHandlerClass):
    if not (isinstance(RequestHandlerClass, type) and issubclass(RequestHandlerClass, BaseRequestHandler)):  # noqa: F821
        raise TypeError("RequestHandlerClass must be a BaseRequestHandler subclass")
    _init(self, server_address, RequestHandlerClass)


BaseServer.__init__ = __init__  # noqa: F821
