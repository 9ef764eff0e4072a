"""BROKEN: serve_forever() opens a wake-up socket pair and leaves it to the garbage collector."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: the pair is a descriptor beyond the listening socket: with socket.socketpair() failing (EMFILE)
#: its serve_forever() cannot start, which SERVE-016's clause forbids (both variants)
BREAKS = ("SHUTDOWN-013", "SERVE-016")

_original_serve_forever = BaseServer.serve_forever


def serve_forever(self, poll_interval=0.5):
    wakeup = socket.socketpair()  # BROKEN: never closed
    try:
        _original_serve_forever(self, poll_interval)
    finally:
        del wakeup


BaseServer.serve_forever = serve_forever
