"""BROKEN: StreamRequestHandler reads through an unbuffered rfile by default (rbufsize 0)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-005", "API-016")


StreamRequestHandler.rbufsize = 0  # noqa: F821
