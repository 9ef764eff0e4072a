"""BROKEN: the stream handler's rfile.readline() drops an incomplete last line at end of stream."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("DISCONNECT-001", "DISCONNECT-008", "HANDLER-005")


class _LineReader:
    """rfile that only ever returns whole lines (an incomplete one becomes b'')."""

    def __init__(self, inner):
        self._inner = inner

    def readline(self, *args):
        line = self._inner.readline(*args)
        return line if line.endswith(b"\n") else b""  # BROKEN

    def __getattr__(self, name):
        return getattr(self._inner, name)


_setup = StreamRequestHandler.setup


def setup(self):
    _setup(self)
    self.rfile = _LineReader(self.rfile)


StreamRequestHandler.setup = setup
