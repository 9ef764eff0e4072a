"""BROKEN: the unbuffered wfile writes with a single send(), which may be partial (bpo-26721)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-007",)


_SocketWriter.write = lambda self, b: self._sock.send(b)  # noqa: F821
