"""BROKEN: serve_forever() returns quietly, before shutdown(), once server_close() closed its socket."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SHUTDOWN-012",)

_original_noblock = BaseServer._handle_request_noblock


def _handle_request_noblock(self):
    if self.fileno() < 0:
        self._BaseServer__shutdown_request = True  # BROKEN: ends the loop without being asked
        return
    _original_noblock(self)


BaseServer._handle_request_noblock = _handle_request_noblock
