"""BROKEN: the Forking* names are gated on sys.platform == 'linux2' (a Python 2 idiom) instead of
os.fork, so they are missing although os.fork exists."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib
import sys as _sys

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: API-002's clause is this defect too (the Forking* names exist exactly where os.fork does); every
#: FORKING check then ends PRECONDITION_FAILED naming it
BREAKS = ("TUTORIAL-006", "API-002")
REQUIRES = ('fork',)  # the breakage shows only where os.fork exists

if _sys.platform != "linux2":  # BROKEN: true on every Python 3
    for _name in ("ForkingMixIn", "ForkingTCPServer", "ForkingUDPServer",
                  "ForkingUnixStreamServer", "ForkingUnixDatagramServer"):
        globals().pop(_name, None)
    __all__ = [name for name in __all__ if not name.startswith("Forking")]
