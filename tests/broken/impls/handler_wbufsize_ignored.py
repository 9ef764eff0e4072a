"""BROKEN: wbufsize is ignored: wfile is always the unbuffered writer."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# DISCONNECT-005 (finish() swallows its final flush's error) needs a buffered wfile, whose write()
# sends nothing: a write() that raised at once is HANDLER-008's, PRECONDITION_FAILED naming it
BREAKS = {"HANDLER-008": "FAIL", "HANDLER-018": "FAIL", "DISCONNECT-005": "PRECONDITION_FAILED"}


_setup = StreamRequestHandler.setup  # noqa: F821


def setup(self):
    _setup(self)
    if not isinstance(self.wfile, _SocketWriter):  # noqa: F821
        self.wfile.close()
        self.wfile = _SocketWriter(self.connection)  # noqa: F821


StreamRequestHandler.setup = setup  # noqa: F821
