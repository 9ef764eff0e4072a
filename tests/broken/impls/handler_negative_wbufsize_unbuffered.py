"""BROKEN: a negative wbufsize gives the unbuffered writer instead of a default-size buffer."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-018",)


_setup = StreamRequestHandler.setup  # noqa: F821


def setup(self):
    _setup(self)
    if self.wbufsize < 0:
        self.wfile.close()
        self.wfile = _SocketWriter(self.connection)  # noqa: F821


StreamRequestHandler.setup = setup  # noqa: F821
