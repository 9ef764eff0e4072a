"""BROKEN: StreamRequestHandler.finish lets the final flush's OSError escape (client gone, bpo-14574)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("DISCONNECT-005", "HANDLER-011")


def finish(self):
    if not self.wfile.closed:
        self.wfile.flush()  # BROKEN: not guarded
    self.wfile.close()
    self.rfile.close()


StreamRequestHandler.finish = finish
