"""BROKEN: the unbuffered wfile (wbufsize = 0) says it is not writable, so io.TextIOWrapper cannot use it."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-017",)


_SocketWriter.writable = lambda self: False  # noqa: F821
