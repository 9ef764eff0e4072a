"""BROKEN: disable_nagle_algorithm never sets TCP_NODELAY."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-010",)


_setup = StreamRequestHandler.setup  # noqa: F821


def setup(self):
    flag = self.disable_nagle_algorithm
    self.disable_nagle_algorithm = False
    try:
        _setup(self)
    finally:
        self.disable_nagle_algorithm = flag


StreamRequestHandler.setup = setup  # noqa: F821
