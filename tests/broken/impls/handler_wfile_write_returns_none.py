"""BROKEN: the unbuffered wfile's write() returns None instead of the byte count."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# HANDLER-007 (a 4 MiB write arrives whole) relies on the count as its premise: PRECONDITION_FAILED
BREAKS = {"HANDLER-006": "FAIL", "HANDLER-007": "PRECONDITION_FAILED"}


_SocketWriter.write = lambda self, b: self._sock.sendall(b)  # noqa: F821
