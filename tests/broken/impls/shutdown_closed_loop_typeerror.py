"""BROKEN: a socket closed under serve_forever() ends it with TypeError (not OSError/ValueError)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SHUTDOWN-012",)

_original_noblock = BaseServer._handle_request_noblock


def _handle_request_noblock(self):
    if self.fileno() < 0:
        raise TypeError("listening socket is gone")  # BROKEN: not an OSError
    _original_noblock(self)


BaseServer._handle_request_noblock = _handle_request_noblock
