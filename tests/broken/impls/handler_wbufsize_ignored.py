"""BROKEN: wbufsize is ignored: wfile is always the unbuffered writer."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-008", "HANDLER-018")


_setup = StreamRequestHandler.setup  # noqa: F821


def setup(self):
    _setup(self)
    if not isinstance(self.wfile, _SocketWriter):  # noqa: F821
        self.wfile.close()
        self.wfile = _SocketWriter(self.connection)  # noqa: F821


StreamRequestHandler.setup = setup  # noqa: F821
