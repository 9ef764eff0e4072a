"""BROKEN: shutdown() after serve_forever() returned does nothing (the stale-flag quirk 'fixed')."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SHUTDOWN-005",)


_shutdown = BaseServer.shutdown


def shutdown(self):
    if self._BaseServer__is_shut_down.is_set():
        return  # BROKEN: a late shutdown() is not remembered
    _shutdown(self)


BaseServer.shutdown = shutdown
