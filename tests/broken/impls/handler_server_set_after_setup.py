"""BROKEN: the handler's server attribute is set only after setup()."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-004",)


def __init__(self, request, client_address, server):
    self.request = request
    self.client_address = client_address
    self.setup()
    self.server = server
    try:
        self.handle()
    finally:
        self.finish()


BaseRequestHandler.__init__ = __init__  # noqa: F821
