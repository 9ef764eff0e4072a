"""BROKEN: finish() lets the final flush's OSError escape before closing wfile (bpo-14574)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-011", "DISCONNECT-005")


def finish(self):
    if not self.wfile.closed:
        self.wfile.flush()
    self.wfile.close()
    self.rfile.close()


StreamRequestHandler.finish = finish  # noqa: F821
