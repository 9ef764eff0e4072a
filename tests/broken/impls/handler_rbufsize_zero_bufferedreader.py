"""BROKEN: rfile always wraps the socket in io.BufferedReader(rbufsize), which refuses rbufsize 0."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-012",)


import io as _io  # noqa: E402

_setup = StreamRequestHandler.setup  # noqa: F821


def setup(self):
    _setup(self)
    self.rfile.close()
    size = _io.DEFAULT_BUFFER_SIZE if self.rbufsize < 0 else self.rbufsize
    self.rfile = _io.BufferedReader(self.connection.makefile("rb", 0), size)


StreamRequestHandler.setup = setup  # noqa: F821
