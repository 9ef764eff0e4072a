"""BROKEN: claims the 3.13 API but lacks ForkingUnixStreamServer/ForkingUnixDatagramServer"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-004',)
REQUIRES = ('fork', 'af_unix')  # the breakage shows only where os.fork and socket.AF_UNIX exist

__socketserver_api__ = (3, 13)
for _name in ("ForkingUnixStreamServer", "ForkingUnixDatagramServer"):
    globals().pop(_name, None)
__all__ = [n for n in __all__ if not n.startswith("ForkingUnix")]  # noqa: F821
