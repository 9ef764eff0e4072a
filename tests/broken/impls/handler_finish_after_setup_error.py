"""BROKEN: finish() runs even when setup() raised (setup inside the try)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-003",)


def __init__(self, request, client_address, server):
    self.request = request
    self.client_address = client_address
    self.server = server
    try:
        self.setup()
        self.handle()
    finally:
        self.finish()


BaseRequestHandler.__init__ = __init__  # noqa: F821
