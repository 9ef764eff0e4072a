"""BROKEN: StreamRequestHandler.timeout is never applied to the connection."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-009",)


_setup = StreamRequestHandler.setup  # noqa: F821


def setup(self):
    timeout = self.timeout
    self.timeout = None
    try:
        _setup(self)
    finally:
        self.timeout = timeout


StreamRequestHandler.setup = setup  # noqa: F821
