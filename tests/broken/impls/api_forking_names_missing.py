"""BROKEN: the Forking* names are missing although os.fork exists"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-002', 'TUTORIAL-006')  # TUTORIAL-006 checks the same names, as the tutorial met them
REQUIRES = ('fork',)  # the breakage shows only where os.fork exists

for _name in ("ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn"):
    globals().pop(_name, None)
__all__ = [n for n in __all__ if not n.startswith("Forking")]  # noqa: F821
