"""BROKEN: StreamRequestHandler.finish() flushes wfile even when handle() already closed it."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-016",)


def finish(self):
    try:
        self.wfile.flush()  # ValueError on a closed file: reaches handle_error
    except OSError:
        pass
    self.wfile.close()
    self.rfile.close()


StreamRequestHandler.finish = finish  # noqa: F821
