"""BROKEN: serve_forever() needs a socket.socketpair() wake-up channel and has no fallback."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SERVE-016",)

_original_serve_forever = BaseServer.serve_forever


def serve_forever(self, poll_interval=0.5):
    reader, writer = socket.socketpair()  # BROKEN: an OSError here ends serve_forever()
    try:
        return _original_serve_forever(self, poll_interval)
    finally:
        reader.close()
        writer.close()


BaseServer.serve_forever = serve_forever
