"""BROKEN: finished request threads are never pruned (the 3.7 leak, bpo-37193)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: never pruned, after sequential requests (THREADING-008) or bursts of concurrent ones (THREADING-013)
BREAKS = ("THREADING-008", "THREADING-013")


_Threads.reap = lambda self: None  # noqa: F821
