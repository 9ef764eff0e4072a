"""BROKEN: the stream handler buffers writes by default (wbufsize -1)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("API-016",)

StreamRequestHandler.wbufsize = -1  # noqa: F821
