"""BROKEN: the Unix* names are missing although AF_UNIX exists"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-003',)
REQUIRES = ('af_unix',)  # the breakage shows only where socket.AF_UNIX exists

for _name in ("UnixStreamServer", "UnixDatagramServer", "ThreadingUnixStreamServer", "ThreadingUnixDatagramServer"):
    globals().pop(_name, None)
__all__ = [n for n in __all__ if "Unix" not in n or n.startswith("Forking")]  # noqa: F821
