"""BROKEN: the unbuffered wfile's write() returns None instead of the byte count."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-006",)


_SocketWriter.write = lambda self, b: self._sock.sendall(b)  # noqa: F821
