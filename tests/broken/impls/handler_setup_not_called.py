"""BROKEN: BaseRequestHandler.__init__ never calls setup()."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-001",)


def __init__(self, request, client_address, server):
    self.request = request
    self.client_address = client_address
    self.server = server
    try:
        self.handle()
    finally:
        self.finish()


BaseRequestHandler.__init__ = __init__  # noqa: F821
