"""BROKEN: __exit__() returns True, swallowing exceptions raised in the with block."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SHUTDOWN-009",)


def __exit__(self, *args):
    self.server_close()
    return True  # BROKEN: suppresses the exception


BaseServer.__exit__ = __exit__
