"""BROKEN: shutdown() sets the flag and returns without waiting for the loop."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SHUTDOWN-001", "SHUTDOWN-003")


def shutdown(self):
    self._BaseServer__shutdown_request = True  # BROKEN: no wait


BaseServer.shutdown = shutdown
